"""Plane-sweep geometry: planes uniform in inverse depth, homographies land where projection says, torch = numpy."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.plane_sweep import (
    homography_grid_torch,
    inv_intrinsics_torch,
    plane_depths,
    plane_homographies,
    plane_homographies_torch,
    plane_index_to_depth,
    plane_inverse_depths,
    rectified_baseline,
    rectified_pose,
    scale_intrinsics_torch,
    warp_to_planes_torch,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import pose, random_texture, render_plane

CAM = PinholeCamera(96, 64, 80.0, 82.0, 47.5, 31.5)


def test_planes_are_uniform_in_inverse_depth_far_to_near():
    d = plane_depths(2.0, 50.0, 9)
    assert d[0] == pytest.approx(50.0) and d[-1] == pytest.approx(2.0)
    np.testing.assert_allclose(np.diff(1.0 / d), (0.5 - 0.02) / 8)
    np.testing.assert_allclose(plane_index_to_depth(np.arange(9), 2.0, 50.0, 9), d, rtol=1e-6)


@pytest.mark.parametrize("args, field", [((0.0, 10.0, 8), "min_depth"), ((5.0, 5.0, 8), "max_depth"),
                                         ((1.0, 10.0, 1), "num_planes")])
def test_bad_plane_ranges_are_refused(args, field):
    with pytest.raises(ValueError, match=field):
        plane_inverse_depths(*args)


def test_rectified_homography_is_a_shift_by_the_disparity():
    depths = plane_depths(1.0, 40.0, 5)
    H = plane_homographies(CAM.K, CAM.K, rectified_pose(0.5), depths)
    for Hl, d in zip(H, depths, strict=True):
        p = Hl @ np.array([30.0, 20.0, 1.0])
        assert p[0] / p[2] == pytest.approx(30.0 - CAM.fx * 0.5 / d)
        assert p[1] / p[2] == pytest.approx(20.0)
    assert rectified_baseline(rectified_pose(0.5)) == pytest.approx(0.5)
    assert rectified_baseline(pose(ry=0.01, t=(-0.5, 0, 0))) is None


def test_homography_maps_reference_pixels_of_plane_points_to_their_source_projection():
    rng = np.random.default_rng(1)
    T = pose(0.02, -0.05, 0.01, (-0.3, 0.1, 0.2))
    K_src = np.array([[70.0, 0, 40.0], [0, 71.0, 30.0], [0, 0, 1]])
    for d in (3.0, 12.0):
        X = np.c_[rng.uniform(-2, 2, (20, 2)), np.full(20, d)]
        ref_px = X @ CAM.K.T
        ref_px /= ref_px[:, 2:]
        Xs = X @ T[:3, :3].T + T[:3, 3]
        src_px = Xs @ K_src.T
        src_px /= src_px[:, 2:]
        H = plane_homographies(CAM.K, K_src, T, [d])[0]
        mapped = ref_px @ H.T
        np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], src_px[:, :2], atol=1e-9)


def test_torch_homographies_equal_numpy_for_a_batch_of_views():
    T1, T2 = pose(0.01, 0.03, 0.0, (-0.5, 0, 0.1)), pose(-0.02, 0.0, 0.01, (0.2, 0.05, -0.4))
    inv = plane_inverse_depths(1.0, 30.0, 6)
    Ht = plane_homographies_torch(
        torch.tensor(CAM.K)[None], torch.tensor(np.stack([CAM.K, CAM.K]))[None],
        torch.tensor(np.stack([T1, T2]))[None], torch.tensor(inv),
    )
    assert Ht.shape == (1, 2, 6, 3, 3)
    for v, T in enumerate((T1, T2)):
        want = plane_homographies(CAM.K, CAM.K, T, 1 / inv)
        np.testing.assert_allclose(Ht[0, v].numpy(), want, rtol=1e-10, atol=1e-10)


def test_closed_form_inverse_and_scaling_of_intrinsics():
    K = torch.tensor(CAM.K)[None]
    np.testing.assert_allclose(inv_intrinsics_torch(K)[0].numpy(), np.linalg.inv(CAM.K), atol=1e-12)
    half = CAM.scaled(48, 32)
    np.testing.assert_allclose(scale_intrinsics_torch(K, 0.5)[0].numpy(), half.K, atol=1e-12)


def test_warping_the_source_onto_the_true_plane_reproduces_the_reference_view():
    tex = random_texture(3)
    d = 6.0
    T = pose(0.01, -0.03, 0.0, (-0.4, 0.05, 0.1))
    # About one texel per pixel: finer texture would alias differently in the two views.
    ref, _ = render_plane(CAM, np.eye(4), np.array([0, 0, 1.0]), d, tex, texels_per_metre=6.0)
    src, _ = render_plane(CAM, T, np.array([0, 0, 1.0]), d, tex, texels_per_metre=6.0)
    depths = np.array([20.0, d, 2.0])
    H = plane_homographies(CAM.K, CAM.K, T, depths)
    inner = (slice(8, -8), slice(12, -12))
    ref_g = ref[..., 0].astype(np.float32)
    errs = []
    for Hl in H:
        warped = cv2.warpPerspective(src[..., 0].astype(np.float32), Hl, (CAM.width, CAM.height),
                                     flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        errs.append(np.abs(warped - ref_g)[inner].mean())
    assert errs[1] < 1.5 and errs[0] > 8 * errs[1] and errs[2] > 8 * errs[1]
    # The torch warp (one grid_sample for all planes) gives the same images as OpenCV.
    src_t = torch.from_numpy(src[..., 0].astype(np.float32))[None, None]
    vol = warp_to_planes_torch(src_t, torch.from_numpy(H)[None].float())
    assert vol.shape == (1, 1, 3, CAM.height, CAM.width)
    warped_cv = cv2.warpPerspective(src[..., 0].astype(np.float32), H[1], (CAM.width, CAM.height),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    np.testing.assert_allclose(vol[0, 0, 1].numpy()[inner], warped_cv[inner], atol=0.05)


def test_grid_marks_points_behind_the_source_camera_as_outside():
    H = torch.eye(3)[None, None].clone()
    H[0, 0, 2, 2] = -1.0  # every pixel maps behind the camera
    grid = homography_grid_torch(H, 4, 5)
    assert grid.shape == (1, 4, 5, 2)
    assert torch.all(grid[..., 0] < -1.0)
