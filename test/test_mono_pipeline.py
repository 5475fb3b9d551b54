"""MonoPipeline: road-plane scale recovery, its moving average, metric engines, the infer command, engine parity."""
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_perception.cli import main
from depth_perception.geometry import PinholeCamera
from depth_perception.models.mono import MonoDepthNet
from depth_perception.pipelines.mono import MonoPipeline, MonoPipelineConfig, fit_ground_plane
from depth_perception.training.checkpoint import save_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from helpers.mono_scene import CAMERA_HEIGHT, render_corridor, texture

CAM = PinholeCamera(256, 128, 148.0, 148.0, 127.5, 63.5)
TINY = dict(height=32, width=64, encoder_layers=18, encoder_width=8, decoder_width=4)


def _checkpoint(folder: Path, mode: str) -> Path:
    torch.manual_seed(0)
    model = MonoDepthNet(**TINY, pose_net=mode == "mono")
    save_checkpoint(folder, model, None, 1, {"model": {"name": "mono_resnet", "config": model.config}, "mode": mode,
                                             "metric": mode != "mono"})
    return folder


@pytest.fixture(scope="module")
def relative_engine(tmp_path_factory):
    return _checkpoint(tmp_path_factory.mktemp("rel"), "mono")


def _ground_points(height, pitch_deg=0.0, n=3000, outliers=0.3, seed=0):
    """A road 1.65 m below a pitched camera with obstacles on it, the whole scene scaled to `height`."""
    rng = np.random.default_rng(seed)
    x, z = rng.uniform(-4, 4, n), rng.uniform(4, 25, n)
    pts = np.stack([x, np.full(n, 1.65), z], 1) + rng.normal(0, 0.015, (n, 3))
    k = int(outliers * n)
    pts[:k, 1] = rng.uniform(0.1, 1.3, k)  # obstacles standing on the road, below the camera
    a = np.deg2rad(pitch_deg)
    R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return pts @ R.T * (height / 1.65)


@pytest.mark.parametrize("height, pitch", [(1.65, 0.0), (0.2, 4.0), (30.0, -3.0)])
def test_ground_plane_fit_finds_the_camera_height_among_outliers(height, pitch):
    fit = fit_ground_plane(_ground_points(height, pitch))
    assert fit is not None
    assert fit.height == pytest.approx(height, rel=0.01)
    assert 0.65 < fit.inlier_ratio < 0.95  # the obstacles are outliers
    assert np.degrees(np.arccos(fit.normal[1])) == pytest.approx(abs(pitch), abs=0.5)


def test_ground_plane_fit_refuses_a_wall():
    rng = np.random.default_rng(1)
    wall = np.stack([rng.uniform(-3, 3, 500), rng.uniform(0.1, 2, 500), np.full(500, 10.0)], 1)
    assert fit_ground_plane(wall) is None
    assert fit_ground_plane(np.zeros((3, 3))) is None


def test_scale_from_camera_height_recovers_the_true_scale(relative_engine):
    _, depth = render_corridor(CAM, np.eye(4), texture(0))
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(relative_engine)))
    assert pipe.metric is False and pipe.uses_camera_height
    relative = depth / 7.5  # what a self-supervised network gives: right shape, unknown scale
    scale, fit = pipe.estimate_scale(relative, CAM)
    assert scale == pytest.approx(7.5, rel=0.02)
    assert fit.height == pytest.approx(CAMERA_HEIGHT / 7.5, rel=0.02)
    small = cv2.resize(relative, (64, 32), interpolation=cv2.INTER_NEAREST)  # at the engine's size
    assert pipe.estimate_scale(small, CAM)[0] == pytest.approx(7.5, rel=0.05)
    pipe2 = MonoPipeline(MonoPipelineConfig(engine=str(relative_engine), camera_height=2.0))
    assert pipe2.estimate_scale(relative, CAM)[0] == pytest.approx(7.5 * 2.0 / CAMERA_HEIGHT, rel=0.02)


def test_scale_is_smoothed_over_frames(relative_engine):
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(relative_engine), scale_smoothing=0.75))
    assert pipe.update_scale(None) == 1.0  # nothing measured yet: the engine's own units
    assert pipe.update_scale(8.0) == 8.0  # the first measurement is taken as is
    assert pipe.update_scale(12.0) == pytest.approx(0.75 * 8.0 + 0.25 * 12.0)
    assert pipe.update_scale(None) == pytest.approx(9.0)  # a frame without a road keeps the last scale
    pipe.reset()
    assert pipe.update_scale(None) == 1.0


def test_process_returns_depth_in_camera_pixels(relative_engine):
    image, _ = render_corridor(CAM, np.eye(4), texture(0))
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(relative_engine), max_depth=80.0))
    result = pipe.process(image, CAM)
    assert result.depth.shape == CAM.shape and result.depth.dtype == np.float32
    valid = np.isfinite(result.depth)
    np.testing.assert_array_equal(result.confidence, valid.astype(np.float32))
    assert np.all((result.depth[valid] >= 0.1) & (result.depth[valid] <= 80.0))
    assert {"scale", "scale_valid", "ground_inliers"} <= set(result.info)
    assert result.timings_ms["infer_ms"] > 0
    with pytest.raises(ValueError, match="does not match"):
        pipe.process(image[:64], CAM)


def test_metric_engines_are_not_rescaled(tmp_path):
    engine = _checkpoint(tmp_path / "metric", "mono+stereo")
    image, _ = render_corridor(CAM, np.eye(4), texture(0))
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(engine), max_depth=100.0))
    assert pipe.metric is True and not pipe.uses_camera_height
    raw, _, _ = pipe.predict(image, CAM)
    result = pipe.process(image, CAM)
    assert result.info["scale"] == 1.0 and "scale_valid" not in result.info
    np.testing.assert_allclose(result.depth, np.where(raw <= 100.0, raw, np.nan), rtol=1e-6)


@pytest.mark.parametrize("kwargs, field", [(dict(engine=""), "engine"), (dict(camera_height=0.0), "camera_height"),
                                           (dict(scale_smoothing=1.0), "scale_smoothing"),
                                           (dict(scale_recovery="median"), "scale_recovery"),
                                           (dict(max_depth=0.05), "max_depth")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MonoPipelineConfig(**kwargs)


def test_missing_engine_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        MonoPipeline(MonoPipelineConfig(engine=str(tmp_path / "nope.onnx")))


def test_infer_writes_depth_and_a_colorized_picture(relative_engine, tmp_path):
    image, _ = render_corridor(CAM, np.eye(4), texture(0))
    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for k in range(2):
        cv2.imwrite(str(img_dir / f"{k:04d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    calib = tmp_path / "calib.yaml"
    calib.write_text(f"fx: {CAM.fx}\nfy: {CAM.fy}\ncx: {CAM.cx}\ncy: {CAM.cy}\n")
    out = tmp_path / "one.npy"
    assert main(["infer", "mono", "--image", str(img_dir / "0000.png"), "--engine", str(relative_engine),
                 "--calib", str(calib), "--out", str(out)]) == 0
    depth = np.load(out)
    assert depth.shape == CAM.shape and depth.dtype == np.float32
    assert (tmp_path / "one_color.png").exists()
    folder = tmp_path / "many"
    assert main(["infer", "mono", "--image", str(img_dir), "--engine", str(relative_engine), "--out", str(folder)]) == 0
    png = cv2.imread(str(folder / "0001.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png.shape == CAM.shape
    assert (folder / "0001_color.png").exists()
    assert main(["infer", "mono", "--image", str(img_dir), "--engine", str(relative_engine),
                 "--out", str(tmp_path / "x.png")]) == 2


def test_exported_engine_matches_torch_through_the_engine_runtime(tmp_path):
    import depth_perception.engines as engines
    import depth_perception.engines.export as export
    if not hasattr(engines, "load_engine"):
        pytest.skip("engine runtime not available")
    torch.manual_seed(0)
    model = MonoDepthNet(**TINY).eval()
    path = export.export_module(model, tmp_path / "mono_tiny.onnx", "mono_resnet", model.config,
                                {"metric": False, "depth_range": [0.1, 100.0]})
    sidecar = json.loads(Path(path).with_suffix(".json").read_text())
    assert sidecar["kind"] == "mono" and sidecar["metric"] is False
    engine = engines.load_engine(str(path), backend="onnxruntime", device="cpu")
    x = model.example_inputs()[0]
    got = engine.infer(image=x.numpy())
    with torch.no_grad():
        depth, disp = model(x)
    np.testing.assert_allclose(got["depth"], depth.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got["disparity"], disp.numpy(), rtol=1e-4, atol=1e-5)
    pipe = MonoPipeline(MonoPipelineConfig(engine=str(path), backend="onnxruntime", device="cpu"))
    image = (x[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    raw, _, _ = pipe.predict(image, PinholeCamera(64, 32, 37.0, 37.0, 31.5, 15.5))
    assert raw.shape == (32, 64)
