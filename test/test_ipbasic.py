"""IP-Basic in-fill: dense output, small error on a sparse plane, nearest surface wins, configuration checks."""
import numpy as np
import pytest

from depth_perception.geometry.infill import IpBasicConfig, distance_confidence, ipbasic_complete


def _sparse_plane(h=96, w=160, density=0.06, seed=0, top_empty=20):
    v, u = np.mgrid[0:h, 0:w]
    gt = (8.0 + 0.03 * u + 0.05 * v).astype(np.float32)  # a slanted plane, 8-17 m
    rng = np.random.default_rng(seed)
    sparse = np.where(rng.random((h, w)) < density, gt, 0).astype(np.float32)
    sparse[:top_empty] = 0  # like a LiDAR, nothing above its highest beam
    return gt, sparse


def test_fills_a_sparse_plane_densely_with_small_error():
    gt, sparse = _sparse_plane()
    dense = ipbasic_complete(sparse)
    assert dense.shape == gt.shape and dense.dtype == np.float32
    assert np.all(dense > 0)  # every pixel gets a depth
    err = np.abs(dense - gt)[20:]
    assert err.mean() < 0.1 and np.percentile(err, 99) < 0.5
    assert np.abs(dense - gt)[:20].mean() < 1.5  # extended upwards from the top row


def test_the_nearer_surface_wins_where_surfaces_meet():
    h, w = 40, 40
    sparse = np.zeros((h, w), np.float32)
    sparse[::3, ::3] = 30.0  # background
    sparse[15:25:3, 15:25:3] = 5.0  # a near object in front
    dense = ipbasic_complete(sparse, IpBasicConfig(blur="none"))
    assert dense[19, 19] == pytest.approx(5.0, abs=1e-3)
    assert dense[2, 2] == pytest.approx(30.0, abs=1e-3)


def test_empty_input_gives_zeros_and_config_is_validated():
    assert not ipbasic_complete(np.zeros((8, 8), np.float32)).any()
    with pytest.raises(ValueError, match="blur"):
        IpBasicConfig(blur="box")
    with pytest.raises(ValueError, match="max_depth"):
        IpBasicConfig(max_depth=0)
    with pytest.raises(ValueError, match="shape"):
        ipbasic_complete(np.zeros((2, 2, 2)))


def test_confidence_is_one_on_measurements_and_falls_with_distance():
    sparse = np.zeros((20, 20), np.float32)
    sparse[10, 10] = 4.0
    conf = distance_confidence(sparse)
    assert conf[10, 10] == pytest.approx(1.0) and conf[10, 14] < conf[10, 12] < 1.0


# ----------------------------------------------------------------------------------- the colour-guided in-fill


def _two_regions(h=40, w=80):
    """A dark left half 5 m away and a bright right half 20 m away, measured at a sparse grid of pixels."""
    image = np.zeros((h, w, 3), np.uint8)
    image[:, w // 2:] = 200
    depth = np.where(np.arange(w)[None, :] < w // 2, 5.0, 20.0).repeat(h, 0).astype(np.float32)
    sparse = np.zeros_like(depth)
    sparse[2::6, 3::9] = depth[2::6, 3::9]
    return image, depth, sparse


def test_the_guided_fill_keeps_measurements_follows_colour_edges_and_scales_with_depth():
    from depth_perception.geometry.infill import guided_fill, guided_prior, ipbasic_prior

    image, depth, sparse = _two_regions()
    filled = guided_fill(image, sparse, ipbasic_prior(sparse))
    measured = sparse > 0
    np.testing.assert_array_equal(filled[measured], sparse[measured])
    # across the colour edge nothing leaks: each half stays at its own depth up to the edge
    np.testing.assert_allclose(filled, depth, rtol=0.02)
    blind = guided_fill(np.zeros_like(image), sparse, ipbasic_prior(sparse))  # no edge to stop at
    assert np.abs(blind - depth)[:, 36:44].max() > 3.0
    np.testing.assert_allclose(guided_prior(image, 3.0 * sparse), 3.0 * guided_prior(image, sparse), rtol=1e-4)


def test_the_guided_fill_leans_on_its_base_where_no_measurement_reaches_and_checks_shapes():
    from depth_perception.geometry.infill import completion_prior, guided_fill

    image, depth, sparse = _two_regions()
    sparse[:, 40:] = 0.0  # nothing measured on the right half: the base decides there
    base = np.full_like(depth, 7.0)
    filled = guided_fill(image, sparse, base)
    np.testing.assert_allclose(filled[:, 50:], 7.0, rtol=0.01)
    np.testing.assert_allclose(filled[:, :30], 5.0, rtol=0.01)
    with pytest.raises(ValueError, match="one size"):
        guided_fill(image[:, :10], sparse, base)
    with pytest.raises(ValueError, match="no in-fill for prior"):
        completion_prior("nearest", image, sparse)


def test_the_compiled_recursive_passes_compute_what_the_numpy_ones_do():
    from depth_perception.geometry import infill

    assert infill._recursive_passes is not infill._recursive_passes_numpy  # numba is in this environment
    rng = np.random.default_rng(1)
    values = rng.random((2, 9, 31)).astype(np.float32)
    fx, fy = rng.random((2, 9, 31)).astype(np.float32)
    fast, slow = values.copy(), values.copy()
    infill._recursive_passes(fast, fx, fy)
    infill._recursive_passes_numpy(slow, fx, fy)
    np.testing.assert_allclose(fast, slow, rtol=1e-6)
    assert not np.allclose(slow, values)


def _fattened_step() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dark left half and a bright right half (colour edge between columns 29 and 30) whose true disparity steps
    from 10 to 20 there; the matched disparity puts the step one column early (foreground fattening)."""
    rng = np.random.default_rng(0)
    image = np.zeros((24, 60, 3), np.float32)
    image[:, :30] = 0.2
    image[:, 30:] = 0.8
    image += rng.normal(0, 0.005, image.shape).astype(np.float32)
    truth = np.where(np.arange(60)[None, :] < 30, 10.0, 20.0) * np.ones((24, 1))
    matched = np.where(np.arange(60)[None, :] < 29, 10.0, 20.0) * np.ones((24, 1))
    return np.clip(image, 0, 1), truth.astype(np.float32), matched.astype(np.float32)


def test_edge_snap_moves_a_fattened_depth_step_onto_the_colour_edge_and_keeps_the_rest():
    from depth_perception.geometry.infill import snap_edges

    image, truth, matched = _fattened_step()
    snapped = snap_edges(image, matched)
    np.testing.assert_allclose(snapped, truth, atol=0.3)
    assert np.abs(matched - truth).max() == 10.0  # what was wrong before
    far = np.ones(60, bool)
    far[27:32] = False
    np.testing.assert_array_equal(snapped[:, far], matched[:, far])  # away from the step nothing changes
    np.testing.assert_allclose(snap_edges(image, 3.0 * matched, step=3.0), 3.0 * snapped, rtol=1e-4)
    # a step below the threshold is a slope, not an edge
    np.testing.assert_array_equal(snap_edges(image, matched, step=15.0), matched)


def test_edge_snap_keeps_holes_unless_asked_and_checks_shapes():
    from depth_perception.geometry.infill import snap_edges

    image, truth, matched = _fattened_step()
    holed = matched.copy()
    holed[5:8, 10:14] = np.nan
    holed[10, 40:44] = 0.0
    kept = snap_edges(image, holed)
    assert np.isnan(kept[5:8, 10:14]).all() and np.isnan(kept[10, 40:44]).all()
    filled = snap_edges(image, holed, fill_holes=True)
    np.testing.assert_allclose(filled[5:8, 10:14], 10.0, atol=0.1)
    np.testing.assert_allclose(filled[10, 40:44], 20.0, atol=0.1)
    with pytest.raises(ValueError, match="one size"):
        snap_edges(image[:, :10], matched)
