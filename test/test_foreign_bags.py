"""Data and bags that other tools wrote, and bags that lie: pykitti and kitti2mcap (PyPI) against our synthetic
drives, rosbag2 folders named *.bag, bags whose type strings name arbitrary modules, and corrupted MCAP chunks."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.data.kitti import KittiRawDrive, oxts_poses
from depth_perception.data.kitti2bag import convert
from depth_perception.ros.bag_files import BagError, open_bag
from depth_perception.ros.bag_replay import qos_for

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
DATE, SEED, FRAMES = "2011_09_26", 1000, 3


@pytest.fixture(scope="module")
def synthetic_drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert main(["synth", "--seed", str(SEED), "--frames", str(FRAMES), "--out", str(root), "--width", "320",
                 "--height", "96", "--normals", "none", "--lidar-azimuths", "700"]) == 0
    return root, root / DATE / f"{DATE}_drive_{SEED:04d}_sync"


def test_pykitti_reads_a_synthetic_drive_as_our_reader_does(synthetic_drive):
    import pykitti

    root, path = synthetic_drive
    theirs = pykitti.raw(str(root), DATE, f"{SEED:04d}")
    ours = KittiRawDrive(path)
    assert len(theirs) == ours.num_frames == FRAMES
    for i in range(FRAMES):
        np.testing.assert_array_equal(np.asarray(theirs.get_cam2(i)), ours.image(2, i))
        np.testing.assert_array_equal(np.asarray(theirs.get_cam3(i)), ours.image(3, i))
        np.testing.assert_array_equal(theirs.get_velo(i), ours.velodyne(i))
    cal = theirs.calib
    for cam in (2, 3):
        np.testing.assert_allclose(getattr(cal, f"P_rect_{cam}0"), ours.calib.P_rect[cam], atol=1e-9)
        np.testing.assert_allclose(getattr(cal, f"T_cam{cam}_velo"), ours.calib.T_cam_velo(cam), atol=1e-6)
        np.testing.assert_allclose(getattr(cal, f"T_cam{cam}_imu"), ours.calib.T_cam_imu(cam), atol=1e-6)
    assert cal.b_rgb == pytest.approx(ours.calib.baseline(2, 3), abs=1e-6)
    ours_poses = oxts_poses([ours.oxts(i) for i in range(FRAMES)])
    np.testing.assert_allclose(np.stack([p.T_w_imu for p in theirs.oxts]), ours_poses, atol=1e-6)


@pytest.fixture(scope="module")
def kitti2mcap_bag(synthetic_drive, tmp_path_factory):
    root, _ = synthetic_drive
    out = tmp_path_factory.mktemp("k2m") / "drive.mcap"
    subprocess.run([sys.executable, "-m", "kitti2mcap", "--date", DATE, "--drive", f"{SEED:04d}", "--kitti-dir",
                    str(root), "--output", str(out), "--cameras", "2,3"], check=True, capture_output=True, timeout=120)
    return out


def test_a_bag_without_recorded_qos_publishes_tf_static_as_tf2_static_broadcaster_does(kitti2mcap_bag):
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    with open_bag(kitti2mcap_bag) as reader:
        statics = [c for c in reader.connections if c.topic == "/tf_static"]
        assert statics and not getattr(statics[0].ext, "offered_qos_profiles", [])  # kitti2mcap records none
    q = qos_for([], None, "/tf_static")
    assert (q.durability, q.reliability) == (DurabilityPolicy.TRANSIENT_LOCAL, ReliabilityPolicy.RELIABLE)
    assert qos_for([], None, "/kitti/imu").durability == DurabilityPolicy.VOLATILE


def test_a_kitti2mcap_bag_replayed_into_the_three_nodes_gives_depth_from_each(kitti2mcap_bag):
    pytest.importorskip("tf2_msgs.msg")
    from depth_perception.nodes.runner import run_config

    overrides = {"stereo_depth_node": {"engine": "classical", "planes": 24, "qos_reliability": "reliable"},
                 "depth_completion_node": {"engine": "classical", "qos_reliability": "reliable"},
                 "mono_depth_node": {"qos_reliability": "reliable"}}
    summary = run_config(ROOT / "config" / "kitti2mcap.yaml", overrides=overrides, bag=kitti2mcap_bag, rate=1.0,
                         listen=True, drain_s=20.0)
    assert summary.replay_error is None
    assert set(summary.received) == {"/depth/mono/mono_depth_node", "/depth/stereo/stereo_depth_node",
                                     "/depth/completion/depth_completion_node"}
    assert all(n >= 1 for n in summary.received.values()), (summary.received, summary.nodes)


def test_a_rosbag2_folder_named_dot_bag_plays(tmp_path):
    from helpers.kitti_drive import write_tiny_drive

    drive = write_tiny_drive(tmp_path / "kitti", frames=2)
    bag = convert(drive, tmp_path / "out" / "good.bag").path
    assert bag.is_dir() and bag.suffix == ".bag"
    with open_bag(bag) as reader:
        assert sum(1 for _ in reader.messages()) == 12 * 2 + 1
    assert main(["play", str(bag), "--rate", "50"]) == 0


def test_kitti2bag_writes_chunk_crcs_that_an_independent_reader_checks(tmp_path):
    from helpers.kitti_drive import write_tiny_drive
    from mcap.reader import make_reader
    from mcap.stream_reader import StreamReader

    bag = convert(write_tiny_drive(tmp_path / "kitti", frames=2), tmp_path / "bag").path
    mcap_file = next(bag.glob("*.mcap"))
    with open(mcap_file, "rb") as f:
        chunks = [r for r in StreamReader(f, emit_chunks=True).records if type(r).__name__ == "Chunk"]
    assert chunks and all(c.uncompressed_crc != 0 for c in chunks)
    with open(mcap_file, "rb") as f:  # chunk CRCs and the data section CRC, checked as the stream is read
        records = list(StreamReader(f, validate_crcs=True).records)
    assert type(records[-1]).__name__ == "Footer" and records[-1].summary_crc != 0
    with open(mcap_file, "rb") as f:
        assert sum(1 for _ in make_reader(f, validate_crcs=True).iter_messages()) == 12 * 2 + 1


def test_a_corrupted_payload_fails_the_replay_with_one_line_naming_the_bag(tmp_path, capsys):
    from helpers.kitti_drive import write_tiny_drive

    bag = convert(write_tiny_drive(tmp_path / "kitti", frames=2, width=128, height=64), tmp_path / "bag").path
    mcap_file = next(bag.glob("*.mcap"))
    data = bytearray(mcap_file.read_bytes())
    middle = len(data) // 2  # inside the image payloads, which are most of the file
    data[middle:middle + 5000] = bytes(5000)
    mcap_file.write_bytes(bytes(data))
    with pytest.raises(BagError, match="checksum"), open_bag(bag) as reader:
        for _ in reader.messages():
            pass
    assert main(["play", str(bag), "--rate", "50"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "cannot read bag" in err[-1] and "checksum" in err[-1]


@pytest.mark.parametrize("msgtype", ["this/msg/Foo", "antigravity/msg/Fly", "os/msg/path", "sensor_msgs/msg/Nope",
                                     "../../x/msg/y", "sensor_msgs/srv/Image"])
def test_a_bag_type_string_never_imports_a_module_that_is_not_a_message_package(msgtype):
    code = ("import sys; from depth_perception.ros.bag_messages import rclpy_message_class, UnknownMessageType\n"
            f"try:\n    rclpy_message_class({msgtype!r})\nexcept UnknownMessageType as e:\n    print('refused', e)\n"
            "print('imported', sorted(m for m in ('this', 'antigravity') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "refused" in out and "imported []" in out, out


def test_real_message_types_still_resolve():
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from depth_perception.ros.bag_messages import rclpy_message_class

    assert rclpy_message_class("sensor_msgs/msg/Image") is Image
    assert rclpy_message_class("sensor_msgs/Image") is Image
    assert rclpy_message_class("tf2_msgs/msg/TFMessage") is TFMessage
