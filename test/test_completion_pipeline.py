"""CompletionPipeline and `infer completion`: projection of camera-frame points, IP-Basic and NLSPN engines,
resize-and-restore around a fixed-size engine, measurements kept, clear errors."""
import json

import cv2
import numpy as np
import pytest
import torch

from depth_perception.cli import main
from depth_perception.data.kitti import write_depth_png
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.projection import backproject
from depth_perception.pipelines.completion import CompletionPipeline, CompletionPipelineConfig

CAM = PinholeCamera(96, 48, 60.0, 60.0, 47.5, 23.5)


def plane_scene(camera=CAM, density=0.08, seed=0):
    """A slanted plane in front of the camera: image, dense depth and a subset of its 3-D points (the 'LiDAR')."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    depth = (12.0 + 0.04 * u + 0.06 * v).astype(np.float32)
    image = np.stack([u * 2, v * 4, 128 + 0 * u], -1).astype(np.uint8)
    pts = backproject(depth, camera).reshape(-1, 3)
    keep = np.random.default_rng(seed).random(len(pts)) < density
    return image, depth, pts[keep]


def save_checkpoint_engine(folder, height=32, width=64, **config):
    from depth_perception.models.registry import build_model
    from depth_perception.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = build_model("nlspn_light", height=height, width=width, width_base=8, iterations=2, max_depth=40.0,
                        **config)
    save_checkpoint(folder, model, None, 0, {"model": {"name": "nlspn_light", "config": model.config}})
    return folder


@pytest.mark.parametrize("kwargs, field", [(dict(engine=""), "engine"), (dict(min_depth=0.0), "min_depth"),
                                           (dict(max_depth=0.2), "max_depth"),
                                           (dict(confidence_threshold=2.0), "confidence_threshold"),
                                           (dict(classical_blur="box"), "classical_blur")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CompletionPipelineConfig(**kwargs)


def test_classical_pipeline_completes_projected_points_of_a_plane():
    image, depth, points = plane_scene()
    result = CompletionPipeline(CompletionPipelineConfig(engine="classical")).process(image, CAM, points)
    assert result.depth.shape == CAM.shape and result.confidence.shape == CAM.shape
    assert np.isfinite(result.depth).all()
    err = np.abs(result.depth - depth)
    assert np.median(err) < 0.05 and err.mean() < 0.3
    assert result.info["measurements"] > 0.05 * CAM.width * CAM.height
    assert 0 <= result.confidence.min() and result.confidence.max() == pytest.approx(1.0)
    assert {"total", "project"} <= set(result.timings_ms)


def test_points_behind_the_camera_or_out_of_range_are_ignored():
    pipe = CompletionPipeline(CompletionPipelineConfig(engine="classical", min_depth=1.0, max_depth=50.0))
    pts = np.array([[0.0, 0.0, -5.0], [0.0, 0.0, 0.5], [0.0, 0.0, 80.0], [0.0, 0.0, 10.0], [np.nan, 0, 3]])
    sparse = pipe.sparse_from_points(pts, CAM)
    assert np.count_nonzero(sparse) == 1 and sparse[24, 48] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="points_cam"):
        pipe.sparse_from_points(np.zeros((4, 2)), CAM)


def test_a_checkpoint_engine_runs_at_its_size_and_restores_to_the_camera(tmp_path):
    image, _, points = plane_scene()
    engine = save_checkpoint_engine(tmp_path / "ckpt", height=32, width=64)  # not the camera's 96x48
    pipe = CompletionPipeline(CompletionPipelineConfig(engine=str(engine), device="cpu", max_depth=40.0))
    assert (pipe.engine_height, pipe.engine_width) == (32, 64)
    result = pipe.process(image, CAM, points)
    assert result.depth.shape == CAM.shape and np.isfinite(result.depth).all()
    assert "infer" in result.timings_ms
    sparse = pipe.sparse_from_points(points, CAM)
    measured = sparse > 0
    np.testing.assert_allclose(result.depth[measured], sparse[measured], rtol=1e-6)  # measurements come back
    assert np.all((result.confidence >= 0) & (result.confidence <= 1))


def test_missing_engine_and_auto_fallback(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="completion engine not found"):
        CompletionPipeline(CompletionPipelineConfig(engine=str(tmp_path / "none.onnx")))
    import depth_perception.pipelines.completion as completion

    monkeypatch.setattr(completion, "default_engine_path", lambda: None)  # no shipped engine installed
    assert CompletionPipeline(CompletionPipelineConfig(engine="auto")).name == "classical"


def test_image_and_camera_must_agree():
    pipe = CompletionPipeline(CompletionPipelineConfig(engine="classical"))
    with pytest.raises(ValueError, match="does not match the camera"):
        pipe.process_sparse(np.zeros((10, 10, 3), np.uint8), CAM, np.zeros(CAM.shape, np.float32))


def _write_inputs(tmp_path, with_velo=True):
    image, depth, points = plane_scene()
    img_path = tmp_path / "image.png"
    cv2.imwrite(str(img_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    sparse = CompletionPipeline(CompletionPipelineConfig(engine="classical")).sparse_from_points(points, CAM)
    sparse_path = tmp_path / "sparse.png"
    write_depth_png(sparse_path, sparse)
    # LiDAR frame as KITTI mounts it: x forward, y left, z up.
    T_cam_velo = np.array([[0.0, -1, 0, 0.1], [0, 0, -1, -0.2], [1, 0, 0, 0.3], [0, 0, 0, 1]])
    velo = (points - T_cam_velo[:3, 3]) @ T_cam_velo[:3, :3]  # inverse transform
    bin_path = tmp_path / "velo.bin"
    np.column_stack([velo, np.ones(len(velo))]).astype(np.float32).tofile(bin_path)
    calib = {"fx": CAM.fx, "fy": CAM.fy, "cx": CAM.cx, "cy": CAM.cy, "width": CAM.width, "height": CAM.height}
    if with_velo:
        calib["T_cam_velo"] = T_cam_velo.tolist()
    calib_path = tmp_path / "calib.yaml"
    calib_path.write_text(json.dumps(calib))  # JSON is YAML
    return img_path, sparse_path, bin_path, calib_path, depth


def test_infer_completion_from_a_sparse_png_and_from_a_velodyne_scan(tmp_path, capsys):
    img, sparse, velo, calib, depth = _write_inputs(tmp_path)
    out_png = tmp_path / "dense.png"
    assert main(["infer", "completion", "--image", str(img), "--sparse", str(sparse), "--calib", str(calib),
                 "--out", str(out_png), "--engine", "classical"]) == 0
    mm = cv2.imread(str(out_png), cv2.IMREAD_ANYDEPTH)
    assert mm.dtype == np.uint16 and np.abs(mm / 1000.0 - depth).mean() < 0.3
    assert main(["infer", "completion", "--image", str(img), "--sparse", str(sparse), "--calib", str(calib),
                 "--registered", "--out", str(tmp_path / "registered.png"), "--engine", "classical"]) == 0
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "registered.png"), cv2.IMREAD_ANYDEPTH), mm)
    assert (tmp_path / "dense_confidence.png").exists() and (tmp_path / "dense_color.png").exists()
    out_npy = tmp_path / "dense.npy"
    assert main(["infer", "completion", "--image", str(img), "--points", str(velo), "--calib", str(calib),
                 "--out", str(out_npy), "--engine", "classical"]) == 0
    dense = np.load(out_npy)
    assert np.abs(dense - depth).mean() < 0.3
    assert np.load(tmp_path / "dense_confidence.npy").shape == depth.shape
    assert "classical" in capsys.readouterr().out


def test_infer_completion_without_lidar_extrinsics_is_a_one_line_error(tmp_path, capsys):
    img, _, velo, calib, _ = _write_inputs(tmp_path, with_velo=False)
    assert main(["infer", "completion", "--image", str(img), "--points", str(velo), "--calib", str(calib),
                 "--out", str(tmp_path / "d.npy"), "--engine", "classical"]) == 2
    assert "T_cam_velo" in capsys.readouterr().err
    assert main(["infer", "completion", "--image", str(img), "--points", str(velo), "--calib", str(calib),
                 "--registered", "--out", str(tmp_path / "d.npy"), "--engine", "classical"]) == 2
    assert "--registered describes a --sparse depth image" in capsys.readouterr().err


def test_an_exported_engine_gives_the_checkpoints_depth_through_the_pipeline(tmp_path):
    pytest.importorskip("onnxruntime")
    from depth_perception.commands.train_completion import export_trained

    ckpt = save_checkpoint_engine(tmp_path / "ckpt", height=48, width=96)
    onnx = export_trained(ckpt, tmp_path / "completion.onnx", {"training": {"steps": 0}, "metrics": {}})
    image, _, points = plane_scene()
    cfg = dict(device="cpu", max_depth=40.0)
    want = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), **cfg)).process(image, CAM, points)
    got = CompletionPipeline(CompletionPipelineConfig(engine=str(onnx), **cfg)).process(image, CAM, points)
    np.testing.assert_allclose(got.depth, want.depth, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
    with pytest.raises(ValueError, match="fixed graph with 2 iterations"):
        CompletionPipeline(CompletionPipelineConfig(engine=str(onnx), propagation_iterations=5, **cfg))
    assert CompletionPipeline(CompletionPipelineConfig(engine=str(onnx), propagation_iterations=2, **cfg)).engine


def test_propagation_iterations_change_a_torch_engine_and_are_validated(tmp_path):
    engine = save_checkpoint_engine(tmp_path / "ckpt")
    pipe = CompletionPipeline(CompletionPipelineConfig(engine=str(engine), device="cpu", propagation_iterations=7))
    assert pipe.engine.model.propagation.iterations == 7
    with pytest.raises(ValueError, match="propagation_iterations"):
        CompletionPipelineConfig(propagation_iterations=-1)


def test_a_prior_engine_corrects_the_in_fill_at_the_cameras_own_resolution(tmp_path):
    pytest.importorskip("onnxruntime")
    from depth_perception.commands.train_completion import export_trained
    from depth_perception.geometry.infill import ipbasic_prior

    image, _, points = plane_scene()
    ckpt = save_checkpoint_engine(tmp_path / "ckpt", height=32, width=64, prior="ipbasic")  # smaller than 96x48
    cfg = dict(device="cpu", max_depth=40.0)
    pipe = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), **cfg))
    result = pipe.process(image, CAM, points)
    sparse = pipe.sparse_from_points(points, CAM)
    # untrained, the correction is none: the in-fill at 96x48 itself, not one upsampled from 64x32
    np.testing.assert_allclose(result.depth, np.where(sparse > 0, sparse, ipbasic_prior(sparse)), rtol=1e-5)
    onnx = export_trained(ckpt, tmp_path / "prior.onnx", {"training": {"steps": 0}, "metrics": {}})
    got = CompletionPipeline(CompletionPipelineConfig(engine=str(onnx), **cfg)).process(image, CAM, points)
    np.testing.assert_allclose(got.depth, result.depth, rtol=1e-4, atol=1e-3)
    sidecar = json.loads(onnx.with_suffix(".json").read_text())
    assert sidecar["prior"] == "ipbasic" and sidecar["inputs"][2]["name"] == "prior_depth"
    sidecar.pop("prior")
    onnx.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="prior_depth and sidecar prior"):
        CompletionPipeline(CompletionPipelineConfig(engine=str(onnx), **cfg))


def test_an_untrained_guided_prior_engine_returns_the_colour_guided_in_fill_at_the_cameras_pixels(tmp_path):
    from depth_perception.geometry.infill import guided_prior

    cam = PinholeCamera(60, 80, 70.0, 70.0, 29.5, 39.5)
    image, _, points = plane_scene(cam, density=0.1)
    ckpt = save_checkpoint_engine(tmp_path / "ckpt", height=32, width=64, prior="guided")
    pipe = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), device="cpu", max_depth=40.0))
    assert pipe.prior == "guided" and pipe.config.infill_coverage_px == 4.5
    result = pipe.process(image, cam, points)  # the sensor is not known: the engine runs
    assert "infer" in result.timings_ms and result.info["infill_only"] == 0.0
    sparse = pipe.sparse_from_points(points, cam)
    np.testing.assert_allclose(result.depth, guided_prior(image, sparse), rtol=1e-5)


def test_registered_measurements_that_cover_the_image_are_in_filled_without_the_engine_and_offset_ones_never(tmp_path):
    from depth_perception.geometry.infill import covered_within, guided_prior

    cam = PinholeCamera(128, 64, 80.0, 80.0, 63.5, 31.5)
    image, depth, _ = plane_scene(cam)
    rng = np.random.default_rng(1)
    sampled = np.where(rng.random(depth.shape) < 0.08, depth, 0.0).astype(np.float32)  # even, about 2 px apart
    rows = np.zeros_like(depth)
    rows[cam.height // 2::3] = depth[cam.height // 2::3]  # a scanner's beams: nothing above the top one
    assert covered_within(sampled, 4.5) and not covered_within(rows, 4.5) and not covered_within(0 * rows, 4.5)
    ckpt = save_checkpoint_engine(tmp_path / "ckpt", height=32, width=64, prior="guided")
    pipe = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), device="cpu", max_depth=40.0))
    assert pipe.config.infill_coverage_px == 4.5  # the default
    out = pipe.process_sparse(image, cam, sampled, sensor_offset_m=0.0)
    assert out.info["infill_only"] == 1.0 and "infer" not in out.timings_ms
    np.testing.assert_allclose(out.depth, np.where(sampled > 0, sampled, guided_prior(image, sampled)), rtol=1e-5)
    assert pipe.process_sparse(image, cam, sampled, sensor_offset_m=0.015).info["infill_only"] == 1.0
    out = pipe.process_sparse(image, cam, rows, sensor_offset_m=0.0)
    assert out.info["infill_only"] == 0.0 and "infer" in out.timings_ms
    # a LiDAR beside the camera sees points behind the camera's foreground edges; one not known may be such a LiDAR
    for offset in (0.3, None):
        out = pipe.process_sparse(image, cam, sampled, sensor_offset_m=offset)
        assert out.info["infill_only"] == 0.0 and "infer" in out.timings_ms
    points = np.stack(np.meshgrid(np.arange(cam.width), np.arange(cam.height)), -1)[sampled > 0]
    z = sampled[sampled > 0]
    cloud = np.column_stack([(points[:, 0] - cam.cx) * z / cam.fx, (points[:, 1] - cam.cy) * z / cam.fy, z])
    assert pipe.process(image, cam, cloud, 0.0).info["infill_only"] == 1.0
    assert pipe.process(image, cam, cloud).info["infill_only"] == 0.0
    with pytest.raises(ValueError, match="sensor_offset_m"):
        pipe.process_sparse(image, cam, sampled, sensor_offset_m=-1.0)
    off = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), device="cpu", max_depth=40.0,
                                                      infill_coverage_px=0.0))
    assert off.process_sparse(image, cam, sampled, sensor_offset_m=0.0).info["infill_only"] == 0.0
    ipbasic = save_checkpoint_engine(tmp_path / "ipbasic", height=32, width=64, prior="ipbasic")
    other = CompletionPipeline(CompletionPipelineConfig(engine=str(ipbasic), device="cpu", max_depth=40.0))
    assert other.process_sparse(image, cam, sampled, 0.0).info["infill_only"] == 0.0  # the rule is the guided one's


def test_a_camera_of_another_aspect_runs_as_tiles_and_an_untrained_prior_engine_still_returns_its_in_fill(tmp_path):
    from depth_perception.geometry.infill import ipbasic_prior

    cam = PinholeCamera(60, 80, 70.0, 70.0, 29.5, 39.5)  # portrait: resizing into 64x32 would squash it 2.7x
    image, _, points = plane_scene(cam, density=0.1)
    ckpt = save_checkpoint_engine(tmp_path / "ckpt", height=32, width=64, prior="ipbasic")
    tiled = CompletionPipeline(CompletionPipelineConfig(engine=str(ckpt), device="cpu", max_depth=40.0))
    assert tiled.config.engine_fit == "auto"
    result = tiled.process(image, cam, points)
    sparse = tiled.sparse_from_points(points, cam)
    np.testing.assert_allclose(result.depth, np.where(sparse > 0, sparse, ipbasic_prior(sparse)), rtol=1e-5)
    plain = save_checkpoint_engine(tmp_path / "plain", height=32, width=64)
    for fit in ("tiles", "resize"):
        out = CompletionPipeline(CompletionPipelineConfig(engine=str(plain), device="cpu", max_depth=40.0,
                                                          engine_fit=fit)).process(image, cam, points)
        assert out.depth.shape == cam.shape and np.isfinite(out.depth).all()
    with pytest.raises(ValueError, match="engine_fit"):
        CompletionPipelineConfig(engine_fit="crop")
