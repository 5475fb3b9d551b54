"""KITTI readers and writer: real-format fixtures read unchanged, and writer -> reader round trips."""
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_perception.data.kitti import (
    OXTS_FIELDS,
    KittiRawDrive,
    OxtsPacket,
    format_oxts,
    format_timestamp,
    oxts_from_poses,
    oxts_poses,
    parse_timestamp,
    read_calib,
    read_depth_png,
    read_oxts,
    read_split,
    read_timestamps,
    write_calib,
    write_depth_png,
    write_split,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.kitti_drive import PERIOD_NS, T0_NS, imu_poses, tiny_calib, write_tiny_drive

FIXTURES = Path(__file__).parent / "fixtures" / "kitti"


@pytest.fixture
def real_date_dir(tmp_path):
    d = tmp_path / "2011_09_26"
    d.mkdir()
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        shutil.copy(FIXTURES / name, d / name)
    return d


def test_real_calib_cam_to_cam_is_read_unchanged(real_date_dir):
    c = read_calib(real_date_dir)
    assert c.cameras == (0, 1, 2, 3)
    assert c.calib_time["calib_cam_to_cam.txt"] == "09-Jan-2012 13:58:50"
    assert c.corner_dist == pytest.approx(0.0995)
    assert c.S_rect[2] == (1224, 370) and c.S[3] == (1392, 512)  # S_03 comes before K_02 in the file
    np.testing.assert_allclose(c.T[2], [5.989688e-02, -1.367835e-03, 4.637624e-03])  # the trailing-space line
    np.testing.assert_allclose(c.P_rect[2][:, 3], [4.575831e01, -3.454157e-01, 4.981016e-03])
    np.testing.assert_allclose(c.R_rect_00[0], [9.999128e-01, 1.009263e-02, -8.511932e-03])
    cam2 = c.cam(2)
    assert (cam2.width, cam2.height, cam2.fx, cam2.cx, cam2.cy) == (1224, 370, 707.0493, 604.0814, 180.5066)
    assert c.baseline() == pytest.approx((45.75831 + 334.1081) / 707.0493)
    assert c.calib_time["calib_velo_to_cam.txt"] == "15-Mar-2012 11:37:16"
    np.testing.assert_allclose(c.T_cam0_velo[:3, 3], [-4.069766e-03, -7.631618e-02, -2.717806e-01])
    np.testing.assert_allclose(c.T_velo_imu[0, 3], -8.086759e-01)


def test_T_cam_velo_reproduces_the_devkit_projection(real_date_dir):
    c = read_calib(real_date_dir)
    R_rect = np.eye(4)
    R_rect[:3, :3] = c.R_rect_00
    pts = np.array([[10.0, 2.0, -1.0, 1.0], [25.0, -4.0, 0.5, 1.0]]).T
    for i in (0, 1, 2, 3):
        devkit = c.P_rect[i] @ R_rect @ c.T_cam0_velo @ pts
        ours = c.cam(i).K @ (c.T_cam_velo(i) @ pts)[:3]
        np.testing.assert_allclose(ours[:2] / ours[2], devkit[:2] / devkit[2], atol=1e-9)
    # the velodyne sits ~0.27 m behind and 0.08 m above cam0; cam2 is 6 cm left of cam0
    assert c.T_cam_velo(2)[0, 3] - c.T_cam_velo(0)[0, 3] == pytest.approx(0.06, abs=0.01)


def test_calib_write_read_round_trip_keeps_every_field(real_date_dir, tmp_path):
    c = read_calib(real_date_dir)
    write_calib(tmp_path / "out", c)
    text = (tmp_path / "out" / "calib_cam_to_cam.txt").read_text()
    assert text.startswith("calib_time: 09-Jan-2012 13:58:50\ncorner_dist: 9.950000e-02\n")
    assert "P_rect_02: 7.070493e+02 0.000000e+00 6.040814e+02 4.575831e+01" in text
    assert "delta_f: 0.000000e+00 0.000000e+00" in (tmp_path / "out" / "calib_velo_to_cam.txt").read_text()
    d = read_calib(tmp_path / "out")
    for name in ("P_rect", "R_rect", "K", "D", "R", "T"):
        for i in c.cameras:
            np.testing.assert_array_equal(getattr(d, name)[i], getattr(c, name)[i], err_msg=f"{name}[{i}]")
    assert d.S == c.S and d.S_rect == c.S_rect and d.calib_time == c.calib_time
    np.testing.assert_array_equal(d.T_cam0_velo, c.T_cam0_velo)
    np.testing.assert_array_equal(d.T_velo_imu, c.T_velo_imu)


def test_a_calib_with_only_rectified_matrices_is_written_complete(tmp_path):
    from depth_perception.data.kitti import KittiCalib

    P2 = np.array([[700.0, 0, 300, 42.0], [0, 700, 100, 0], [0, 0, 1, 0]])
    calib = KittiCalib(P_rect={2: P2}, R_rect={2: np.eye(3)}, S_rect={2: (600, 200)}, calib_time="01-Jan-2020 00:00:00")
    write_calib(tmp_path, calib)
    text = (tmp_path / "calib_cam_to_cam.txt").read_text()
    for key in ("S_02:", "K_02:", "D_02:", "R_02:", "T_02:", "S_rect_02:", "R_rect_02:", "P_rect_02:"):
        assert key in text
    back = read_calib(tmp_path)
    np.testing.assert_allclose(back.K[2], P2[:, :3])
    np.testing.assert_allclose(back.T[2], [0.06, 0, 0])
    assert back.calib_time["calib_imu_to_velo.txt"] == "01-Jan-2020 00:00:00"


def test_missing_or_malformed_calibration_names_the_file_and_key(real_date_dir):
    (real_date_dir / "calib_imu_to_velo.txt").unlink()
    with pytest.raises(FileNotFoundError, match="calib_imu_to_velo.txt"):
        read_calib(real_date_dir)
    (real_date_dir / "calib_imu_to_velo.txt").write_text("R: 1 0 0 0 1 0 0 0 1\nT: 1 2\n")
    with pytest.raises(ValueError, match=r"calib_imu_to_velo.txt: 'T' must have 3 numbers, got 2"):
        read_calib(real_date_dir)


def test_timestamps_keep_nanoseconds_exactly():
    stamps = read_timestamps(FIXTURES / "image_02_timestamps.txt")
    assert stamps.dtype == np.int64
    assert stamps[0] == 1_317_042_145_964_389_445
    assert stamps[1] - stamps[0] == 109_928_833
    assert format_timestamp(stamps[2]) == "2011-09-26 13:02:26.184246024"
    assert parse_timestamp("2011-09-26 13:02:25.5") == 1_317_042_145_500_000_000
    with pytest.raises(ValueError, match="not a KITTI timestamp"):
        parse_timestamp("26.09.2011 13:02")


def test_real_oxts_record_is_named_and_round_trips():
    p = read_oxts(FIXTURES / "oxts_0000000000.txt")
    assert len(p) == len(OXTS_FIELDS) == 30
    assert p.lat == pytest.approx(49.015003823272) and p.yaw == pytest.approx(-2.6087069803847)
    assert (p.navstat, p.numsats, p.posmode, p.velmode, p.orimode) == (4, 10, 4, 4, 0)
    assert isinstance(p.orimode, int)
    line = format_oxts(p)
    assert line.split()[-5:] == ["4", "10", "4", "4", "0"]
    assert OxtsPacket.from_values([float(v) for v in line.split()]) == p
    with pytest.raises(ValueError, match="30 values, got 29"):
        OxtsPacket.from_values(list(p)[:29])


def test_oxts_poses_invert_oxts_from_poses():
    poses = imu_poses(5)
    poses[3, :3, 3] += [0.0, 0.0, 0.7]
    back = oxts_poses(oxts_from_poses(poses))
    np.testing.assert_allclose(back, poses, atol=1e-6)


def test_depth_png_is_uint16_depth_times_256(tmp_path):
    depth = np.array([[0.0, 1.0, 12.34], [np.nan, -1.0, 300.0]], np.float32)
    write_depth_png(tmp_path / "d.png", depth)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_ANYDEPTH)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw, [[0, 256, round(12.34 * 256)], [0, 0, 0]])
    back = read_depth_png(tmp_path / "d.png")
    assert back.dtype == np.float32 and abs(back[0, 2] - 12.34) <= 1 / 512


def test_written_drive_reads_back(tmp_path):
    path = write_tiny_drive(tmp_path, frames=3, seed=4)
    assert path == tmp_path / "2011_09_26" / "2011_09_26_drive_0001_sync"
    drive = KittiRawDrive(path)
    drive.validate()
    assert drive.num_frames == 3 and drive.cameras == (0, 1, 2, 3)
    np.testing.assert_array_equal(drive.timestamps(2), T0_NS + PERIOD_NS * np.arange(3))
    assert (path / "image_02" / "timestamps.txt").read_text().splitlines()[0] == "2011-09-26 13:02:25.964389445"
    assert drive.timestamps("velodyne_points_start")[0] == T0_NS - 50_000_000
    assert (path / "oxts" / "dataformat.txt").read_text().startswith("lat:   latitude")

    # the same random frame the writer got (same seed)
    rng = np.random.default_rng(4)
    img2 = rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)
    grey0 = rng.integers(0, 256, (32, 64), dtype=np.uint8)
    np.testing.assert_array_equal(drive.image(2, 0), img2)  # RGB order survives the BGR PNG
    np.testing.assert_array_equal(drive.image(0, 0), grey0)
    assert drive.image(0, 0).shape == (32, 64)

    v = drive.velodyne(1)
    assert v.dtype == np.float32 and v.shape == (110, 4)
    assert drive.oxts(0).lat == pytest.approx(49.011)
    gt = drive.groundtruth_depth(2, 2)
    sp = drive.sparse_depth(3, 0)
    assert gt.dtype == np.float32 and gt.shape == (32, 64) and gt.min() >= 1 - 1 / 256
    assert 0 < (sp > 0).mean() < 0.3
    assert drive.groundtruth_depth(2, 3) is None and drive.normals(3, 0) is None
    n = drive.normals(2, 1)
    assert n.dtype == np.float32 and np.allclose(n, [0, 0, -1])

    calib = tiny_calib()
    poses_file = drive.cam_poses(2)
    assert poses_file.shape == (3, 4, 4)
    np.testing.assert_allclose(poses_file, imu_poses(3) @ np.linalg.inv(calib.T_cam_imu(2)), atol=1e-8)
    (path / "synthetic" / "poses_cam02.txt").unlink()
    np.testing.assert_allclose(drive.cam_poses(2), poses_file, atol=1e-5)  # from OXTS through the calib chain


def test_depth_maps_can_live_in_a_separate_depth_completion_folder(tmp_path):
    path = write_tiny_drive(tmp_path / "raw", frames=2)
    depth_dir = tmp_path / "data_depth_annotated" / "train" / path.name
    depth_dir.mkdir(parents=True)
    shutil.move(path / "proj_depth", depth_dir / "proj_depth")
    assert KittiRawDrive(path).groundtruth_depth(2, 0) is None
    drive = KittiRawDrive(path, depth_dir=depth_dir)
    assert drive.groundtruth_depth(2, 0).shape == (32, 64) and drive.sparse_depth(3, 1) is not None


def test_drive_errors_name_the_file(tmp_path):
    path = write_tiny_drive(tmp_path, frames=3)
    drive = KittiRawDrive(path)
    (path / "velodyne_points" / "data" / "0000000001.bin").write_bytes(b"\0" * 18)
    with pytest.raises(ValueError, match=r"truncated point cloud .*0000000001.bin"):
        drive.velodyne(1)
    (path / "image_03" / "data" / "0000000002.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"unreadable image .*image_03/data/0000000002.png"):
        drive.image(3, 2)
    (path / "oxts" / "data" / "0000000002.txt").unlink()
    with pytest.raises(ValueError, match=r"unequal frame counts: .*oxts/data has 2 files, expected 3"):
        drive.validate()
    with pytest.raises(FileNotFoundError, match="0000000002.txt"):
        drive.oxts(2)


def test_split_files(tmp_path):
    entries = read_split(FIXTURES / "eigen_test_files_head.txt")
    assert entries[0] == ("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")
    assert [e.cam for e in entries] == [2, 3, 2]
    write_split(tmp_path / "s.txt", entries)
    assert read_split(tmp_path / "s.txt") == entries
    (tmp_path / "bad.txt").write_text("2011_09_26/x 5 left\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        read_split(tmp_path / "bad.txt")
