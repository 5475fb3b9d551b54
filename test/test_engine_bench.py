"""`bench engine`: per-backend latency, throughput and peak memory, parameter count and FLOPs."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # not in `make test-fast`

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from depth_perception.cli import main  # noqa: E402
from depth_perception.engines.bench import PeakMemory, bench_artifact  # noqa: E402
from depth_perception.engines.export import export_module  # noqa: E402
from depth_perception.engines.flops import flops_per_frame, parameter_count  # noqa: E402
from depth_perception.models.registry import build_model  # noqa: E402


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    module = build_model("tiny_depth", kind="mono", height=32, width=64, channels=8)
    return export_module(module, tmp_path_factory.mktemp("bench") / "tiny.onnx", "tiny_depth", module.config)


def test_bench_engine_cli_prints_a_table_and_writes_the_stable_keys(artifact, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "engine", str(artifact), "--runs", "3", "--warmup", "1", "--threads", "1",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "onnxruntime-cpu" in table and "torch-cpu" in table and "GFLOPs" in table
    report = json.loads(out.read_text())
    for key in ("p50_ms", "p95_ms", "fps", "peak_mb", "params", "gflops", "ort_cpu_vs_torch_cpu", "results",
                "kind", "height", "width", "best"):
        assert key in report, key
    assert set(report["results"]) >= {"onnxruntime-cpu", "torch-cpu"}
    for figures in report["results"].values():
        assert 0 < figures["p50_ms"] <= figures["p95_ms"]
        assert figures["fps"] > 0 and figures["peak_mb"] >= 0
    assert (report["height"], report["width"]) == (32, 64)
    assert report["isolated"] is True  # each backend timed in its own process by default
    assert report["ort_cpu_vs_torch_cpu"] == pytest.approx(
        report["results"]["torch-cpu"]["p50_ms"] / report["results"]["onnxruntime-cpu"]["p50_ms"])


def test_recorded_cpu_latencies_decide_the_auto_backend_on_the_cpu(artifact, tmp_path, capsys, caplog):
    import logging
    import shutil

    from depth_perception.engines import load_engine
    from depth_perception.engines.spec import read_sidecar, update_sidecar

    for suffix in (".onnx", ".json", ".safetensors"):
        shutil.copy(artifact.with_suffix(suffix), tmp_path / f"tiny{suffix}")
    path = tmp_path / "tiny.onnx"
    assert main(["bench", "engine", str(path), "--runs", "2", "--warmup", "0", "--threads", "1", "--in-process",
                 "--record"]) == 0
    assert "recorded cpu_latency_ms" in capsys.readouterr().out
    record = read_sidecar(path)["cpu_latency_ms"]
    assert record["onnxruntime"] > 0 and record["torch"] > 0 and record["threads"] == 1 and record["machine"]

    update_sidecar(path, "cpu_latency_ms", dict(record, onnxruntime=340.0, torch=140.0))  # ORT slow: torch runs
    with caplog.at_level(logging.INFO, logger="depth_perception.engines"):
        assert load_engine(path, device="cpu").backend == "torch"
    assert any("measured faster" in r.getMessage() and "340.0" in r.getMessage() for r in caplog.records)
    update_sidecar(path, "cpu_latency_ms", dict(record, onnxruntime=100.0, torch=95.0))  # within the margin
    assert load_engine(path, device="cpu").backend == "onnxruntime"
    update_sidecar(path, "cpu_latency_ms", "garbled")
    assert load_engine(path, device="cpu").backend == "onnxruntime"
    assert load_engine(path, "onnxruntime", "cpu").backend == "onnxruntime"  # an explicit backend is obeyed


def test_record_needs_both_cpu_backends(artifact, capsys):
    assert main(["bench", "engine", str(artifact), "--runs", "1", "--backends", "onnxruntime-cpu", "--record"]) == 2
    assert "--record needs onnxruntime-cpu and torch-cpu" in capsys.readouterr().err


def test_in_process_bench_times_the_chosen_backend_only(artifact):
    report = bench_artifact(artifact, runs=2, warmup=0, only=["onnxruntime-cpu"], figures=False)
    assert list(report["results"]) == ["onnxruntime-cpu"] and report["best"] == "onnxruntime-cpu"
    assert "gflops" not in report and report["p50_ms"] == report["results"]["onnxruntime-cpu"]["p50_ms"]


def test_bench_rejects_a_backend_that_cannot_run_here(artifact):
    with pytest.raises(ValueError, match="tensorrt"):
        bench_artifact(artifact, runs=1, warmup=0, only=["tensorrt"])


def test_flops_of_the_tiny_network_are_its_convolutions():
    module = build_model("tiny_depth", kind="mono", height=32, width=64, channels=8)
    pixels = 32 * 64
    macs = (3 * 8 + 8 * 8 + 8 * 1) * 9 * pixels  # three 3x3 convolutions
    assert flops_per_frame(module) == 2 * macs
    assert parameter_count(module) == (3 * 8 * 9 + 8) + (8 * 8 * 9 + 8) + (8 * 9 + 1)


def test_peak_memory_sees_native_allocations():
    with PeakMemory() as mem:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, allocated outside Python's object heap
        time.sleep(0.1)  # held a while, as an inference holds its buffers: the sampler must see it
        del block
    assert mem.peak_mb >= 48
