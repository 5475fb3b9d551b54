"""Bag replay: a converted drive is published through rclpy and received by a subscriber node intact and on time."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.highlevel import AnyReader

from depth_perception.cli import main
from depth_perception.data.kitti import KittiRawDrive
from depth_perception.data.kitti2bag import convert
from depth_perception.ros.bag_messages import UnknownMessageType, rclpy_message_class, to_rclpy
from depth_perception.ros.bag_replay import replay_bag, spin_replay

sys.path.insert(0, str(Path(__file__).parent))
from helpers.kitti_drive import write_tiny_drive

pytestmark = pytest.mark.slow  # not in `make test-fast`

FRAMES = 3
CAMS = {0: "camera_gray_left", 1: "camera_gray_right", 2: "camera_color_left", 3: "camera_color_right"}


@pytest.fixture(scope="module")
def drive_path(tmp_path_factory):
    return write_tiny_drive(tmp_path_factory.mktemp("kitti"), frames=FRAMES, seed=3)


@pytest.fixture(scope="module")
def bags(drive_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    return {s: convert(drive_path, root / s, storage=s).path for s in ("mcap", "sqlite3")}


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


def stamp_ns(header):
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def test_converter_reproduces_the_recorded_bytes_for_every_message(bags):
    """rosbags message -> rclpy message equals rclpy's own decoding of the recorded CDR (CDR padding bytes are
    unspecified, so messages are compared, not bytes)."""
    with AnyReader([bags["mcap"]]) as reader:
        for conn, _, raw in reader.messages():
            cls = rclpy_message_class(conn.msgtype)
            msg = to_rclpy(reader.deserialize(raw, conn.msgtype), cls)
            assert msg == deserialize_message(bytes(raw), cls), conn.topic


def test_unknown_type_is_named(tmp_path):
    with pytest.raises(UnknownMessageType, match="acme_msgs/msg/Widget"):
        rclpy_message_class("acme_msgs/msg/Widget")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_subscriber_receives_every_message_with_its_stamp_frame_and_content(storage, bags, drive_path, context):
    drive = KittiRawDrive(drive_path)
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image, Imu, NavSatFix, PointCloud2
    from tf2_msgs.msg import TFMessage

    node = rclpy.create_node("bag_listener", context=context)
    got: dict[str, list] = {}
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    subs = {f"/kitti/{n}/image_raw": Image for n in CAMS.values()}
    subs |= {f"/kitti/{n}/camera_info": CameraInfo for n in CAMS.values()}
    subs |= {"/kitti/velo/pointcloud": PointCloud2, "/kitti/oxts/imu": Imu, "/kitti/oxts/gps/fix": NavSatFix,
             "/tf": TFMessage, "/tf_static": TFMessage, "/clock": Clock}
    for topic, cls in subs.items():
        node.create_subscription(cls, topic, lambda m, t=topic: got.setdefault(t, []).append(m),
                                 latched if topic == "/tf_static" else reliable)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()
    thread, result = spin_replay(bags[storage], stop, context=context, rate=0.5, clock=True,
                                 wait_for_subscribers=10.0)
    expected = {t: FRAMES for t in subs if t not in ("/tf_static", "/clock")} | {"/tf_static": 1}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        if not thread.is_alive() and all(len(got.get(t, [])) >= n for t, n in expected.items()):
            break
    stop.set()
    thread.join(5)
    last_clock = time.monotonic() + 0.3  # the final /clock may arrive after the last message of another topic
    while time.monotonic() < last_clock:
        executor.spin_once(timeout_sec=0.02)
    executor.shutdown()
    node.destroy_node()
    assert "error" not in result, result.get("error")
    stats = result["stats"]
    assert {t: len(got.get(t, [])) for t in expected} == expected
    assert stats.published == expected
    span_s = (drive.timestamps("image_02")[-1] - drive.timestamps("velodyne_points")[0]) / 1e9
    assert stats.elapsed_s >= 0.95 * span_s / 0.5  # rate 0.5: twice the recorded time

    for cam, name in CAMS.items():
        images = got[f"/kitti/{name}/image_raw"]
        assert [stamp_ns(m.header) for m in images] == list(drive.timestamps(cam))
        for i, m in enumerate(images):
            assert m.header.frame_id == name
            assert bytes(m.data) == drive.image(cam, i).tobytes()
        info = got[f"/kitti/{name}/camera_info"][0]
        np.testing.assert_allclose(np.reshape(info.p, (3, 4)), drive.calib.P_rect[cam])
    clouds = got["/kitti/velo/pointcloud"]
    assert [stamp_ns(m.header) for m in clouds] == list(drive.timestamps("velodyne_points"))
    assert bytes(clouds[2].data) == drive.velodyne(2).tobytes() and clouds[2].header.frame_id == "velo_link"
    assert got["/kitti/oxts/gps/fix"][1].latitude == drive.oxts(1).lat
    assert {t.child_frame_id for t in got["/tf_static"][0].transforms} >= {"imu_link", "velo_link", *CAMS.values()}
    assert [t.transforms[0].child_frame_id for t in got["/tf"]] == ["base_link"] * FRAMES
    clocks = [c.clock.sec * 1_000_000_000 + c.clock.nanosec for c in got["/clock"]]
    assert clocks == sorted(clocks) and len(clocks) >= 12
    assert clocks[0] >= drive.timestamps("velodyne_points")[0] and clocks[-1] == drive.timestamps("image_03")[-1]


def test_start_offset_and_topic_filter(bags, drive_path, context):
    drive = KittiRawDrive(drive_path)
    topic = "/kitti/camera_color_left/image_raw"
    with AnyReader([bags["mcap"]]) as reader:
        t0 = reader.start_time
    offset_s = (drive.timestamps(2)[1] - t0) / 1e9 + 1e-6  # just after frame 1's image
    logs = []
    stats = replay_bag(context, bags["mcap"], topics=[topic, "/tf_static", "/nope"], start_offset=offset_s,
                       rate=10.0, log=logs.append)
    assert stats.published == {topic: 1, "/tf_static": 1}  # /tf_static is latched: published despite the offset
    assert any("/nope" in line for line in logs)


def test_unknown_message_type_skips_its_topic_and_names_it(tmp_path, context):
    from rosbags.rosbag2 import Writer
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    store.register(get_types_from_msg("int32 teeth\nstring name\n", "acme_msgs/msg/Widget"))
    bag = tmp_path / "mixed"
    with Writer(bag, version=8) as w:
        widget = w.add_connection("/widget", "acme_msgs/msg/Widget", typestore=store)
        text = w.add_connection("/text", "std_msgs/msg/String", typestore=store)
        for k in range(2):
            w.write(widget, 1000 + k, store.serialize_cdr(store.types["acme_msgs/msg/Widget"](teeth=k, name="w"),
                                                          "acme_msgs/msg/Widget"))
            w.write(text, 1001 + k, store.serialize_cdr(store.types["std_msgs/msg/String"](data=f"t{k}"),
                                                        "std_msgs/msg/String"))
    logs = []
    stats = replay_bag(context, bag, log=logs.append)
    assert stats.published == {"/text": 2}
    assert "acme_msgs/msg/Widget" in stats.skipped["/widget"]
    assert any("/widget" in line and "acme_msgs/msg/Widget" in line for line in logs)


def test_loop_replays_until_stopped_from_a_given_node(bags, context):
    node = rclpy.create_node("host", context=context)
    before = len(list(node.publishers))
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)  # loops take a fraction of it; a loaded machine needs the rest
    timer.start()
    stats = replay_bag(node, bags["mcap"], rate=10.0, loop=True, stop_event=stop)
    timer.join()
    assert stats.loops >= 2 and stats.published["/tf_static"] in (stats.loops, stats.loops + 1)
    assert len(list(node.publishers)) == before  # the replay's publishers are gone, the node stays
    node.destroy_node()


def test_qos_override():
    from rclpy.qos import ReliabilityPolicy as R

    from depth_perception.ros.bag_replay import qos_for

    assert qos_for([], "best_effort").reliability == R.BEST_EFFORT
    assert qos_for([], "sensor_data").reliability == R.BEST_EFFORT
    assert qos_for([], None).reliability == R.RELIABLE
    with pytest.raises(ValueError, match="qos must be one of"):
        qos_for([], "fast")


def test_raw_mode_publishes_the_same_counts(bags, context):
    stats = replay_bag(context, bags["sqlite3"], rate=20.0, raw=True)
    assert sum(stats.published.values()) == 12 * FRAMES + 1


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert main(["play", str(tmp_path / "missing")]) == 2
    assert "bag not found" in capsys.readouterr().err
    tmp_path.joinpath("empty").mkdir()
    assert main(["play", str(tmp_path / "empty")]) == 2
    assert "no metadata.yaml" in capsys.readouterr().err
    assert main(["play", str(tmp_path / "empty"), "--rate", "0"]) == 2
    assert "--rate must be > 0" in capsys.readouterr().err


def test_ctrl_c_stops_a_looping_play_cleanly(bags):
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-m", "depth_perception.cli", "play", str(bags["mcap"]), "--loop",
                             "--clock"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stderr.readline()
        assert "playing" in first, first
        time.sleep(0.8)
        assert proc.poll() is None  # still looping
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:  # show where it hangs: faulthandler dumps every thread on SIGABRT
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"play did not stop within 30 s of SIGINT; its threads:\n{err[-6000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped: published" in err and "Traceback" not in err
