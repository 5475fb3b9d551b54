"""The engine runtime: load_engine with each backend, input checks, integrity checks, resize-and-restore."""
from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from depth_perception.engines import EngineError, default_engine_path, load_engine  # noqa: E402
from depth_perception.engines.export import export_module  # noqa: E402
from depth_perception.engines.resize import EngineResize, restore_map  # noqa: E402
from depth_perception.geometry.camera import PinholeCamera  # noqa: E402
from depth_perception.geometry.resample import resize_sparse_depth  # noqa: E402
from depth_perception.models.registry import build_model  # noqa: E402


@pytest.fixture(scope="module")
def mono_artifact(tmp_path_factory):
    """A tiny mono engine exported once: (onnx path, the module it came from)."""
    torch.manual_seed(0)
    module = build_model("tiny_depth", kind="mono", height=32, width=64)
    out = tmp_path_factory.mktemp("engine") / "tiny_mono.onnx"
    export_module(module, out, "tiny_depth", module.config, {"training": {"note": "test"}})
    return out, module.eval()


@pytest.fixture
def artifact_copy(mono_artifact, tmp_path):
    """A private copy of the artifact's three files, for tests that damage them."""
    src, _ = mono_artifact
    for suffix in (".onnx", ".json", ".safetensors"):
        shutil.copy(src.with_suffix(suffix), tmp_path / f"copy{suffix}")
    return tmp_path / "copy.onnx"


def _image(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 3, 32, 64), dtype=np.float32)


def test_onnxruntime_backend_matches_the_torch_module(mono_artifact):
    path, module = mono_artifact
    engine = load_engine(path, backend="onnxruntime", device="cpu")
    assert engine.backend == "onnxruntime" and engine.device == "cpu"
    out = engine.infer(image=_image())
    with torch.no_grad():
        depth, disp = module(torch.from_numpy(_image()))
    assert set(out) == {"depth", "disparity"}
    np.testing.assert_allclose(out["depth"], depth.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["disparity"], disp.numpy(), rtol=1e-4, atol=1e-6)


def test_onnxruntime_threads_do_not_spin_after_a_run_unless_asked(mono_artifact, monkeypatch):
    # a node shares the cores with the engine: busy-waiting workers took the CPU its publishing needed
    path, _ = mono_artifact
    key = "session.intra_op.allow_spinning"
    engine = load_engine(path, backend="onnxruntime", device="cpu")
    assert engine.session.get_session_options().get_session_config_entry(key) == "0"
    monkeypatch.setenv("DEPTH_PERCEPTION_ORT_SPINNING", "1")
    engine = load_engine(path, backend="onnxruntime", device="cpu")
    assert engine.session.get_session_options().get_session_config_entry(key) == "1"


def test_a_machine_without_a_cuda_driver_loads_an_onnx_engine_without_importing_torch():
    # torch's import (3 s here) only to hear "no GPU" slowed every node and command start on a CPU machine
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; from depth_perception.engines.backends import torch_backend as tb; "
            "tb.CUDA_DEVICE_NODES = ('/nonexistent/nvidiactl',); assert tb.cuda_driver_absent() == "
            "sys.platform.startswith('linux'); from depth_perception.engines import load_engine; "
            "e = load_engine(sys.argv[1], device='auto'); print(e.backend, e.device, 'torch' in sys.modules)")
    engine = Path(__file__).resolve().parents[1] / "engines" / "mono_default.onnx"
    done = subprocess.run([sys.executable, "-c", code, str(engine)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    backend, device, torch_imported = done.stdout.split()
    assert (backend, device) == ("onnxruntime", "cpu")
    assert torch_imported == str(not sys.platform.startswith("linux"))


def test_torch_backend_rebuilds_the_architecture_from_the_onnx_sidecar_and_safetensors(mono_artifact):
    path, module = mono_artifact
    engine = load_engine(path, backend="torch", device="cpu")
    assert engine.backend == "torch"
    out = engine.infer(image=_image())
    with torch.no_grad():
        depth, _ = module(torch.from_numpy(_image()))
    np.testing.assert_array_equal(out["depth"], depth.numpy())


def test_torch_backend_loads_the_weights_file_as_the_artifact(mono_artifact):
    path, _ = mono_artifact
    engine = load_engine(path.with_suffix(".safetensors"), backend="auto", device="cpu")
    assert engine.backend == "torch"
    ref = load_engine(path, backend="onnxruntime", device="cpu").infer(image=_image())
    np.testing.assert_allclose(engine.infer(image=_image())["depth"], ref["depth"], rtol=1e-4)


def test_auto_backend_on_cpu_is_onnxruntime_and_logs_the_choice(mono_artifact, caplog):
    path, _ = mono_artifact
    with caplog.at_level(logging.INFO, logger="depth_perception.engines"):
        engine = load_engine(path, device="cpu")
    assert engine.backend == "onnxruntime"
    assert any("onnxruntime" in r.getMessage() for r in caplog.records)


def test_onnxruntime_thread_count_is_configurable(mono_artifact):
    engine = load_engine(mono_artifact[0], backend="onnxruntime", device="cpu", threads=1)
    assert engine.session.get_session_options().intra_op_num_threads == 1


@pytest.mark.gpu
def test_torch_backend_on_cuda_in_fp16_stays_close_to_fp32(mono_artifact):
    path, _ = mono_artifact
    fp32 = load_engine(path, backend="torch", device="cuda").infer(image=_image())
    engine = load_engine(path, backend="torch", device="cuda", fp16=True)
    assert engine.device == "cuda" and engine.fp16
    out = engine.infer(image=_image())
    assert out["depth"].dtype == np.float32
    np.testing.assert_allclose(out["depth"], fp32["depth"], rtol=1e-2)


@pytest.mark.gpu
def test_auto_backend_on_a_gpu_machine_picks_a_cuda_backend(mono_artifact):
    engine = load_engine(mono_artifact[0])
    assert engine.device == "cuda"


def test_fp16_needs_cuda_for_the_torch_backend(mono_artifact):
    with pytest.raises(ValueError, match="fp16"):
        load_engine(mono_artifact[0], backend="torch", device="cpu", fp16=True)


def test_spec_is_the_parsed_sidecar(mono_artifact):
    path, _ = mono_artifact
    engine = load_engine(path, backend="onnxruntime", device="cpu")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert dict(engine.spec) == sidecar
    assert engine.spec.kind == "mono" and engine.spec.image_size == (32, 64)
    assert engine.spec["format"] == "depth_perception.engine/1"


@pytest.mark.parametrize("inputs, words", [
    ({}, ["missing", "'image'", "[1, 3, 32, 64]"]),
    ({"image": _image(), "extra": _image()}, ["unknown", "extra"]),
    ({"image": np.zeros((1, 3, 64, 32), np.float32)}, ["'image'", "[1, 3, 32, 64]", "[1, 3, 64, 32]"]),
    ({"image": np.zeros((3, 32, 64), np.float32)}, ["'image'", "[1, 3, 32, 64]", "[3, 32, 64]"]),
    ({"image": np.zeros((1, 3, 32, 64), np.float64)}, ["'image'", "float32", "float64"]),
])
@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_bad_inputs_raise_value_error_naming_input_expected_and_got(mono_artifact, backend, inputs, words):
    engine = load_engine(mono_artifact[0], backend=backend, device="cpu")
    with pytest.raises(ValueError) as info:
        engine.infer(**inputs)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_a_model_file_changed_after_export_is_refused(artifact_copy, backend):
    data = bytearray(artifact_copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact_copy.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="sha256"):
        load_engine(artifact_copy, backend=backend, device="cpu")


def test_changed_weights_are_refused_by_the_torch_backend(artifact_copy):
    weights = artifact_copy.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(EngineError, match="weights file .* sha256"):
        load_engine(artifact_copy, backend="torch", device="cpu")
    assert load_engine(artifact_copy, backend="onnxruntime", device="cpu").backend == "onnxruntime"


def _truncate_and_rehash(path, key):
    """Truncate a file and make its sidecar agree, so only the parse can catch it."""
    from depth_perception.engines import sha256_file

    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    side = path.with_suffix(".json")
    data = json.loads(side.read_text())
    data[key] = sha256_file(path)
    side.write_text(json.dumps(data))


def test_a_truncated_onnx_file_gives_an_engine_error_not_a_crash(artifact_copy):
    _truncate_and_rehash(artifact_copy, "sha256")
    with pytest.raises(EngineError, match="truncated or corrupt"):
        load_engine(artifact_copy, backend="onnxruntime", device="cpu")


def test_truncated_safetensors_give_an_engine_error_not_a_crash(artifact_copy):
    _truncate_and_rehash(artifact_copy.with_suffix(".safetensors"), "weights_sha256")
    with pytest.raises(EngineError, match="unreadable"):
        load_engine(artifact_copy, backend="torch", device="cpu")


def test_a_truncated_file_without_a_matching_hash_is_refused(artifact_copy):
    artifact_copy.write_bytes(artifact_copy.read_bytes()[:100])
    with pytest.raises(EngineError, match="truncated"):
        load_engine(artifact_copy, backend="onnxruntime", device="cpu")


def test_missing_or_broken_sidecar_is_an_engine_error(artifact_copy):
    side = artifact_copy.with_suffix(".json")
    side.write_text("{not json")
    with pytest.raises(EngineError, match="not valid JSON"):
        load_engine(artifact_copy)
    side.write_text(json.dumps({"format": "other/9", "kind": "mono", "inputs": [], "outputs": []}))
    with pytest.raises(EngineError, match="format"):
        load_engine(artifact_copy)
    side.unlink()
    with pytest.raises(EngineError, match="sidecar not found"):
        load_engine(artifact_copy)


def test_unknown_backend_and_device_are_value_errors(mono_artifact):
    with pytest.raises(ValueError, match="backend"):
        load_engine(mono_artifact[0], backend="tflite")
    with pytest.raises(ValueError, match="device"):
        load_engine(mono_artifact[0], device="tpu")


def test_a_plan_without_tensorrt_says_so(artifact_copy):
    pytest.importorskip("torch")
    try:
        import tensorrt  # noqa: F401
        pytest.skip("TensorRT is installed here")
    except ImportError:
        pass
    plan = artifact_copy.with_name("copy.fp16.plan")
    plan.write_bytes(b"not a plan")
    shutil.copy(artifact_copy.with_suffix(".json"), plan.with_suffix(".json"))
    with pytest.raises(EngineError, match="TensorRT is not installed"):
        load_engine(plan, backend="tensorrt")


def test_default_engine_path_needs_the_sidecar_beside_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPTH_PERCEPTION_ENGINES", str(tmp_path))
    (tmp_path / "completion_default.onnx").write_bytes(b"x")
    assert default_engine_path("completion") != tmp_path / "completion_default.onnx"
    (tmp_path / "completion_default.json").write_text("{}")
    assert default_engine_path("completion") == tmp_path / "completion_default.onnx"


# -- resize and restore ------------------------------------------------------------------------------------------
CAM = PinholeCamera(1242, 375, 721.5, 721.5, 609.6, 172.9)


def test_resize_scales_intrinsics_so_rays_land_on_the_same_scene_point():
    fit = EngineResize.for_engine(CAM, 96, 320)
    assert fit.engine_camera.shape == (96, 320)
    point = np.array([2.0, -0.5, 10.0])
    uv = CAM.K @ point / point[2]
    uv_small = fit.intrinsics() @ point / point[2]
    # pixel-centre convention: (u + 0.5) * s - 0.5
    np.testing.assert_allclose(uv_small[0], (uv[0] + 0.5) * 320 / 1242 - 0.5, atol=1e-9)
    np.testing.assert_allclose(uv_small[1], (uv[1] + 0.5) * 96 / 375 - 0.5, atol=1e-9)
    k = fit.intrinsics_input()
    assert k.shape == (1, 3, 3) and k.dtype == np.float32
    np.testing.assert_allclose(k[0], fit.intrinsics(), rtol=1e-6)


def test_resized_image_input_is_rgb_over_255_at_engine_size():
    fit = EngineResize.for_engine(CAM, 96, 320)
    img = np.full((375, 1242, 3), (255, 0, 51), np.uint8)
    x = fit.image_input(img)
    assert x.shape == (1, 3, 96, 320) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 50, 100], [1.0, 0.0, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="does not match the camera"):
        fit.image(np.zeros((10, 10, 3), np.uint8))


def test_restore_nearest_keeps_depth_edges_and_nan_holes():
    small = np.full((1, 1, 4, 8), 5.0, np.float32)
    small[..., :, 4:] = 40.0
    small[..., 0, 0] = np.nan
    cam = PinholeCamera(16, 8, 10.0, 10.0, 7.5, 3.5)
    out = EngineResize.for_engine(cam, 4, 8).restore(small)
    assert out.shape == (8, 16)
    assert set(np.unique(out[np.isfinite(out)])) == {5.0, 40.0}  # no invented in-between depths
    assert np.isnan(out[:2, :2]).all() and np.isfinite(out[2:]).all()
    np.testing.assert_array_equal(out[:, 8:], 40.0)


def test_restore_bilinear_is_exact_on_a_ramp_and_nan_aware():
    cam = PinholeCamera(64, 32, 30.0, 30.0, 31.5, 15.5)
    fit = EngineResize.for_engine(cam, 16, 32)
    # a ramp in camera pixel columns, sampled at the engine pixel centres
    u_small = (np.arange(32) + 0.5) * 2 - 0.5
    small = np.tile(2.0 + 0.1 * u_small, (16, 1)).astype(np.float32)
    out = fit.restore(small, mode="bilinear")
    np.testing.assert_allclose(out[:, 2:-2], np.tile(2.0 + 0.1 * np.arange(64), (32, 1))[:, 2:-2], atol=1e-4)
    small[4:8, 10:14] = np.nan
    out = restore_map(small, cam, mode="bilinear")
    assert np.isnan(out[10:14, 22:26]).all()  # inside the hole
    assert np.isfinite(out[:6]).all() and np.isfinite(out[:, :18]).all()  # away from it
    with pytest.raises(ValueError, match="mode"):
        restore_map(small, cam, mode="cubic")


def test_sparse_depth_resize_moves_points_and_keeps_the_nearest():
    sparse = np.zeros((8, 16), np.float32)
    sparse[1, 3] = 12.0
    sparse[6, 10] = 7.0
    sparse[6, 11] = 5.0  # lands on the same half-size pixel as (6, 10)
    out = resize_sparse_depth(sparse, 8, 4)
    assert out.shape == (4, 8)
    assert out[0, 1] == 12.0 and out[3, 5] == 5.0
    assert np.count_nonzero(out) == 2  # nothing interpolated into empty pixels
    cam = PinholeCamera(16, 8, 10.0, 10.0, 7.5, 3.5)
    x = EngineResize.for_engine(cam, 4, 8).sparse_depth_input(sparse)
    assert x.shape == (1, 1, 4, 8) and x.dtype == np.float32 and np.array_equal(x[0, 0], out)


def test_completion_through_resize_restores_each_measurement_at_its_own_camera_pixel(tmp_path):
    """Camera 96x48 -> engine 64x32 (a 1.5 factor) and back: the tiny completion engine passes measurements
    through, so a measured camera pixel must get its own depth back after the round trip."""
    module = build_model("tiny_depth", kind="completion", height=32, width=64)
    engine = load_engine(export_module(module, tmp_path / "c.onnx", "tiny_depth", module.config),
                         backend="onnxruntime", device="cpu")
    cam = PinholeCamera(96, 48, 50.0, 50.0, 47.5, 23.5)
    fit = EngineResize.for_engine(cam, 32, 64)
    sparse = np.zeros(cam.shape, np.float32)
    rows, cols = np.meshgrid(np.arange(1, 48, 5), np.arange(2, 96, 7), indexing="ij")
    sparse[rows, cols] = 3.0 + 0.1 * rows + 0.01 * cols
    rgb = np.random.default_rng(0).integers(0, 255, (*cam.shape, 3), dtype=np.uint8)
    out = engine.infer(image=fit.image_input(rgb), sparse_depth=fit.sparse_depth_input(sparse))
    depth = fit.restore(out["depth"], mode="nearest")
    assert depth.shape == cam.shape
    np.testing.assert_allclose(depth[rows, cols], sparse[rows, cols], rtol=1e-6)


def test_evaluation_figures_are_recorded_in_the_sidecar_and_the_engine_still_loads(artifact_copy):
    from depth_perception.engines import load_engine
    from depth_perception.engines.spec import EngineError, read_sidecar, record_metrics

    record_metrics(artifact_copy, "heldout", {"abs_rel": 0.07, "frames": 40})
    record_metrics(artifact_copy, "kitti", {"abs_rel": 0.11})
    spec = read_sidecar(artifact_copy)
    assert spec["metrics"] == {"heldout": {"abs_rel": 0.07, "frames": 40}, "kitti": {"abs_rel": 0.11}}
    assert load_engine(artifact_copy, "onnxruntime", "cpu") is not None  # the model's checksum is untouched
    not_engine = artifact_copy.with_name("notes.onnx")
    not_engine.with_suffix(".json").write_text('{"hello": 1}')
    with pytest.raises(EngineError, match="lacks keys"):
        record_metrics(not_engine, "x", {})
    assert not_engine.with_suffix(".json").read_text() == '{"hello": 1}'


def test_a_plan_built_from_an_earlier_export_is_not_taken_for_the_current_one(artifact_copy):
    import json

    from depth_perception.engines import plans_beside

    sha = json.loads(artifact_copy.with_suffix(".json").read_text())["sha256"]
    for name, source in (("copy.fp16", sha), ("copy.int8", "0" * 64), ("copy.fp32", None)):
        plan = artifact_copy.with_name(f"{name}.plan")
        plan.write_bytes(b"plan")
        tensorrt = {"source_onnx": "copy.onnx"} | ({"source_sha256": source} if source else {})
        plan.with_suffix(".json").write_text(json.dumps({"tensorrt": tensorrt}))
    # the int8 plan came from another export: skipped; one without a recorded source is still offered
    assert [p.name for p in plans_beside(artifact_copy)] == ["copy.fp16.plan", "copy.fp32.plan"]


def test_tiles_keep_the_aspect_ratio_cover_the_image_and_blend_without_seams():
    from depth_perception.engines.resize import EngineTiles, keeps_aspect

    middlebury = PinholeCamera(741, 500, 995.0, 995.0, 311.2, 254.9)
    assert not keeps_aspect(middlebury, 192, 640)
    assert keeps_aspect(PinholeCamera(1242, 375, 721.5, 721.5, 609.6, 172.9), 192, 640)
    tiles = EngineTiles.for_engine(middlebury, 192, 640)
    assert tiles.scaled.width == 640 and tiles.scaled.height == 432  # one scale for both axes
    assert len(tiles.origins) == 3 and tiles.origins[-1] == (240, 0)
    covered = np.zeros(tiles.scaled.shape, int)
    for y, x in tiles.origins:
        covered[y:y + 192, x:x + 640] += 1
    assert covered.min() >= 1
    ramp = np.arange(432, dtype=np.float32)[:, None].repeat(640, 1)
    np.testing.assert_allclose(tiles.blend(tiles.crops(ramp)), ramp, rtol=1e-6)  # agreeing tiles: no seam
    small = EngineTiles.for_engine(PinholeCamera(320, 96, 250.0, 250.0, 159.5, 47.5), 192, 640)
    assert small.scaled.shape == (192, 640) and small.origins == ((0, 0),)
