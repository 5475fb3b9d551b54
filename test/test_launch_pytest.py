"""launch_pytest: the launch files start node executables that answer over DDS (a ROS 2 distro with the package
built by colcon; skipped where launch_pytest or launch_ros does not import, as in the pip environment)."""
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # not in `make test-fast`

launch_pytest = pytest.importorskip("launch_pytest", reason="launch_pytest is not a pip wheel; runs in a ROS 2 distro")
pytest.importorskip("launch_ros", reason="launch_ros is not a pip wheel; runs in a ROS 2 distro")

from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from depth_perception.geometry import PinholeCamera  # noqa: E402
from depth_perception.ros.image import depth_image_to_numpy  # noqa: E402
from depth_perception.ros.node_driver import (  # noqa: E402
    Driver,
    PlaneScene,
    RosSession,
    exchange,
    stereo_messages,
    topic,
)
from launch import LaunchDescription  # noqa: E402

LAUNCH = Path(__file__).resolve().parents[1] / "launch"
NS = "/launch_pytest/stereo"
SCENE = PlaneScene(PinholeCamera(160, 96, 120.0, 120.0, 79.5, 47.5), baseline=0.5, depth=10.0)


@launch_pytest.fixture
def stereo_launch():
    # the launch file's config (vehicle.yaml) remaps the inputs to /stereo/...: its remapping arguments put them
    # back under NS, where the driver publishes, and so check that those arguments work
    inputs = {f"{side}_{name}": topic(NS, f"{side}/{rel}") for side in ("left", "right")
              for name, rel in (("image", "image_rect"), ("camera_info", "camera_info"))}
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH / "stereo_depth.launch.py")),
        launch_arguments={"stereo_namespace": NS, "stereo_engine": "classical", **inputs}.items())
    return LaunchDescription([include, launch_pytest.actions.ReadyToTest()])


@pytest.mark.launch(fixture=stereo_launch)
def test_stereo_launch_file_starts_a_node_that_publishes_depth_of_a_plane():
    with RosSession() as session:
        driver = session.add(Driver(session.context, name="launch_pytest_driver"))
        driver.subscribe(topic(NS, "depth"), Image)
        msgs = stereo_messages(SCENE, 1_000_000_000, "camera_color_left")
        out = exchange(driver, NS, msgs, outputs=["depth"], timeout=60.0)
        assert out is not None, "the launched stereo node published no depth within 60 s"
        depth = depth_image_to_numpy(out["depth"])
        assert abs(float(np.nanmedian(depth)) - 10.0) < 0.5
