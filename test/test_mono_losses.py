"""Monodepth2's photometric objective and Eigen's scale-invariant loss on cases with known answers."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.se3 import invert_transform
from depth_perception.training.mono_losses import (
    min_reprojection_loss,
    photometric_error,
    scale_invariant_log_loss,
    smoothness_loss,
    warp_source_to_target,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.mono_scene import render_corridor, texture

CAM = PinholeCamera(128, 64, 74.0, 74.0, 63.5, 31.5)


def _t(img):
    return torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32) / 255.0)[None]


def _pose(x=0.0, z=0.0, yaw=0.0):
    T = np.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:3, :3] = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    T[:3, 3] = [x, 0.0, z]
    return T


def _views(T_world_target, T_world_source):
    tex = texture(1)
    tgt, depth = render_corridor(CAM, T_world_target, tex)
    src, _ = render_corridor(CAM, T_world_source, tex)
    K = torch.from_numpy(CAM.K.astype(np.float32))[None]
    return _t(tgt), _t(src), torch.from_numpy(depth)[None, None], K


def test_identical_frames_have_zero_photometric_error():
    img = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    assert float(photometric_error(img, img).abs().max()) < 1e-6
    other = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    assert float(photometric_error(other, img).mean()) > 0.1


def test_warp_with_the_true_pose_and_depth_reproduces_the_target():
    T_wt, T_ws = _pose(z=1.0), _pose(x=0.3, z=1.8, yaw=0.05)
    target, source, depth, K = _views(T_wt, T_ws)
    T_st = torch.from_numpy((invert_transform(T_ws) @ T_wt).astype(np.float32))[None]
    warped, inside = warp_source_to_target(source, depth, K, T_st)
    err = photometric_error(warped, target)
    good = float((err * inside).sum() / inside.sum())
    T_wrong = torch.from_numpy((invert_transform(_pose(x=-0.5, z=0.5)) @ T_wt).astype(np.float32))[None]
    wrong_warp, _ = warp_source_to_target(source, depth, K, T_wrong)
    wrong = float(photometric_error(wrong_warp, target).mean())
    assert inside.mean() > 0.7
    assert good < 0.03
    assert wrong > 4 * good
    unwarped = float(photometric_error(source, target).mean())
    assert unwarped > 4 * good


def test_identity_pose_warp_returns_the_source():
    src = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(2))
    K = torch.tensor([[[20.0, 0, 11.5], [0, 20.0, 7.5], [0, 0, 1]]])
    warped, inside = warp_source_to_target(src, torch.full((1, 1, 16, 24), 5.0), K, torch.eye(4)[None])
    torch.testing.assert_close(warped, src, atol=1e-5, rtol=0)
    assert bool(inside.all())


def test_minimum_over_sources_takes_the_best_source_per_pixel():
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    noise = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    left_good = target.clone()
    left_good[..., 8:] = noise[..., 8:]
    right_good = target.clone()
    right_good[..., :8] = noise[..., :8]
    loss, _ = min_reprojection_loss(target, [left_good, right_good])
    single, _ = min_reprojection_loss(target, [left_good])
    assert float(loss) < 0.3 * float(single)


def test_auto_mask_prefers_identity_for_a_static_source():
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    static_source = target.clone()  # the camera did not move: nothing to learn from this pixel
    badly_warped = torch.roll(target, 3, dims=-1)
    loss, automask = min_reprojection_loss(target, [badly_warped], [static_source])
    assert float(automask.mean()) < 0.05
    assert float(loss) < 1e-4


def test_smoothness_is_zero_for_constant_disparity_and_cheaper_on_image_edges():
    img = torch.zeros(1, 3, 16, 16)
    assert float(smoothness_loss(torch.full((1, 1, 16, 16), 0.3), img)) == 0.0
    disp = torch.full((1, 1, 16, 16), 0.2)
    disp[..., 8:] = 0.6
    edge_img = torch.zeros(1, 3, 16, 16)
    edge_img[..., 8:] = 1.0
    assert float(smoothness_loss(disp, edge_img)) < 0.5 * float(smoothness_loss(disp, img))
    # mean-normalized: the same shape at another scale costs the same
    torch.testing.assert_close(smoothness_loss(disp * 10, img), smoothness_loss(disp, img))


def test_scale_invariant_loss_known_values():
    gt = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(6)) * 50 + 1
    assert float(scale_invariant_log_loss(gt, gt)) == pytest.approx(0.0, abs=1e-10)
    s = 3.0
    # d = log s everywhere: mean d^2 - lam mean(d)^2 = (1 - lam) log(s)^2
    assert float(scale_invariant_log_loss(gt * s, gt)) == pytest.approx(0.5 * np.log(s) ** 2, rel=1e-4)
    assert float(scale_invariant_log_loss(gt * s, gt, lam=1.0)) == pytest.approx(0.0, abs=1e-6)


def test_scale_invariant_loss_ignores_pixels_without_ground_truth():
    pred = torch.full((1, 1, 4, 4), 2.0)
    gt = torch.zeros(1, 1, 4, 4)
    gt[..., 0, 0] = 2.0
    assert float(scale_invariant_log_loss(pred, gt)) == pytest.approx(0.0, abs=1e-10)
    empty = scale_invariant_log_loss(pred.requires_grad_(), torch.zeros(1, 1, 4, 4))
    assert float(empty.detach()) == 0.0
    empty.backward()  # still a graph: a batch without LiDAR does not break training
