"""Stereo evaluation: the metrics on hand-made cases, KITTI-style hole filling, the SGBM peer on a rendered pair."""
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_perception.eval.stereo_eval import (
    depth_metrics,
    disparity_metrics,
    normal_angle_deg,
    sgbm_depth,
)
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.infill import fill_rows_background
from depth_perception.geometry.plane_sweep import rectified_pose

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import random_texture, render_plane


def test_depth_and_disparity_metrics_on_a_known_case():
    gt = np.array([10.0, 10.0, 20.0, 40.0])
    pred = np.array([10.0, 12.0, 20.0, 20.0])
    m = depth_metrics(pred, gt)
    assert m["abs_rel"] == pytest.approx((0 + 0.2 + 0 + 0.5) / 4)
    assert m["rmse"] == pytest.approx(np.sqrt((4 + 400) / 4))
    assert m["a1"] == pytest.approx(0.75)
    d = disparity_metrics(np.array([10.0, 11.5, 20.0, 24.0]), np.array([10.0, 10.0, 20.0, 20.0]))
    assert d == {"epe": pytest.approx(5.5 / 4), "bad1": 0.5, "bad3": 0.25}


def test_normal_angle_in_degrees():
    a = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    b = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    assert normal_angle_deg(a, b) == pytest.approx(45.0)


def test_holes_take_the_background_disparity_of_their_row():
    disp = np.array([[5.0, np.nan, np.nan, 9.0, np.nan], [np.nan, np.nan, np.nan, np.nan, np.nan]])
    filled = fill_rows_background(disp)
    np.testing.assert_array_equal(filled[0], [5.0, 5.0, 5.0, 9.0, 9.0])
    np.testing.assert_array_equal(filled[1], 0.0)


def test_sgbm_peer_recovers_a_textured_plane():
    cam = PinholeCamera(256, 96, 200.0, 200.0, 127.5, 47.5)
    tex = random_texture(2)
    left, gt = render_plane(cam, np.eye(4), np.array([0, 0, 1.0]), 10.0, tex, 20.0)
    right, _ = render_plane(cam, rectified_pose(0.5), np.array([0, 0, 1.0]), 10.0, tex, 20.0)
    depth = sgbm_depth(left, right, cam, 0.5, min_depth=2.0)
    m = np.isfinite(depth)
    assert m.mean() > 0.5
    assert np.median(np.abs(depth[m] - gt[m]) / gt[m]) < 0.03


def test_eval_runs_sgbm_and_the_classical_sweep_on_the_same_frames(tmp_path):
    from helpers.stereo_scene import PlaneDrive

    from depth_perception.eval.stereo_eval import StereoEvalOptions, evaluate, format_table

    args = StereoEvalOptions(engine=["classical"], height=48, width=128, min_depth=2.0, max_depth=40.0, planes=32,
                             max_frames=2)
    report = evaluate(args, drives=[PlaneDrive(frames=3)])
    assert report["frames"] == 2
    assert set(report["methods"]) == {"sgbm", "classical"}
    for row in report["methods"].values():
        assert {"abs_rel", "rmse", "a1", "epe", "bad1", "bad3", "density", "p50_ms"} <= set(row)
        assert 0 <= row["bad3"] <= row["bad1"] <= 1
    assert report["methods"]["classical"]["abs_rel"] < 0.05
    assert "sgbm" in format_table(report)


def test_bench_stereo_puts_both_sweeps_beside_sgbm_with_their_time_ratios(tmp_path, capsys):
    from helpers.stereo_scene import PlaneDrive

    from depth_perception.cli import main
    from depth_perception.eval.bench_stereo import NUMPY_SWEEP, SNAPPED_SWEEP, bench_stereo, format_table
    from depth_perception.eval.stereo_eval import StereoEvalOptions

    report = bench_stereo(StereoEvalOptions(height=48, width=128, min_depth=2.0, max_depth=40.0, planes=32,
                                            max_frames=2), drives=[PlaneDrive(frames=3)])
    rows = report["methods"]
    assert set(rows) == {"sgbm", "classical", NUMPY_SWEEP, SNAPPED_SWEEP}
    assert rows["sgbm"]["x_sgbm"] == 1.0
    assert rows["classical"]["x_sgbm"] == pytest.approx(rows["classical"]["p50_ms"] / rows["sgbm"]["p50_ms"])
    # the compiled kernels and the numpy code are one method: the same accuracy
    assert rows["classical"]["bad3"] == pytest.approx(rows[NUMPY_SWEEP]["bad3"], abs=0.005)
    assert rows["classical"]["abs_rel"] < 0.05 and rows[SNAPPED_SWEEP]["abs_rel"] < 0.05
    assert rows[SNAPPED_SWEEP]["density"] == rows["classical"]["density"]  # the snap fills no hole
    assert "x SGBM" in format_table(report)
    assert main(["eval", "stereo", "--data", str(tmp_path / "none"), "--image", str(tmp_path / "x.png")]) == 2
    assert "go with --scene" in capsys.readouterr().err
    assert main(["bench", "stereo", "--data", str(tmp_path / "none")]) == 2
    assert "data path not found" in capsys.readouterr().err
