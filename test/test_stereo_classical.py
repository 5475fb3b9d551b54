"""The classical plane sweep recovers rendered planes: fronto-parallel, slanted, and from a general pose."""
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.plane_sweep import rectified_pose
from depth_perception.pipelines.stereo_classical import (
    ClassicalStereo,
    ClassicalSweepConfig,
    census_transform,
    winner_take_all,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import pose, random_texture, render_plane

CAM = PinholeCamera(128, 96, 100.0, 100.0, 63.5, 47.5)
CFG = ClassicalSweepConfig(min_depth=2.0, max_depth=40.0, planes=40)
TEX = random_texture(7)


def _abs_rel(depth, gt):
    m = np.isfinite(depth)
    return float(np.median(np.abs(depth[m] - gt[m]) / gt[m])), float(m.mean())


def _pair(normal, offset, T=None, tpm=12.0):
    T = rectified_pose(0.5) if T is None else T
    ref, gt = render_plane(CAM, np.eye(4), np.asarray(normal, float), offset, TEX, tpm)
    src, _ = render_plane(CAM, T, np.asarray(normal, float), offset, TEX, tpm)
    return ref, src, gt, T


def test_recovers_a_fronto_parallel_plane():
    ref, src, gt, T = _pair([0, 0, 1.0], 8.0)
    depth, conf, info = ClassicalStereo(CFG).compute(ref, [(src, T)], CAM)
    err, valid = _abs_rel(depth, gt)
    assert err < 0.02 and valid > 0.85
    assert depth.dtype == np.float32 and conf.dtype == np.float32
    assert 0.0 <= conf.min() and conf.max() <= 1.0
    # Left of the disparity (6.25 px) the right camera sees nothing of these pixels: rejected, not guessed, up to
    # the left-right check's tolerance (3 px).
    assert np.all(np.isnan(depth[:, :4]))
    assert np.isnan(depth[:, 4]).mean() > 0.9
    assert info["valid_fraction"] == pytest.approx(valid)


def test_recovers_a_slanted_plane():
    n = np.array([0.35, -0.25, 1.0])
    ref, src, gt, T = _pair(n / np.linalg.norm(n), 7.0)
    depth, _, _ = ClassicalStereo(CFG).compute(ref, [(src, T)], CAM)
    err, valid = _abs_rel(depth, gt)
    assert gt.max() / gt.min() > 1.5  # the plane really spans a range of depths
    assert err < 0.03 and valid > 0.8


def test_recovers_depth_from_a_general_pose_and_two_views():
    T1 = pose(0.01, -0.02, 0.005, (-0.4, 0.05, 0.1))
    T2 = pose(-0.01, 0.02, 0.0, (0.3, -0.1, -0.2))
    ref, src1, gt, _ = _pair([0, 0, 1.0], 9.0, T1)
    _, src2, _, _ = _pair([0, 0, 1.0], 9.0, T2)
    depth, _, _ = ClassicalStereo(CFG).compute(ref, [(src1, T1), (src2, T2)], CAM)
    err, valid = _abs_rel(depth, gt)
    assert err < 0.03 and valid > 0.8


def test_textureless_image_gets_low_confidence():
    flat = np.full((96, 128, 3), 128, np.uint8)
    ref, src, _, T = _pair([0, 0, 1.0], 8.0)
    sweep = ClassicalStereo(ClassicalSweepConfig(2.0, 40.0, 40, lr_check=False))
    _, conf_flat, _ = sweep.compute(flat, [(flat, T)], CAM)
    _, conf_tex, _ = sweep.compute(ref, [(src, T)], CAM)
    assert conf_flat.mean() < 0.1 and conf_tex.mean() > 3 * conf_flat.mean()


def test_census_codes_compare_neighbours_with_the_centre():
    g = np.zeros((5, 5), np.float32)
    g[2, 2] = 1.0
    codes = census_transform(g, 1).astype(np.uint32)
    assert codes[2, 2] == 0xFF  # all 8 neighbours darker than the bright centre
    assert codes[0, 0] == 0


def test_parabola_refinement_finds_the_sub_plane_minimum():
    L = np.arange(9, dtype=np.float32)
    S = ((L - 3.3) ** 2)[None, None, :] + 1.0
    index, conf = winner_take_all(S)
    assert index[0, 0] == pytest.approx(3.3, abs=1e-4)
    assert 0 < conf[0, 0] <= 1


@pytest.mark.parametrize("kwargs, field", [
    (dict(min_depth=0.0), "min_depth"), (dict(max_depth=0.5), "max_depth"), (dict(planes=2), "planes"),
    (dict(paths=3), "paths"), (dict(p1=1.0, p2=0.5), "p1"), (dict(census_weight=2.0), "census_weight"),
    (dict(uniqueness_px=-1.0), "uniqueness_px"), (dict(speckle_range_px=-1.0), "speckle_range_px"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ClassicalSweepConfig(**kwargs)


def test_mismatched_images_are_refused():
    ref = np.zeros((96, 128, 3), np.uint8)
    with pytest.raises(ValueError, match="source image"):
        ClassicalStereo(CFG).compute(ref, [(ref[:50], rectified_pose(0.5))], CAM)
    with pytest.raises(ValueError, match="at least one source"):
        ClassicalStereo(CFG).compute(ref, [], CAM)


def test_the_compiled_kernels_compute_what_the_numpy_sweep_computes():
    from depth_perception.pipelines import stereo_classical as sc
    from depth_perception.pipelines import sweep_kernels

    assert sweep_kernels.AVAILABLE  # numba is a requirement of this environment
    rng = np.random.default_rng(3)
    gray = rng.random((23, 37)).astype(np.float32)
    src = rng.random((23, 37)).astype(np.float32)
    homographies = [np.array([[1.0, 0.0, -d], [0.0, 1.0, 0.3 * d], [0.0, 0.0, 1.0]]) for d in (0.0, 1.5, 4.2, 9.0)]
    for census_weight in (0.0, 0.5, 1.0):
        for radius in (1, 2):
            fast_cfg = ClassicalSweepConfig(census_radius=radius, census_weight=census_weight)
            slow_cfg = ClassicalSweepConfig(census_radius=radius, census_weight=census_weight, compiled=False)
            fast = sc.plane_costs(sc._RefStats(gray, fast_cfg), src, homographies, fast_cfg)
            slow = sc.plane_costs(sc._RefStats(gray, slow_cfg), src, homographies, slow_cfg)
            np.testing.assert_array_equal(fast[1], slow[1])
            np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5, atol=1e-5)

    cost = rng.random((23, 37, 11)).astype(np.float32)
    for paths in (2, 4):
        config = ClassicalSweepConfig(planes=11, paths=paths)
        fast = sc.semi_global_aggregate(cost, gray, config)
        slow = sc.semi_global_aggregate(cost, gray, ClassicalSweepConfig(planes=11, paths=paths, compiled=False))
        np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    S = sc.semi_global_aggregate(cost, gray, ClassicalSweepConfig(planes=11, compiled=False))
    for exclude in (1, 3):  # the second best outside the winner's +-exclude planes
        (i_fast, c_fast), (i_slow, c_slow) = winner_take_all(S, True, None, exclude), winner_take_all(S, False, None,
                                                                                                        exclude)
        np.testing.assert_allclose(i_fast, i_slow, atol=1e-5)
        np.testing.assert_allclose(c_fast, c_slow, atol=1e-5)
    assert (winner_take_all(S, exclude=3)[1] <= c_slow + 1e-6).all()  # wider exclusion: a rival as good or worse
    assert (winner_take_all(S, exclude=3)[1] >= winner_take_all(S, exclude=1)[1] - 1e-6).all()
    disparities = np.linspace(1.0, 9.0, 11).astype(np.float32)
    np.testing.assert_array_equal(sc.left_right_consistent(S, i_slow, disparities, 1.0, compiled=True),
                                  sc.left_right_consistent(S, i_slow, disparities, 1.0))


def test_a_rectified_view_is_shifted_as_opencv_warps_it_and_the_kernels_agree_with_numpy():
    import cv2

    from depth_perception.geometry.plane_sweep import plane_homographies, plane_inverse_depths
    from depth_perception.pipelines import stereo_classical as sc
    from depth_perception.pipelines import sweep_kernels

    rng = np.random.default_rng(4)
    cam = PinholeCamera(41, 13, 30.0, 30.0, 20.0, 6.0)
    src = rng.random((13, 41)).astype(np.float32)
    gray = rng.random((13, 41)).astype(np.float32)
    inv = plane_inverse_depths(0.5, 40.0, 9)  # disparities 0.4 .. 30 px: up to most of the row
    homographies = plane_homographies(cam.K, cam.K, rectified_pose(0.5), 1.0 / inv)
    disparities = (cam.fx * 0.5 * inv).astype(np.float32)
    ones = np.ones_like(src)
    pad = 3
    warped_pad = np.empty((9, 13 + 2 * pad, 41 + 2 * pad), np.float32)
    inside = np.empty((9, 13, 41), bool)
    sweep_kernels.shift_planes(src, disparities, pad, warped_pad, inside)
    for lvl, (H, d) in enumerate(zip(homographies, disparities, strict=True)):
        warped, seen = sc.shift_plane(src, d)
        flags = cv2.WARP_INVERSE_MAP
        opencv = cv2.warpPerspective(src, H, (41, 13), flags=cv2.INTER_LINEAR | flags, borderMode=cv2.BORDER_REPLICATE)
        opencv_seen = cv2.warpPerspective(ones, H, (41, 13), flags=cv2.INTER_NEAREST | flags, borderValue=0) > 0.5
        np.testing.assert_array_equal(seen, opencv_seen)
        np.testing.assert_allclose(warped, opencv, atol=1.0 / 32)  # OpenCV's fractions come in 1/32 px steps
        np.testing.assert_array_equal(inside[lvl], seen)
        padded = cv2.copyMakeBorder(warped, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        np.testing.assert_array_equal(warped_pad[lvl], padded)
    for grid in (0.0, 1.0 / 32, 0.5):  # one warp per plane, and planes sharing 1/8 px or whole pixels
        for census_weight in (0.0, 0.5, 1.0):
            for neutral in (False, True):
                kw = dict(shift_grid=grid, census_weight=census_weight)
                fast_cfg, slow_cfg = ClassicalSweepConfig(**kw), ClassicalSweepConfig(compiled=False, **kw)
                fast = sc.plane_costs(sc._RefStats(gray, fast_cfg), src, None, fast_cfg, disparities, neutral)
                slow = sc.plane_costs(sc._RefStats(gray, slow_cfg), src, None, slow_cfg, disparities, neutral)
                np.testing.assert_array_equal(fast[1], slow[1])
                np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5, atol=1e-5)
                assert (fast[0][~fast[1]] != sc._INVALID_COST).any() == neutral  # unseen planes neutral, or not


def test_the_subpixel_parabola_finds_a_minimum_between_unevenly_spaced_planes():
    from depth_perception.pipelines import stereo_classical as sc

    positions = np.array([0.0, 1.0, 1.9375, 3.0625, 4.0, 5.0], np.float32)  # planes nudged onto a 1/16 grid
    truth = np.array([[1.7, 2.3, 3.4]], np.float32)  # the cost's true minima, in position units
    S = (positions[None, None, :] - truth[..., None]) ** 2 + 0.1
    for compiled in (False, True):
        index, _ = sc.winner_take_all(S.astype(np.float32), compiled=compiled, positions=positions)
        found = np.interp(index, np.arange(6), positions)
        np.testing.assert_allclose(found, truth, atol=1e-4)
        even, _ = sc.winner_take_all(S.astype(np.float32), compiled=compiled)  # read as evenly spaced: off
        assert np.abs(np.interp(even, np.arange(6), positions) - truth).max() > 0.02


def test_planes_on_a_grid_of_fractions_cost_what_exact_shifts_cost_away_from_the_borders():
    from depth_perception.geometry.plane_sweep import plane_inverse_depths
    from depth_perception.pipelines import stereo_classical as sc

    rng = np.random.default_rng(5)
    src = rng.random((15, 60)).astype(np.float32)
    gray = rng.random((15, 60)).astype(np.float32)
    disparities = (20.0 * plane_inverse_depths(0.5, 40.0, 12)).astype(np.float32)
    assert sc.grid_fractions(disparities, 1.0 / 32) == 8  # planes 3.6 px apart: 1/16 px is 1/58 of that
    assert sc.grid_fractions(disparities, 1.0 / 128) == 32 and sc.grid_fractions(disparities, 1e-4) == 0
    on_grid = sc.quantize_disparities(disparities, 8)
    assert np.abs(on_grid - disparities).max() <= 1.0 / 16 + 1e-6
    assert np.all(on_grid * 8 == np.round(on_grid * 8))
    assert on_grid[0] >= disparities[0] and on_grid[-1] <= disparities[-1]  # the range's ends round inward
    gridded, exact = ClassicalSweepConfig(shift_grid=1.0 / 32), ClassicalSweepConfig(shift_grid=0.0)
    cost, seen = sc.plane_costs(sc._RefStats(gray, gridded), src, None, gridded, disparities)
    ref_cost, ref_seen = sc.plane_costs(sc._RefStats(gray, exact), src, None, exact, on_grid)
    np.testing.assert_array_equal(seen, ref_seen)
    inner = slice(3, -3)  # only the windows that reach past the image's columns read other pixels
    np.testing.assert_allclose(cost[:, inner], ref_cost[:, inner], atol=1e-5)
    assert np.abs(cost[:, :3] - ref_cost[:, :3]).max() > 1e-3  # ... and they do differ there
    with pytest.raises(ValueError, match="shift_grid"):
        ClassicalSweepConfig(shift_grid=0.7)


def test_the_compiled_sweep_gives_the_numpy_sweeps_depth():
    ref, src, gt, T = _pair([0.0, 0.0, 1.0], 9.0)
    fast, fast_conf, _ = ClassicalStereo(CFG).compute(ref, [(src, T)], CAM)
    slow_cfg = ClassicalSweepConfig(min_depth=2.0, max_depth=40.0, planes=40, compiled=False)
    slow, slow_conf, _ = ClassicalStereo(slow_cfg).compute(ref, [(src, T)], CAM)
    same = np.isfinite(fast) == np.isfinite(slow)
    assert same.mean() > 0.995
    both = np.isfinite(fast) & np.isfinite(slow)
    np.testing.assert_allclose(fast[both], slow[both], rtol=1e-3)


def test_the_kernel_build_the_set_up_and_the_test_runner_call_runs_every_compiled_kernel():
    import subprocess

    from depth_perception.geometry import infill, projection
    from depth_perception.pipelines import sweep_kernels

    done = subprocess.run([sys.executable, "-m", "depth_perception.pipelines.compiled"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    if sweep_kernels.AVAILABLE:  # numba installed: the entry builds through the compiled functions, not the twins
        assert projection._cloud_into is not projection._cloud_into_numpy
        assert infill._recursive_passes is not infill._recursive_passes_numpy
