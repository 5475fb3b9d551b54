"""`depth-perception run` and start_nodes: the nodes of config/kitti.yaml with their namespaces, remappings and
parameters in one process, fed from a kitti2bag bag; bad files and --set values fail with one line."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.nodes.runner import load_node_config, parse_set_option, start_nodes
from depth_perception.ros.image import depth_image_to_numpy
from depth_perception.ros.node_driver import Driver, PlaneScene, RosSession, exchange, stereo_messages

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
KITTI = ROOT / "config" / "kitti.yaml"
VEHICLE = ROOT / "config" / "vehicle.yaml"
sys.path.insert(0, str(Path(__file__).parent))
MAIN = "import sys; from depth_perception.cli import main; sys.exit(main(sys.argv[1:]))"


def cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", MAIN, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.parametrize("path", [KITTI, VEHICLE], ids=lambda p: p.name)
def test_node_config_files_name_all_three_nodes_in_their_depth_namespaces(path):
    entries = {e.name: e for e in load_node_config(path)}
    assert set(entries) == {"mono_depth_node", "stereo_depth_node", "depth_completion_node"}
    for entry in entries.values():
        assert entry.namespace == f"/depth/{entry.kind}"
    assert isinstance(entries["stereo_depth_node"].parameters["max_depth"], float)


def test_kitti_config_wires_the_kitti2bag_topics():
    from depth_perception.data.kitti2bag import TOPIC_VELO, camera_info_topic, image_topic

    entries = {e.name: e for e in load_node_config(KITTI)}
    assert entries["stereo_depth_node"].remappings == {
        "left/image_rect": image_topic(2), "right/image_rect": image_topic(3),
        "left/camera_info": camera_info_topic(2), "right/camera_info": camera_info_topic(3)}
    assert entries["depth_completion_node"].remappings == {
        "image_rect": image_topic(2), "camera_info": camera_info_topic(2), "points": TOPIC_VELO}
    assert entries["mono_depth_node"].remappings == {"image_rect": image_topic(2), "camera_info": camera_info_topic(2)}


def test_a_bad_node_config_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  n:\n    kind: stereo\n    parameters: {max_depth: far}\n")
    with pytest.raises(ValueError, match="n.max_depth must be a float"):
        load_node_config(bad)
    bad.write_text("nodes:\n  n:\n    kind: lidar\n")
    with pytest.raises(ValueError, match="kind must be one of"):
        load_node_config(bad)
    bad.write_text("nodes:\n  n:\n    kind: stereo\n    parameters: {maxdepth: 3.0}\n")
    with pytest.raises(ValueError, match="unknown parameter 'maxdepth'"):
        load_node_config(bad)


def test_set_options_parse_as_yaml_values():
    assert parse_set_option("stereo_depth_node.planes=32") == ("stereo_depth_node", "planes", 32)
    assert parse_set_option("a.engine=classical") == ("a", "engine", "classical")
    with pytest.raises(ValueError, match="NODE.PARAM=VALUE"):
        parse_set_option("planes=32")


def test_start_nodes_builds_the_configured_nodes_with_remapped_topics_and_overrides():
    camera = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
    scene = PlaneScene(camera, 0.5, 10.0)
    with RosSession() as session:
        nodes = start_nodes(KITTI, {"stereo_depth_node": {"engine": "classical", "planes": 48, "min_depth": 2.0,
                                                          "max_depth": 40}}, context=session.context)
        for node in nodes:
            session.add(node)
        names = {n.get_fully_qualified_name(): n for n in nodes}
        assert set(names) == {"/depth/mono/mono_depth_node", "/depth/stereo/stereo_depth_node",
                              "/depth/completion/depth_completion_node"}
        stereo = names["/depth/stereo/stereo_depth_node"]
        assert stereo.value("planes") == 48 and stereo.value("max_depth") == 40.0
        assert stereo.value("odom_frame") == "world"
        assert stereo.wait_until_ready(30)
        driver = session.add(Driver(session.context))
        from sensor_msgs.msg import Image

        driver.subscribe("/depth/stereo/depth", Image)
        kitti = {"left/image_rect": "/kitti/camera_color_left/image_raw",
                 "right/image_rect": "/kitti/camera_color_right/image_raw",
                 "left/camera_info": "/kitti/camera_color_left/camera_info",
                 "right/camera_info": "/kitti/camera_color_right/camera_info"}
        from sensor_msgs.msg import CameraInfo

        types = {t: (CameraInfo if "info" in t else Image) for t in kitti.values()}
        assert driver.publisher_ready(list(kitti.values()), types, timeout=20)
        msgs = stereo_messages(scene, 1_700_000_400 * 10**9, "camera_color_left")
        # publish on the kitti2bag topics: namespace "" + absolute names
        out = exchange(driver, "", {kitti[k]: m for k, m in msgs.items()}, outputs=[])
        assert out == {}
        got = driver.wait_for("/depth/stereo/depth", timeout=20)
        assert got is not None, stereo.diagnostic_state()
        assert got.header.frame_id == "camera_color_left"
        assert abs(np.nanmedian(depth_image_to_numpy(got)) - 10.0) < 0.5


@pytest.fixture(scope="module")
def tiny_bag(tmp_path_factory):
    from helpers.kitti_drive import write_tiny_drive

    from depth_perception.data.kitti2bag import convert

    root = tmp_path_factory.mktemp("run")
    drive = write_tiny_drive(root / "kitti", frames=4, width=96, height=48, seed=5)
    return convert(drive, root / "bag").path


def test_run_replays_a_kitti2bag_bag_into_the_nodes_and_reports_their_frames(tiny_bag):
    result = cli("run", KITTI, "--bag", tiny_bag, "--rate", "2", "--listen",
                 "--set", "stereo_depth_node.engine=classical", "--set", "stereo_depth_node.planes=16",
                 "--set", "depth_completion_node.engine=classical",
                 "--set", "stereo_depth_node.qos_reliability=reliable",
                 "--set", "depth_completion_node.qos_reliability=reliable", timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:] if line.strip()}
    # the bag's frames are random noise: stereo publishes what it matches, completion fills every frame, mono runs
    # the shipped engine on every frame
    report = result.stdout + result.stderr[-2000:]
    for node in ("/depth/completion/depth_completion_node", "/depth/stereo/stereo_depth_node",
                 "/depth/mono/mono_depth_node"):
        synced, processed, failed = (int(v) for v in rows[node][1:4])
        assert synced >= 2 and processed >= 1 and failed == 0, report
    assert "replayed" in result.stderr and "done" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["run", "nope.yaml"], "node config not found: nope.yaml"),
    (["run", str(KITTI), "--set", "planes=3"], "--set takes NODE.PARAM=VALUE"),
    (["run", str(KITTI), "--set", "lidar_node.engine=x"], "override for unknown node 'lidar_node'"),
    (["run", str(KITTI), "--set", "stereo_depth_node.planes=1"], "planes must be in [3"),
    (["run", str(KITTI), "--bag", "/nonexistent/bag"], "bag not found"),
])
def test_run_fails_with_one_line_naming_the_cause(args, words):
    result = cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.stderr


def test_ctrl_c_stops_run_cleanly():
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONFAULTHANDLER="1")  # a hang below dumps every thread
    proc = subprocess.Popen([sys.executable, "-c", MAIN, "run", str(VEHICLE), "--set",
                             "stereo_depth_node.engine=classical", "--set", "depth_completion_node.engine=classical"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        seen = ""
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            seen += line
            if "started" in line:
                break
        assert "started" in seen, seen
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # say where it hangs: faulthandler prints each thread's stack on SIGABRT
            proc.send_signal(signal.SIGABRT)
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"run did not stop within 30 s of SIGINT; its threads:\n{err[-6000:]}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "stopped" in err
    assert "/depth/stereo/stereo_depth_node" in out
