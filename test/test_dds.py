"""Fast DDS large-data profile: when it is set, and a KITTI-size image crossing processes with sensor-data QoS."""
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from depth_perception.ros.dds import (
    OPT_OUT,
    PROFILE_VARIABLES,
    large_data_environment,
    large_data_profile,
    profile_variable,
    use_large_data_profile,
)

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]


def test_the_profile_is_valid_xml_with_a_segment_that_holds_a_kitti_frame():
    root = ET.parse(large_data_profile()).getroot()
    ns = {"d": "http://www.eprosima.com"}
    segment = int(root.find(".//d:transport_descriptor[d:type='SHM']/d:segment_size", ns).text)
    assert segment >= 1242 * 375 * 16  # a full organized cloud of xyz+rgb float32 fits
    participant = root.find(".//d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.find(".//d:useBuiltinTransports", ns).text == "false"
    assert {t.text for t in participant.findall(".//d:userTransports/d:transport_id", ns)} == {
        "depth_perception_shm", "depth_perception_udp"}  # UDP stays for other machines
    assert "config/*.xml" in (ROOT / "setup.py").read_text()  # installed beside the YAML files


def test_a_small_dev_shm_keeps_fast_dds_defaults(monkeypatch, caplog):
    import depth_perception.ros.dds as dds

    monkeypatch.setattr(dds, "shm_free_mb", lambda path="/dev/shm": 60.0)  # Docker's default 64 MB, partly used
    env: dict[str, str] = {}
    with caplog.at_level("WARNING", logger="depth_perception.ros.dds"):
        assert use_large_data_profile(env) is None and env == {}
    assert "shm-size" in caplog.text


def test_the_profile_is_set_for_fast_dds_unless_the_user_configured_dds():
    env: dict[str, str] = {}
    assert use_large_data_profile(env) == str(large_data_profile())
    assert env == {profile_variable({}): str(large_data_profile())}
    assert profile_variable({}) in PROFILE_VARIABLES
    assert large_data_environment({"RMW_IMPLEMENTATION": "rmw_fastrtps_cpp"})
    for user in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/mine.xml"}, {"FASTRTPS_DEFAULT_PROFILES_FILE": "/x.xml"},
                 {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA"}, {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"},
                 {OPT_OUT: "0"}):
        env = dict(user)
        assert use_large_data_profile(env) is None and env == user, user


PUBLISHER = """
import sys, time
import numpy as np
from depth_perception.ros.dds import init_context
from depth_perception.ros.image import numpy_to_image
from depth_perception.ros.qos import sensor_qos
import rclpy
from sensor_msgs.msg import Image
context = init_context()
node = rclpy.create_node("dds_test_pub", context=context)
pub = node.create_publisher(Image, "/dds_test/image", sensor_qos())
msg = numpy_to_image(np.random.default_rng(0).integers(0, 255, (375, 1242, 3), dtype=np.uint8), "rgb8")
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
for i in range(30):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 10**9)
    msg.header.frame_id = str(i)
    pub.publish(msg)
    time.sleep(0.1)
time.sleep(0.5)
"""

SUBSCRIBER = """
import json, time
from depth_perception.ros.dds import init_context
from depth_perception.ros.qos import sensor_qos
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
context = init_context()
node = rclpy.create_node("dds_test_sub", context=context)
got = []
node.create_subscription(Image, "/dds_test/image", lambda m: got.append(
    (time.time_ns() - m.header.stamp.sec * 10**9 - m.header.stamp.nanosec) / 1e6), sensor_qos())
executor = SingleThreadedExecutor(context=context)
executor.add_node(node)
deadline = time.monotonic() + 30
while time.monotonic() < deadline and len(got) < 30:
    executor.spin_once(timeout_sec=0.1)
print(json.dumps(got))
"""


@pytest.mark.ros
def test_a_kitti_size_best_effort_image_crosses_processes():
    """Fast DDS's default 512 KB segment loses every 1.4 MB best-effort image between processes; with the profile
    they arrive, in milliseconds."""
    pytest.importorskip("rclpy")
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env["PYTHONPATH"] = str(ROOT)
    sub = subprocess.Popen([sys.executable, "-c", SUBSCRIBER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, cwd=ROOT)
    try:
        pub = subprocess.run([sys.executable, "-c", PUBLISHER], capture_output=True, text=True, env=env, cwd=ROOT,
                             timeout=90)
        assert pub.returncode == 0, pub.stderr[-2000:]
        out, err = sub.communicate(timeout=60)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert sub.returncode == 0, err[-2000:]
    latencies = json.loads(out.strip().splitlines()[-1])
    assert len(latencies) >= 20, f"{len(latencies)} of 30 images arrived"
    assert sorted(latencies)[len(latencies) // 2] < 100.0  # ~3 ms here; fragments retransmitted take far longer
