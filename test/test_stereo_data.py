"""Training samples from drives: stereo + temporal views with their poses, depth and normals at network size."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.geometry.plane_sweep import plane_homographies
from depth_perception.geometry.resample import resize_depth
from depth_perception.training.stereo_data import StereoDriveDataset, find_drives

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import PlaneDrive


def test_stereo_sample_has_the_right_camera_as_source_and_scaled_intrinsics():
    drive = PlaneDrive(frames=3)
    ds = StereoDriveDataset([drive], height=24, width=64, views=1, augment=False)
    assert len(ds) == 3
    s = ds[1]
    assert s["reference"].shape == (3, 24, 64) and s["sources"].shape == (1, 3, 24, 64)
    T = np.eye(4)
    T[0, 3] = -0.5
    np.testing.assert_allclose(s["poses"][0].numpy(), T)
    np.testing.assert_allclose(s["intrinsics"].numpy(), drive.camera.scaled(64, 24).K, rtol=1e-6)
    assert s["depth"].shape == (1, 24, 64) and torch.all(s["depth"] > 0)
    n = s["normal"]
    torch.testing.assert_close(n.norm(dim=0), torch.ones(24, 64))
    assert torch.all(n[2] < 0)  # towards the camera


def test_temporal_views_carry_poses_that_align_the_frames():
    drive = PlaneDrive(frames=4)
    ds = StereoDriveDataset([drive], height=48, width=128, views=3, augment=False)
    assert len(ds) == 2  # frames with a neighbour on both sides
    s = ds[0]  # frame 1, sources: right, frame 0, frame 2
    assert s["sources"].shape == (3, 3, 48, 128)
    T_prev = s["poses"][1].numpy().astype(np.float64)
    np.testing.assert_allclose(T_prev[:3, 3], [0, 0, 0.5], atol=1e-6)  # frame 0 sits 0.5 m behind frame 1
    # Warping the previous frame by its pose and the true depth reproduces the reference (centre pixel).
    depth = drive.groundtruth_depth(2, 1)
    v, u = 24, 64
    H = plane_homographies(drive.camera.K, drive.camera.K, T_prev, [depth[v, u]])[0]
    p = H @ np.array([u, v, 1.0])
    src_img = drive.image(2, 0)[..., 0].astype(float)
    su, sv = p[0] / p[2], p[1] / p[2]
    import cv2

    sample = cv2.getRectSubPix(src_img.astype(np.float32), (1, 1), (su, sv))[0, 0]
    assert abs(sample - float(drive.image(2, 1)[v, u, 0])) < 20


def test_sparse_ground_truth_is_kept_when_resized_and_normals_may_be_absent():
    drive = PlaneDrive(frames=2, sparse=True)
    ds = StereoDriveDataset([drive], height=24, width=64, augment=False)
    s = ds[0]
    assert 0 < (s["depth"] > 0).float().mean() < 0.5
    assert torch.all(s["normal"] == 0)


def test_resize_depth_scatters_sparse_points_keeping_the_nearest():
    d = np.zeros((4, 4), np.float32)
    d[0, 0], d[0, 1] = 5.0, 3.0
    out = resize_depth(d, 2, 2)
    assert out[0, 0] == 3.0 and np.count_nonzero(out) == 1


def test_missing_data_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_drives([tmp_path / "nope"])
    with pytest.raises(ValueError, match="no KITTI-layout drives"):
        find_drives([tmp_path])


def test_raw_velodyne_is_projected_when_the_drive_has_no_depth_maps():
    class VeloDrive(PlaneDrive):
        has_velodyne = True

        def groundtruth_depth(self, cam, i):
            return None

        def sparse_depth(self, cam, i):
            return None

        def velodyne(self, i):  # points straight ahead of camera 02 (velodyne frame = camera frame here)
            return np.array([[0.0, 0.0, 10.0, 1.0], [1.0, 0.0, 5.0, 1.0]], np.float32)

    drive = VeloDrive(frames=1)
    drive.calib.T_cam_velo = lambda cam: np.eye(4)
    s = StereoDriveDataset([drive], height=48, width=128, augment=False)[0]
    d = s["depth"][0].numpy()
    assert np.count_nonzero(d) == 2
    assert d[24, 64] == pytest.approx(10.0)  # (cx, cy) = (63.5, 23.5) rounds to pixel (64, 24)
