"""Export to ONNX: the artifact's files and sidecar, the TensorRT op check, parity, the export and build-engine CLIs."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # not in `make test-fast`

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from depth_perception.cli import main  # noqa: E402
from depth_perception.engines import load_engine, sha256_file  # noqa: E402
from depth_perception.engines.build import BuildOptions, calibration_batches, default_plan_path  # noqa: E402
from depth_perception.engines.export import ParityError, export_module  # noqa: E402

export_module_ = export_module  # the real one, which the autouse fixture below wraps
from depth_perception.engines.opcheck import UnsupportedOpError, supported_ops, unsupported_ops  # noqa: E402
from depth_perception.engines.spec import read_sidecar  # noqa: E402
from depth_perception.models.registry import build_model  # noqa: E402
from depth_perception.training.checkpoint import save_checkpoint  # noqa: E402

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(autouse=True)
def every_export_builds_with_tensorrt_rtx(monkeypatch):
    """Each model these tests export is then built by TensorRT-RTX's own ONNX parser and builder, ahead of time on
    the CPU: a graph TensorRT cannot take fails here with the parser's message naming the node."""
    from depth_perception.engines.build import build_plan

    exported = []

    def recording(*args, **kwargs):
        path = export_module_(*args, **kwargs)
        exported.append(path)
        return path

    monkeypatch.setattr(sys.modules[__name__], "export_module", recording)
    yield
    for path in exported:
        if path.is_file():  # still there: a test may have replaced or removed it on purpose
            plan = build_plan(path, path.with_name(f"{path.stem}.rtx.plan"),
                              BuildOptions(precision="fp32", runtime="tensorrt-rtx"))
            assert plan.stat().st_size > 0


class _Deploy(torch.nn.Module):
    """A minimal deploy-protocol module whose forward the tests choose."""

    kind = "mono"

    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, image):
        depth = self.fn(image * self.scale)
        return depth, depth

    def io_spec(self):
        out = {"shape": [1, 1, 8, 8], "dtype": "float32", "units": "m", "description": ""}
        return {"inputs": [{"name": "image", "shape": [1, 3, 8, 8], "dtype": "float32", "description": ""}],
                "outputs": [{"name": "depth", **out}, {"name": "disparity", **out}],
                "depth_range": [0.1, 10.0], "metric": False}

    def example_inputs(self):
        return (torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)),)


@pytest.mark.parametrize("kind", ["completion", "stereo"])
def test_each_kind_exports_with_contract_io_and_runs_alike_in_both_backends(tmp_path, kind):
    module = build_model("tiny_depth", kind=kind, height=16, width=32)
    path = export_module(module, tmp_path / f"{kind}.onnx", "tiny_depth", module.config)
    side = read_sidecar(path)
    want = {"completion": (["image", "sparse_depth"], ["depth", "confidence"]),
            "stereo": (["reference", "sources", "intrinsics", "poses"], ["depth", "confidence", "normal"])}[kind]
    assert (side.input_names, side.output_names) == want
    assert side["onnx_opset"] <= 17 and side["parity"]["passed"] is True
    ort = load_engine(path, backend="onnxruntime", device="cpu")
    inputs = ort.example_inputs(seed=3)
    a = ort.infer(**inputs)
    b = load_engine(path, backend="torch", device="cpu").infer(**inputs)
    for name in want[1]:
        np.testing.assert_allclose(a[name], b[name], atol=1e-4, rtol=1e-3)


def test_sidecar_has_the_contract_keys_and_hashes_of_both_files(tmp_path):
    module = build_model("tiny_depth", kind="mono", height=16, width=32).train()
    path = export_module(module, tmp_path / "m.onnx", "tiny_depth", module.config,
                         {"training": {"steps": 3}, "metrics": {"abs_rel": 0.5}, "metric": True})
    side = json.loads(path.with_suffix(".json").read_text())
    for key in ("format", "kind", "model_file", "sha256", "architecture", "inputs", "outputs", "depth_range",
                "metric", "onnx_opset", "training", "metrics", "parity", "weights_file", "weights_sha256"):
        assert key in side, key
    assert side["format"] == "depth_perception.engine/1" and side["kind"] == "mono"
    assert side["model_file"] == "m.onnx" and side["sha256"] == sha256_file(path)
    assert side["weights_sha256"] == sha256_file(tmp_path / "m.safetensors")
    assert side["architecture"] == {"name": "tiny_depth", "config": module.config}
    assert side["metric"] is True and side["metrics"] == {"abs_rel": 0.5} and side["training"] == {"steps": 3}
    assert side["depth_range"] == [0.5, 80.0]
    assert side["parity"]["atol"] == 1e-4 and side["parity"]["rtol"] == 1e-3
    assert onnx.load(str(path)).opset_import[0].version <= 17
    assert module.training  # export works on a copy: the caller's module keeps its mode and device


def test_op_list_parses_the_first_token_of_each_line():
    ops = supported_ops()
    assert {"Conv", "GridSample", "Resize", "Where", "Slice"} <= ops
    assert "#" not in "".join(ops) and "IsInf" not in ops and "Det" not in ops


def test_an_op_tensorrt_lacks_fails_the_export_naming_it_and_keeps_the_good_file(tmp_path):
    good = _Deploy(lambda x: x.mean(1, keepdim=True) + 1.0)
    out = tmp_path / "m.onnx"
    export_module(good, out, "none", {})
    before = sha256_file(out)
    bad = _Deploy(lambda x: torch.where(torch.isinf(x), 0.0, x).mean(1, keepdim=True))
    with pytest.raises(UnsupportedOpError, match="IsInf") as info:
        export_module(bad, out, "none", {})
    assert info.value.ops == ["IsInf"]
    assert sha256_file(out) == before and read_sidecar(out)["sha256"] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.onnx", "m.safetensors"]


def test_custom_domain_ops_are_unsupported():
    from onnx import helper

    node = helper.make_node("DCNv2", ["x"], ["y"], domain="mmcv")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    assert unsupported_ops(helper.make_model(graph)) == ["mmcv::DCNv2"]


def test_parity_failure_is_reported_per_output(tmp_path):
    # a random op draws different numbers in onnxruntime and torch: a real disagreement
    noisy = _Deploy(lambda x: x.mean(1, keepdim=True) + torch.rand(1, 1, 8, 8))
    with pytest.raises(ParityError, match="depth: max"):
        export_module(noisy, tmp_path / "n.onnx", "none", {})
    assert not (tmp_path / "n.onnx").exists() and not (tmp_path / "n.json").exists()
    export_module(noisy, tmp_path / "n.onnx", "none", {}, check_parity=False)
    assert read_sidecar(tmp_path / "n.onnx")["parity"]["skipped"] is True


def test_dynamic_batch_export_runs_two_frames_at_once(tmp_path):
    module = build_model("tiny_depth", kind="mono", height=16, width=32)
    path = export_module(module, tmp_path / "d.onnx", "tiny_depth", module.config, dynamic_batch=True)
    side = read_sidecar(path)
    assert side["inputs"][0]["shape"] == ["batch", 3, 16, 32]
    out = load_engine(path, backend="onnxruntime", device="cpu").infer(
        image=np.random.default_rng(0).random((2, 3, 16, 32), dtype=np.float32))
    assert out["depth"].shape == (2, 1, 16, 32)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(1)
    model = build_model("tiny_depth", kind="completion", height=16, width=32)
    meta = {"model": {"name": "tiny_depth", "config": model.config}, "command": "depth-perception train x",
            "data": ["synth/seed0"], "metric": True, "metrics": {"rmse_mm": 1234.0}}
    save_checkpoint(tmp_path / "run", model, torch.optim.AdamW(model.parameters()), 7, meta)
    return tmp_path / "run", model


def test_export_cli_turns_a_checkpoint_into_an_engine_at_a_new_size(checkpoint, tmp_path, capsys):
    run_dir, model = checkpoint
    out = tmp_path / "eng" / "completion.onnx"
    assert main(["export", str(run_dir), "--out", str(out), "--height", "24", "--width", "40"]) == 0
    assert "parity" in capsys.readouterr().out
    side = read_sidecar(out)
    assert side.input_shape("image") == (1, 3, 24, 40)
    assert side["architecture"]["config"]["height"] == 24
    assert side["training"]["step"] == 7 and side["training"]["command"] == "depth-perception train x"
    assert side["metrics"] == {"rmse_mm": 1234.0} and side["metric"] is True
    engine = load_engine(out, backend="torch", device="cpu")
    for a, b in zip(engine.model.state_dict().values(), model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)  # the trained weights, not a fresh init


def test_export_cli_errors_are_one_line_with_exit_codes(checkpoint, tmp_path, capsys):
    run_dir, _ = checkpoint
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert main(["export", str(run_dir), "--out", str(tmp_path / "x.plan")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("depth-perception export: error:") for line in err)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_build_engine_without_tensorrt_exits_1_with_one_line(tmp_path, capsys):
    module = build_model("tiny_depth", kind="mono", height=16, width=32)
    path = export_module(module, tmp_path / "m.onnx", "tiny_depth", module.config)
    assert main(["build-engine", str(path), "--runtime", "tensorrt", "--fp16"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "TensorRT is not installed" in err[0]


def test_build_options_are_checked_before_any_build():
    with pytest.raises(ValueError, match="calib"):
        BuildOptions(precision="int8")
    with pytest.raises(ValueError, match="precision"):
        BuildOptions(precision="fp8")
    assert default_plan_path("engines/mono.onnx", "fp16").name == "mono.fp16.plan"


def test_calibration_batches_from_npz_and_images(tmp_path):
    import cv2

    module = build_model("tiny_depth", kind="completion", height=16, width=32)
    path = export_module(module, tmp_path / "c.onnx", "tiny_depth", module.config)
    spec = read_sidecar(path)
    calib = tmp_path / "calib"
    calib.mkdir()
    img = np.zeros((60, 100, 3), np.uint8)
    img[..., 2] = 255  # BGR red
    cv2.imwrite(str(calib / "a.png"), img)
    np.savez(calib / "b.npz", image=np.ones((1, 3, 16, 32), np.float32),
             sparse_depth=np.zeros((1, 1, 16, 32), np.float32))
    batches = list(calibration_batches(spec, calib))
    assert len(batches) == 2
    np.testing.assert_allclose(batches[0]["image"][0, :, 5, 5], [1.0, 0.0, 0.0])
    assert batches[0]["sparse_depth"].shape == (1, 1, 16, 32)
    np.testing.assert_array_equal(batches[1]["image"], 1.0)
    np.savez(calib / "c.npz", image=np.ones((1, 3, 16, 32), np.float32))
    with pytest.raises(ValueError, match="missing engine input 'sparse_depth'"):
        list(calibration_batches(spec, calib))


# -- TensorRT: runs only where TensorRT and CUDA import -----------------------------------------------------------
@pytest.mark.gpu
def test_tensorrt_plan_builds_loads_and_matches_onnxruntime(tmp_path):
    pytest.importorskip("tensorrt")
    from depth_perception.engines.build import build_plan

    module = build_model("tiny_depth", kind="mono", height=32, width=64)
    path = export_module(module, tmp_path / "m.onnx", "tiny_depth", module.config)
    plan = build_plan(path, options=BuildOptions(precision="fp32", workspace_mb=256))
    side = read_sidecar(plan)
    assert side["tensorrt"]["precision"] == "fp32" and side["tensorrt"]["gpu"]
    engine = load_engine(path, backend="auto")
    assert engine.backend == "tensorrt"
    x = np.random.default_rng(0).random((1, 3, 32, 64), dtype=np.float32)
    ref = load_engine(path, backend="onnxruntime", device="cpu").infer(image=x)
    np.testing.assert_allclose(engine.infer(image=x)["depth"], ref["depth"], rtol=1e-3, atol=1e-3)


@pytest.mark.gpu
def test_a_plan_from_another_tensorrt_is_rebuilt_or_refused(tmp_path):
    pytest.importorskip("tensorrt")
    from depth_perception.engines import EngineError
    from depth_perception.engines.build import build_plan
    from depth_perception.utils import write_json

    module = build_model("tiny_depth", kind="mono", height=32, width=64)
    path = export_module(module, tmp_path / "m.onnx", "tiny_depth", module.config)
    plan = build_plan(path, options=BuildOptions(precision="fp16", workspace_mb=256))
    side = dict(read_sidecar(plan))
    side["tensorrt"] = {**side["tensorrt"], "version": "0.0.1"}
    write_json(plan.with_suffix(".json"), side)
    with pytest.raises(EngineError, match="build-engine"):
        load_engine(plan, backend="tensorrt", rebuild=False)
    engine = load_engine(plan, backend="tensorrt")
    assert engine.spec["tensorrt"]["version"] != "0.0.1"
