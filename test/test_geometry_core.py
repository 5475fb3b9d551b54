"""Camera model, projection and SE(3) helpers on hand-computed cases; torch twins equal to numpy."""
import numpy as np
import pytest

from depth_perception.geometry import PinholeCamera, backproject, points_to_sparse_depth, project_points, se3
from depth_perception.geometry.projection import depth_to_disparity, disparity_to_depth

CAM = PinholeCamera(width=8, height=6, fx=10.0, fy=12.0, cx=3.5, cy=2.5)


def test_backproject_then_project_returns_the_pixel():
    depth = np.full(CAM.shape, 4.0, np.float32)
    pts = backproject(depth, CAM)
    u, v, z = project_points(pts.reshape(-1, 3), CAM)
    uu, vv = np.meshgrid(np.arange(8), np.arange(6))
    np.testing.assert_allclose(u, uu.ravel(), atol=1e-5)
    np.testing.assert_allclose(v, vv.ravel(), atol=1e-5)
    np.testing.assert_allclose(z, 4.0)


def test_sparse_depth_keeps_the_nearest_point_per_pixel():
    pts = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 2.0], [0.0, 0.0, 9.0], [-0.7, 0, 2.0]], np.float32)
    d = points_to_sparse_depth(pts, CAM)
    # (0, 0, z) lands on (cx, cy) = (3.5, 2.5), rounded to pixel (4, 3).
    assert d[3, 4] == pytest.approx(2.0)
    assert d[3, 0] == pytest.approx(2.0)  # u = 10 * -0.7 / 2 + 3.5 = 0
    assert np.count_nonzero(d) == 2


def test_points_behind_the_camera_or_outside_the_image_are_dropped():
    pts = np.array([[0, 0, -3.0], [100, 0, 1.0]], np.float32)
    assert not points_to_sparse_depth(pts, CAM).any()


def test_disparity_and_depth_are_inverse():
    depth = np.array([[1.0, 10.0, 0.0]], np.float32)
    disp = depth_to_disparity(depth, 721.5, 0.54)
    assert disp[0, 0] == pytest.approx(721.5 * 0.54)
    assert np.isnan(disp[0, 2])
    np.testing.assert_allclose(disparity_to_depth(disp, 721.5, 0.54)[0, :2], depth[0, :2], rtol=1e-6)


def test_scaled_camera_maps_pixel_centres():
    half = CAM.scaled(4, 3)
    assert half.fx == pytest.approx(5.0) and half.cx == pytest.approx(1.5)


def test_crop_outside_the_image_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        CAM.cropped(4, 0, 8, 6)


def test_quaternion_round_trip_and_slerp_midpoint():
    R = se3.euler_to_matrix(0.1, -0.2, 0.7)
    q = se3.matrix_to_quaternion(R)
    np.testing.assert_allclose(se3.quaternion_to_matrix(q), R, atol=1e-12)
    q0 = se3.matrix_to_quaternion(np.eye(3))
    q1 = se3.matrix_to_quaternion(se3.euler_to_matrix(0, 0, np.pi / 2))
    mid = se3.quaternion_to_matrix(se3.quaternion_slerp(q0, q1, 0.5))
    np.testing.assert_allclose(mid, se3.euler_to_matrix(0, 0, np.pi / 4), atol=1e-12)


def test_inverse_transform_composes_to_identity():
    T = se3.make_transform(se3.euler_to_matrix(0.3, 0.2, -1.0), [1, 2, 3])
    np.testing.assert_allclose(T @ se3.invert_transform(T), np.eye(4), atol=1e-12)


def test_torch_twins_match_numpy():
    torch = pytest.importorskip("torch")
    from depth_perception.geometry.projection import backproject_torch, project_torch

    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 20, CAM.shape).astype(np.float32)
    pts_np = backproject(depth, CAM)
    K = torch.tensor(CAM.K, dtype=torch.float32)[None]
    pts_t = backproject_torch(torch.from_numpy(depth)[None, None], torch.linalg.inv(K))
    np.testing.assert_allclose(pts_t[0].permute(1, 2, 0).numpy(), pts_np, rtol=1e-5, atol=1e-5)
    uv, z = project_torch(pts_t, K)
    u, v, _ = project_points(pts_np.reshape(-1, 3), CAM)
    np.testing.assert_allclose(uv[0, ..., 0].numpy().ravel(), u, atol=1e-3)
    v_rot = rng.normal(size=3)
    np.testing.assert_allclose(
        se3.axis_angle_to_matrix_torch(torch.tensor(v_rot)[None])[0, :3, :3].numpy(),
        se3.axis_angle_to_matrix(v_rot), atol=1e-9,
    )
