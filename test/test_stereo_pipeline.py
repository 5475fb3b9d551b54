"""StereoPipeline in the camera's own pixels, and `depth-perception infer stereo` on image files."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.plane_sweep import rectified_pose
from depth_perception.pipelines.stereo import StereoPipeline, StereoPipelineConfig

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import random_texture, render_plane  # noqa: E402

CAM = PinholeCamera(160, 64, 110.0, 110.0, 79.5, 31.5)


@pytest.fixture(scope="module")
def pair():
    tex = random_texture(5)
    n = np.array([0.2, -0.2, 1.0])
    n /= np.linalg.norm(n)
    left, gt = render_plane(CAM, np.eye(4), n, 8.0, tex, 14.0)
    right, _ = render_plane(CAM, rectified_pose(0.5), n, 8.0, tex, 14.0)
    return left, right, gt


def test_classical_pipeline_returns_depth_in_the_cameras_pixels(pair):
    left, right, gt = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40))
    result = pipe.process(left, right, CAM, 0.5)
    assert result.depth.shape == CAM.shape and result.camera == CAM
    m = np.isfinite(result.depth)
    assert m.mean() > 0.8
    assert np.median(np.abs(result.depth[m] - gt[m]) / gt[m]) < 0.03
    assert result.timings_ms["total"] > 0


def test_classical_pipeline_works_at_a_reduced_width_and_restores_the_size(pair):
    left, right, gt = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40,
                                               classical_max_width=80))
    result = pipe.process(left, right, CAM, 0.5)
    assert result.depth.shape == CAM.shape
    m = np.isfinite(result.depth)
    assert m.mean() > 0.7 and np.median(np.abs(result.depth[m] - gt[m]) / gt[m]) < 0.05


def test_confidence_threshold_turns_unsure_pixels_into_nan(pair):
    left, right, _ = pair
    base = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40))
    strict = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40,
                                                 confidence_threshold=0.5))
    a, b = base.process(left, right, CAM, 0.5), strict.process(left, right, CAM, 0.5)
    assert np.isfinite(b.depth).sum() < np.isfinite(a.depth).sum()
    assert np.all(b.confidence[np.isfinite(b.depth)] >= 0.5)


def test_bad_inputs_are_refused(pair):
    left, right, _ = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical"))
    with pytest.raises(ValueError, match="right image"):
        pipe.process(left, right[:10], CAM, 0.5)
    with pytest.raises(ValueError, match="baseline"):
        pipe.process(left, right, CAM, 0.0)
    with pytest.raises(FileNotFoundError):
        StereoPipeline(StereoPipelineConfig(engine="/nonexistent/stereo.onnx"))
    with pytest.raises(ValueError, match="confidence_threshold"):
        StereoPipelineConfig(confidence_threshold=2.0)


def _write_inputs(tmp_path, pair):
    left, right, _ = pair
    cv2.imwrite(str(tmp_path / "left.png"), left[..., ::-1])
    cv2.imwrite(str(tmp_path / "right.png"), right[..., ::-1])
    (tmp_path / "calib.yaml").write_text(f"fx: {CAM.fx}\nfy: {CAM.fy}\ncx: {CAM.cx}\ncy: {CAM.cy}\nbaseline: 0.5\n")


def test_infer_stereo_writes_depth_and_a_picture(tmp_path, pair, capsys):
    _write_inputs(tmp_path, pair)
    gt = pair[2]
    args = ["infer", "stereo", "--left", str(tmp_path / "left.png"), "--right", str(tmp_path / "right.png"),
            "--calib", str(tmp_path / "calib.yaml"), "--engine", "classical", "--min-depth", "2",
            "--max-depth", "40", "--planes", "40"]
    assert main(args + ["--out", str(tmp_path / "d.npy")]) == 0
    depth = np.load(tmp_path / "d.npy")
    m = np.isfinite(depth)
    assert depth.shape == CAM.shape and np.median(np.abs(depth[m] - gt[m]) / gt[m]) < 0.03
    color = cv2.imread(str(tmp_path / "d_color.png"))
    assert color.shape == (64, 160, 3)
    assert main(args + ["--out", str(tmp_path / "d.png")]) == 0
    mm = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16
    np.testing.assert_allclose(mm[m] / 1000.0, depth[m], atol=2e-3)
    assert "classical" in capsys.readouterr().out


def test_infer_stereo_takes_extra_posed_views(tmp_path, pair):
    _write_inputs(tmp_path, pair)
    np.save(tmp_path / "pose.npy", rectified_pose(0.5))
    out = tmp_path / "d.npy"
    code = main(["infer", "stereo", "--left", str(tmp_path / "left.png"), "--right", str(tmp_path / "right.png"),
                 "--calib", str(tmp_path / "calib.yaml"), "--engine", "classical", "--out", str(out),
                 "--min-depth", "2", "--max-depth", "40", "--planes", "24",
                 "--views", f"{tmp_path / 'right.png'}:{tmp_path / 'pose.npy'}"])
    assert code == 0 and out.exists()


@pytest.mark.parametrize("change, message", [
    (dict(out="d.jpg"), "--out must end in .npy or .png"),
    (dict(left="missing.png"), "image not found"),
    (dict(calib="nocalib.yaml"), "calibration file not found"),
    (dict(views="right.png"), "IMG:POSEFILE"),
])
def test_infer_stereo_bad_input_is_one_line_and_exit_2(tmp_path, pair, capsys, change, message):
    _write_inputs(tmp_path, pair)
    opts = dict(left="left.png", right="right.png", calib="calib.yaml", out="d.npy")
    opts.update(change)
    args = ["infer", "stereo", "--engine", "classical"]
    for k in ("left", "right", "calib", "out", "views"):
        if k in opts:
            args += [f"--{k}", str(tmp_path / opts[k])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
