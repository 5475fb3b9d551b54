"""Eigen depth metrics under monodepth2's protocol: hand-computed values, crops, depth cap, median scaling."""
import math

import numpy as np
import pytest

from depth_perception.eval.metrics import (
    DEPTH_KEYS,
    compute_depth_metrics,
    crop_mask,
    evaluate_depth,
    garg_crop_mask,
    mean_metrics,
    median_scale,
)


def test_metrics_match_hand_computed_values():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([2.0, 2.0, 2.0])
    m = compute_depth_metrics(gt, pred)
    assert m["abs_rel"] == pytest.approx((1 / 1 + 0 + 2 / 4) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 1 + 0 + 4 / 4) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert m["rmse_log"] == pytest.approx(math.sqrt(2 * math.log(2) ** 2 / 3))
    # max(gt/pred, pred/gt) = 2, 1, 2: only the middle pixel is within 1.25, 1.5625 and 1.953
    assert (m["a1"], m["a2"], m["a3"]) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    assert set(m) == set(DEPTH_KEYS)


def test_perfect_prediction_scores_perfectly():
    gt = np.linspace(1, 80, 50)
    m = compute_depth_metrics(gt, gt.copy())
    assert m["abs_rel"] == 0 and m["rmse"] == 0 and m["rmse_log"] == 0
    assert m["a1"] == m["a2"] == m["a3"] == 1.0


def test_thresholds_are_strict_at_1_25():
    m = compute_depth_metrics(np.array([1.0, 1.0]), np.array([1.2, 1.3]))
    assert m["a1"] == 0.5 and m["a2"] == 1.0


def test_non_positive_inputs_are_refused():
    with pytest.raises(ValueError, match="positive"):
        compute_depth_metrics(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="no valid"):
        compute_depth_metrics(np.array([]), np.array([]))


def test_garg_crop_of_a_kitti_frame_is_monodepth2s():
    mask = garg_crop_mask(375, 1242)
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (153, 371, 44, 1197)
    assert crop_mask(10, 20, None).all()
    with pytest.raises(ValueError, match="crop"):
        crop_mask(10, 20, "square")


def test_median_scaling_removes_a_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(2, 60, (40, 60))
    pred = gt / 7.0
    assert median_scale(gt, pred) == pytest.approx(7.0)
    metrics, ratio = evaluate_depth(gt, pred, median_scaling=True, crop=None)
    assert ratio == pytest.approx(7.0)
    assert metrics["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    unscaled, one = evaluate_depth(gt, pred, median_scaling=False, crop=None)
    assert one == 1.0 and unscaled["abs_rel"] == pytest.approx(6 / 7)


def test_depth_cap_drops_far_ground_truth_and_clamps_predictions():
    gt = np.array([[10.0, 100.0, 0.0, np.nan]])
    pred = np.array([[200.0, 5.0, 5.0, 5.0]])
    metrics, _ = evaluate_depth(gt, pred, crop=None)
    # only gt = 10 m counts; the 200 m prediction is clamped to 80 m
    assert metrics["abs_rel"] == pytest.approx(7.0)
    assert metrics["rmse"] == pytest.approx(70.0)


def test_missing_predictions_count_as_min_depth_and_empty_ground_truth_gives_none():
    gt = np.array([[2.0, 4.0]])
    pred = np.array([[np.nan, 4.0]])
    metrics, _ = evaluate_depth(gt, pred, crop=None)
    assert metrics["a1"] == 0.5
    assert evaluate_depth(np.zeros((4, 4)), np.ones((4, 4)), crop=None) is None
    with pytest.raises(ValueError, match="shape"):
        evaluate_depth(np.ones((4, 4)), np.ones((4, 5)))


def test_mean_metrics_averages_per_image():
    rows = [dict.fromkeys(DEPTH_KEYS, 1.0), dict.fromkeys(DEPTH_KEYS, 3.0)]
    assert mean_metrics(rows) == dict.fromkeys(DEPTH_KEYS, 2.0)
    with pytest.raises(ValueError):
        mean_metrics([])
