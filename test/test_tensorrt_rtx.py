"""TensorRT-RTX on every CI run: the shipped engines and their fp16 variants build ahead of time on the CPU with
TensorRT-RTX's own ONNX parser and builder; a graph it rejects names the node; sidecars say what was built. Running
the engines needs an RTX-class GPU (SM75-SM121): those tests skip elsewhere, saying why."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.engines import load_engine, sha256_file
from depth_perception.engines.backends.trt_backend import runtime_available
from depth_perception.engines.build import BuildOptions, build_plan, default_plan_path, default_runtime
from depth_perception.engines.fp16 import export_fp16
from depth_perception.engines.spec import EngineError, read_sidecar

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("mono", "stereo", "completion")
RTX_RUNS, RTX_WHY = runtime_available("tensorrt-rtx")


def shipped_copy(tmp_path, kind):
    src = ROOT / "engines" / f"{kind}_default.onnx"
    for suffix in (".onnx", ".json"):
        shutil.copy(src.with_suffix(suffix), tmp_path / src.with_suffix(suffix).name)
    return tmp_path / src.name


@pytest.mark.parametrize("kind", KINDS)
def test_every_shipped_engine_builds_with_tensorrt_rtx_on_the_cpu(tmp_path, kind, capsys):
    onnx = shipped_copy(tmp_path, kind)
    sidecar_before = onnx.with_suffix(".json").read_bytes()
    assert main(["build-engine", str(onnx), "--runtime", "tensorrt-rtx"]) == 0
    plan = default_plan_path(onnx, "fp32", "tensorrt-rtx")
    assert plan.name == f"{kind}_default.rtx.plan" and plan.stat().st_size > 1_000_000
    built = read_sidecar(plan)
    trt = built["tensorrt"]
    assert trt["runtime"] == "tensorrt-rtx" and trt["version"].startswith("1.")
    assert trt["compute_capabilities"] == ["default"] and trt["precision"] == "fp32"
    assert trt["source_onnx"] == onnx.name and trt["source_sha256"] == sha256_file(onnx)
    assert built["sha256"] == sha256_file(plan) and built["model_file"] == plan.name
    assert onnx.with_suffix(".json").read_bytes() == sidecar_before  # the ONNX's sidecar is never written
    assert "MB in" in capsys.readouterr().out


@pytest.mark.parametrize("kind", KINDS)
def test_the_fp16_variant_matches_fp32_within_its_tolerance_and_builds_as_an_fp16_engine(tmp_path, kind):
    onnx = shipped_copy(tmp_path, kind)
    half = export_fp16(onnx)
    assert half.name == f"{kind}_default.fp16.onnx"
    side = read_sidecar(half)
    parity = side["fp16"]["parity_vs_fp32"]
    assert side["precision"] == "fp16" and side["fp16"]["source_sha256"] == sha256_file(onnx)
    assert parity["depth"]["median_rel"] <= side["fp16"]["tolerance_median_rel"] == 0.02
    if kind == "mono":
        assert parity["depth"]["p99_rel"] < 0.01  # near-exact: no geometry inside
    import onnx as onnx_lib

    model = onnx_lib.load(str(half))
    assert {i.type.tensor_type.elem_type for i in model.graph.input} == {onnx_lib.TensorProto.FLOAT}
    assert any(t.data_type == onnx_lib.TensorProto.FLOAT16 for t in model.graph.initializer)
    plan = build_plan(half, None, BuildOptions(precision="fp16", runtime="tensorrt-rtx",
                                               compute_capabilities=("SM86",)))
    assert plan.name == f"{kind}_default.fp16.rtx.plan"
    assert read_sidecar(plan)["tensorrt"]["precision"] == "fp16"
    assert read_sidecar(plan)["tensorrt"]["compute_capabilities"] == ["SM86"]


def test_the_fp16_export_refuses_a_tolerance_it_misses_and_writes_nothing(tmp_path):
    onnx = shipped_copy(tmp_path, "completion")
    with pytest.raises(EngineError, match="exceeds the tolerance"):
        export_fp16(onnx, tolerance=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["completion_default.json", "completion_default.onnx"]
    assert main(["export", str(onnx), "--fp16", "--fp16-tolerance", "1e-6"]) == 1


def test_a_graph_the_parser_rejects_names_the_node(tmp_path):
    import onnx as onnx_lib
    from onnx import helper

    node = helper.make_node("Frobnicate", ["image"], ["depth"], name="frob_0", domain="acme")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", 1, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("depth", 1, [1, 1, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)])
    path = tmp_path / "bad.onnx"
    onnx_lib.save(model, str(path))
    spec = json.loads((ROOT / "engines" / "mono_default.json").read_text())
    spec.update(sha256=sha256_file(path), model_file=path.name)
    spec["inputs"][0]["shape"], spec["outputs"] = [1, 3, 8, 8], [{"name": "depth", "shape": [1, 1, 8, 8]}]
    path.with_suffix(".json").write_text(json.dumps(spec))
    with pytest.raises(EngineError, match=r"node 0 'frob_0' \(Frobnicate\)"):
        build_plan(path, None, BuildOptions(precision="fp32", runtime="tensorrt-rtx"))
    assert not default_plan_path(path, "fp32", "tensorrt-rtx").exists()


def test_build_engine_chooses_tensorrt_rtx_where_tensorrt_is_missing_and_refuses_its_flags(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        assert default_runtime() == "tensorrt-rtx"
    onnx = shipped_copy(tmp_path, "mono")
    assert main(["build-engine", str(onnx), "--runtime", "tensorrt-rtx", "--int8", "--calib-dir", str(tmp_path)]) == 2
    assert main(["build-engine", str(onnx), "--runtime", "tensorrt-rtx", "--fp16"]) == 2
    assert main(["build-engine", str(onnx), "--runtime", "tensorrt-rtx", "--compute-capability", "SM90"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "int8" in err[0] and "export --fp16" in err[1] and "SM90" in err[2]


def test_where_no_rtx_gpu_runs_it_the_backend_says_why_and_auto_keeps_to_onnxruntime(tmp_path):
    if RTX_RUNS:
        pytest.skip("an RTX-class GPU is present: the run test below covers it")
    onnx = shipped_copy(tmp_path, "mono")
    plan = build_plan(onnx, None, BuildOptions(precision="fp32", runtime="tensorrt-rtx"))
    with pytest.raises(EngineError, match=RTX_WHY.split(";")[0]):
        load_engine(plan, backend="tensorrt")
    engine = load_engine(onnx)  # the plan beside cannot run here: auto picks a runtime that can
    assert engine.backend in ("onnxruntime", "torch")


@pytest.mark.skipif(not RTX_RUNS, reason=f"TensorRT-RTX engines run on RTX-class GPUs only: {RTX_WHY}")
@pytest.mark.parametrize("kind", KINDS)
def test_a_tensorrt_rtx_engine_runs_like_onnxruntime_and_keeps_a_runtime_cache(tmp_path, kind):
    onnx = shipped_copy(tmp_path, kind)
    plan = build_plan(onnx, None, BuildOptions(precision="fp32", runtime="tensorrt-rtx"))
    engine = load_engine(plan, backend="tensorrt")
    inputs = engine.example_inputs(seed=2)
    got = engine.infer(**inputs)
    want = load_engine(onnx, backend="onnxruntime", device="cpu").infer(**inputs)
    np.testing.assert_allclose(got["depth"], want["depth"], rtol=2e-2, atol=2e-2)
    assert engine.runtime_cache_path.is_file()
    assert load_engine(onnx).backend == "tensorrt"  # auto prefers the engine that runs here
