"""kitti2bag: a written drive becomes a rosbag2 bag that independent readers (mcap, mcap-ros2-support) decode."""
import shutil
import sqlite3
import sys
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory

from depth_perception.cli import main
from depth_perception.data.kitti import KittiRawDrive, oxts_poses
from depth_perception.geometry.se3 import make_transform, quaternion_to_matrix

sys.path.insert(0, str(Path(__file__).parent))
from helpers.kitti_drive import write_tiny_drive

pytestmark = pytest.mark.slow  # not in `make test-fast`

FRAMES = 3
CAMS = {0: "camera_gray_left", 1: "camera_gray_right", 2: "camera_color_left", 3: "camera_color_right"}


@pytest.fixture(scope="module")
def drive_path(tmp_path_factory):
    return write_tiny_drive(tmp_path_factory.mktemp("kitti"), frames=FRAMES, seed=7)


@pytest.fixture(scope="module")
def mcap_bag(drive_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("bags") / "drive_mcap"
    assert main(["kitti2bag", str(drive_path), str(out)]) == 0
    return out


def stamp_ns(header):
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def tf_matrix(t):
    q = t.transform.rotation
    v = t.transform.translation
    return make_transform(quaternion_to_matrix([q.x, q.y, q.z, q.w]), [v.x, v.y, v.z])


def read_mcap(bag):
    files = sorted(bag.glob("*.mcap"))
    assert len(files) == 1
    with open(files[0], "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        return [(c.topic, m.log_time, msg, s.name) for s, c, m, msg in reader.iter_decoded_messages()]


def test_every_message_decodes_with_the_independent_mcap_reader(drive_path, mcap_bag):
    drive = KittiRawDrive(drive_path)
    msgs = read_mcap(mcap_bag)
    topics = {}
    for topic, _, _, schema in msgs:
        topics.setdefault(topic, [schema, 0])[1] += 1
    expected = {f"/kitti/{n}/image_raw": ["sensor_msgs/msg/Image", FRAMES] for n in CAMS.values()}
    expected |= {f"/kitti/{n}/camera_info": ["sensor_msgs/msg/CameraInfo", FRAMES] for n in CAMS.values()}
    expected |= {"/kitti/velo/pointcloud": ["sensor_msgs/msg/PointCloud2", FRAMES],
                 "/kitti/oxts/imu": ["sensor_msgs/msg/Imu", FRAMES],
                 "/kitti/oxts/gps/fix": ["sensor_msgs/msg/NavSatFix", FRAMES],
                 "/tf": ["tf2_msgs/msg/TFMessage", FRAMES], "/tf_static": ["tf2_msgs/msg/TFMessage", 1]}
    assert topics == expected
    log_times = [t for _, t, _, _ in msgs]
    assert log_times == sorted(log_times)

    seen = {}
    for topic, log_time, msg, _ in msgs:
        if topic == "/tf_static":
            continue
        i = seen[topic] = seen.get(topic, -1) + 1
        assert stamp_ns(getattr(msg, "header", None) or msg.transforms[0].header) == log_time
        if topic.endswith("image_raw"):
            cam = next(c for c, n in CAMS.items() if n in topic)
            assert log_time == drive.timestamps(cam)[i]
            assert msg.header.frame_id == CAMS[cam]
            img = drive.image(cam, i)
            assert msg.encoding == ("rgb8" if cam >= 2 else "mono8")
            assert (msg.height, msg.width, msg.step) == (32, 64, 64 * (3 if cam >= 2 else 1))
            assert bytes(msg.data) == img.tobytes()
        elif topic.endswith("camera_info"):
            cam = next(c for c, n in CAMS.items() if n in topic)
            assert msg.distortion_model == "plumb_bob" and (msg.width, msg.height) == (64, 32)
            np.testing.assert_allclose(np.reshape(msg.p, (3, 4)), drive.calib.P_rect[cam])
            np.testing.assert_allclose(np.reshape(msg.k, (3, 3)), drive.calib.K[cam])
            np.testing.assert_allclose(np.reshape(msg.r, (3, 3)), drive.calib.R_rect[cam])
            assert len(msg.d) == 5
        elif topic == "/kitti/velo/pointcloud":
            assert log_time == drive.timestamps("velodyne_points")[i]
            assert msg.header.frame_id == "velo_link"
            assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
                ("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7)]
            assert bytes(msg.data) == drive.velodyne(i).tobytes() and msg.width == 100 + 10 * i
        elif topic == "/kitti/oxts/imu":
            p = drive.oxts(i)
            assert msg.header.frame_id == "imu_link"
            q = msg.orientation
            R = quaternion_to_matrix([q.x, q.y, q.z, q.w])
            assert np.arctan2(R[1, 0], R[0, 0]) == pytest.approx(p.yaw)
            assert msg.linear_acceleration.z == pytest.approx(p.au)
        elif topic == "/kitti/oxts/gps/fix":
            p = drive.oxts(i)
            assert (msg.latitude, msg.longitude, msg.altitude) == (p.lat, p.lon, p.alt)
            assert log_time == drive.timestamps("oxts")[i]
        elif topic == "/tf":
            t = msg.transforms[0]
            assert (t.header.frame_id, t.child_frame_id) == ("world", "base_link")
            expected_pose = oxts_poses([drive.oxts(k) for k in range(FRAMES)])[i]
            np.testing.assert_allclose(tf_matrix(t), expected_pose, atol=1e-9)


def test_static_transforms_chain_to_the_calibration(drive_path, mcap_bag):
    calib = KittiRawDrive(drive_path).calib
    (static,) = [m for topic, _, m, _ in read_mcap(mcap_bag) if topic == "/tf_static"]
    tfs = {(t.header.frame_id, t.child_frame_id): tf_matrix(t) for t in static.transforms}
    assert set(tfs) == {("base_link", "imu_link"), ("imu_link", "velo_link")} | {("imu_link", n) for n in CAMS.values()}
    np.testing.assert_allclose(tfs[("base_link", "imu_link")], np.eye(4))
    # camera <- velodyne through the tree equals the KITTI chain T_cam_velo
    for cam, name in CAMS.items():
        T_cam_velo = np.linalg.inv(tfs[("imu_link", name)]) @ tfs[("imu_link", "velo_link")]
        np.testing.assert_allclose(T_cam_velo, calib.T_cam_velo(cam), atol=1e-9)


def test_bag_metadata_and_qos(mcap_bag):
    meta = (mcap_bag / "metadata.yaml").read_text()
    assert "version: 8" in meta and "storage_identifier: mcap" in meta
    with open(next(mcap_bag.glob("*.mcap")), "rb") as f:
        summary = make_reader(f).get_summary()
    assert summary.statistics.message_count == 12 * FRAMES + 1


def test_sqlite3_bag_holds_the_same_serialized_messages(drive_path, mcap_bag, tmp_path):
    out = tmp_path / "drive_sqlite"
    assert main(["kitti2bag", str(drive_path), str(out), "--storage", "sqlite3"]) == 0
    (db,) = out.glob("*.db3")
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT t.name, t.type, m.timestamp, m.data FROM messages m JOIN topics t "
                           "ON m.topic_id = t.id ORDER BY m.timestamp, m.id").fetchall()
    with open(next(mcap_bag.glob("*.mcap")), "rb") as f:
        ref = [(c.topic, s.name, m.log_time, m.data) for s, c, m in make_reader(f).iter_messages(log_time_order=True)]
    assert sorted((r[0], r[2], bytes(r[3])) for r in rows) == sorted((r[0], r[2], bytes(r[3])) for r in ref)
    assert {r[0]: r[1] for r in rows} == {r[0]: r[1] for r in ref}


def test_frame_range(drive_path, tmp_path):
    out = tmp_path / "part"
    assert main(["kitti2bag", str(drive_path), str(out), "--start", "1", "--end", "3"]) == 0
    msgs = read_mcap(out)
    drive = KittiRawDrive(drive_path)
    stamps = [t for topic, t, _, _ in msgs if topic == "/kitti/camera_color_left/image_raw"]
    assert stamps == list(drive.timestamps(2)[1:3])
    assert main(["kitti2bag", str(drive_path), str(tmp_path / "bad"), "--start", "2", "--end", "9"]) == 2


def break_missing_calib(drive):
    (drive.parent / "calib_velo_to_cam.txt").unlink()
    return "calib_velo_to_cam.txt"


def break_frame_count(drive):
    (drive / "image_01" / "data" / "0000000002.png").unlink()
    return "image_01/data has 2 files, expected 3"


def break_truncated_bin(drive):
    p = drive / "velodyne_points" / "data" / "0000000001.bin"
    p.write_bytes(p.read_bytes()[:-6])
    return "velodyne_points/data/0000000001.bin"


def break_unreadable_png(drive):
    (drive / "image_02" / "data" / "0000000002.png").write_bytes(b"\x89PNG garbage")
    return "image_02/data/0000000002.png"


def break_timestamps(drive):
    p = drive / "oxts" / "timestamps.txt"
    p.write_text(p.read_text().splitlines()[0] + "\n")
    return "oxts/timestamps.txt has 1 timestamps for 3 frames"


@pytest.mark.parametrize("breaker", [break_missing_calib, break_frame_count, break_truncated_bin,
                                     break_unreadable_png, break_timestamps])
def test_bad_input_stops_with_one_line_naming_the_file_and_leaves_no_bag(breaker, tmp_path, capsys):
    drive = write_tiny_drive(tmp_path / "kitti", frames=3)
    needle = breaker(drive)
    out = tmp_path / "bags" / "out"
    out.parent.mkdir()
    assert main(["kitti2bag", str(drive), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert list(out.parent.iterdir()) == []  # neither the bag nor a temporary folder


def test_colour_only_drive_without_oxts(tmp_path):
    drive = write_tiny_drive(tmp_path / "kitti", frames=2, grey=False)
    shutil.rmtree(drive / "oxts")
    out = tmp_path / "bag"
    assert main(["kitti2bag", str(drive), str(out)]) == 0
    topics = {topic for topic, _, _, _ in read_mcap(out)}
    assert topics == {"/tf_static", "/kitti/velo/pointcloud"} | {
        f"/kitti/camera_color_{side}/{kind}" for side in ("left", "right") for kind in ("image_raw", "camera_info")}


def test_missing_drive_folder(tmp_path, capsys):
    assert main(["kitti2bag", str(tmp_path / "nope"), str(tmp_path / "bag")]) == 2
    assert "not a drive folder" in capsys.readouterr().err and not (tmp_path / "bag").exists()


def test_existing_output_is_kept_unless_overwrite(drive_path, tmp_path, capsys):
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main(["kitti2bag", str(drive_path), str(out)]) == 2
    assert "exists already" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main(["kitti2bag", str(drive_path), str(out), "--overwrite", "--end", "1"]) == 0
    assert not (out / "keep.txt").exists() and len(read_mcap(out)) == 13
