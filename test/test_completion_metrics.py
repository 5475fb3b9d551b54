"""Completion metrics on hand-computed cases: units (mm, 1/km), ground-truth masking, holes, frame averaging."""
import math

import numpy as np
import pytest

from depth_perception.eval.completion_metrics import MIN_PREDICTION, average_metrics, completion_metrics


def test_hand_computed_errors_in_millimetres_and_inverse_kilometres():
    gt = np.array([[10.0, 20.0], [0.0, 5.0]])  # one pixel without ground truth
    pred = np.array([[11.0, 18.0], [99.0, 5.0]])
    m = completion_metrics(pred, gt)
    assert m["pixels"] == 3
    assert m["rmse_mm"] == pytest.approx(math.sqrt((1 + 4 + 0) / 3) * 1000)
    assert m["mae_mm"] == pytest.approx((1 + 2 + 0) / 3 * 1000)
    i1, i2 = 1 / 11 - 1 / 10, 1 / 18 - 1 / 20  # 1/m
    assert m["irmse"] == pytest.approx(math.sqrt((i1**2 + i2**2) / 3) * 1000)
    assert m["imae"] == pytest.approx((abs(i1) + abs(i2)) / 3 * 1000)


def test_perfect_prediction_scores_zero_and_nan_ground_truth_is_ignored():
    gt = np.array([[3.0, np.nan], [7.0, 0.0]])
    pred = np.array([[3.0, 1.0], [7.0, 2.0]])
    m = completion_metrics(pred, gt)
    assert m["pixels"] == 2 and m["rmse_mm"] == 0 and m["imae"] == 0


def test_holes_in_the_prediction_are_penalised_not_skipped():
    gt = np.array([[10.0]])
    m = completion_metrics(np.array([[np.nan]]), gt)
    assert m["mae_mm"] == pytest.approx((10.0 - MIN_PREDICTION) * 1000)
    assert np.isfinite(m["irmse"])


def test_frames_are_averaged_and_frames_without_ground_truth_skipped():
    a = completion_metrics(np.array([[2.0]]), np.array([[1.0]]))
    b = completion_metrics(np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]]))
    none = completion_metrics(np.array([[1.0]]), np.array([[0.0]]))
    assert none["pixels"] == 0 and math.isnan(none["rmse_mm"])
    avg = average_metrics([a, b, none])
    assert avg["frames"] == 2 and avg["rmse_mm"] == pytest.approx(500.0) and avg["imae"] == pytest.approx(250.0)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 2\).*\(3, 3\)"):
        completion_metrics(np.zeros((2, 2)), np.zeros((3, 3)))
