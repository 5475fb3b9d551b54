"""`depth-perception bench engine ARTIFACT`: latency p50/p95, fps and peak memory per available backend.

Each backend is loaded, warmed up and timed at the engine's own resolution on the same random inputs, by default
in its own fresh interpreter. peak_mb is the rise of the process's resident memory while loading and running that
backend (sampled from /proc, plus the ru_maxrss rise): native allocations by onnxruntime and torch count, which
tracemalloc misses; it includes the runtime library itself where this backend is the first to load it.
On CUDA, gpu_peak_mb is torch's peak allocation (torch backend only).
"""
from __future__ import annotations

import gc
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _maxrss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak resident memory above the level at entry, sampled by a thread every few milliseconds."""

    def __init__(self, interval_s: float = 0.002) -> None:
        self.interval_s = interval_s
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self._base, self._base_maxrss = _rss_mb(), _maxrss_mb()
        self._top = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._top = max(self._top, _rss_mb())
            time.sleep(self.interval_s)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._top = max(self._top, _rss_mb())
        self.peak_mb = max(self._top - self._base, _maxrss_mb() - self._base_maxrss, 0.0)


def configurations(path: Path, spec: dict[str, Any], threads: int | None) -> dict[str, Callable[[], Any]]:
    """name -> loader of each backend/device/precision that can run this artifact here."""
    import importlib.util

    from . import load_engine, runnable_plan
    from .backends.ort_backend import has_cuda as ort_cuda
    from .backends.torch_backend import cuda_available, weights_path
    from .backends.trt_backend import tensorrt_available

    configs: dict[str, Callable[[], Any]] = {}
    plan = path if path.suffix in (".plan", ".engine") else runnable_plan(path)
    if plan is not None and tensorrt_available():
        configs["tensorrt"] = lambda: load_engine(plan, "tensorrt", "cuda")
    if path.suffix == ".onnx" and importlib.util.find_spec("onnxruntime"):
        if ort_cuda():
            configs["onnxruntime-cuda"] = lambda: load_engine(path, "onnxruntime", "cuda", threads=threads)
        configs["onnxruntime-cpu"] = lambda: load_engine(path, "onnxruntime", "cpu", threads=threads)
    has_weights = path.suffix in (".onnx", ".safetensors") and weights_path(path, spec).exists()
    if has_weights and importlib.util.find_spec("torch"):
        if cuda_available():
            configs["torch-cuda-fp32"] = lambda: load_engine(path, "torch", "cuda")
            configs["torch-cuda-fp16"] = lambda: load_engine(path, "torch", "cuda", fp16=True)
        configs["torch-cpu"] = lambda: load_engine(path, "torch", "cpu", threads=threads)
    return configs


def time_engine(engine: Any, inputs: dict[str, np.ndarray], runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        engine.infer(**inputs)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        engine.infer(**inputs)  # returns host arrays: a GPU backend has synchronized
        times.append((time.perf_counter() - t0) * 1e3)
    arr = np.asarray(times)
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "mean_ms": float(arr.mean()), "min_ms": float(arr.min()), "fps": float(1e3 / arr.mean())}


def _isolated(path: Path, name: str, runs: int, warmup: int, threads: int | None) -> dict[str, Any]:
    """One configuration timed in a fresh interpreter, so its memory figures start from a clean process."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench_engine_") as tmp:
        out = Path(tmp) / "one.json"
        opts = {"path": str(path), "backend": name, "runs": runs, "warmup": warmup, "threads": threads or 0,
                "json": str(out)}
        cmd = [sys.executable, "-m", "depth_perception.engines.bench", json.dumps(opts)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the package importable as in this process
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"benchmark of {name} failed in its subprocess: {tail}")
        return json.loads(out.read_text())["results"][name]


def bench_artifact(path: str | Path, runs: int = 50, warmup: int = 5, threads: int | None = None,
                   only: list[str] | None = None, isolate: bool = False, figures: bool = True) -> dict[str, Any]:
    """The figures `bench engine` prints and writes, as a dict; isolate: each backend in its own process."""
    from .spec import Engine, read_sidecar

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"engine not found: {path}")
    spec = read_sidecar(path)
    configs = configurations(path, spec, threads or None)
    if only:
        unknown = sorted(set(only) - set(configs))
        if unknown:
            raise ValueError(f"--backends {unknown} cannot run here; available: {sorted(configs)}")
        configs = {k: v for k, v in configs.items() if k in only}
    if not configs:
        raise ValueError(f"no backend can run {path} here")
    h, w = spec.image_size
    report: dict[str, Any] = {"artifact": str(path), "kind": spec["kind"], "height": h, "width": w, "runs": runs,
                              "warmup": warmup, "threads": threads or 0, "results": {}}
    inputs = Engine(spec, path).example_inputs()
    for name, loader in configs.items():
        if isolate:
            report["results"][name] = _isolated(path, name, runs, warmup, threads)
            continue
        gpu = name.startswith("torch-cuda")
        if gpu:
            import torch

            torch.cuda.reset_peak_memory_stats()
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            engine = loader()
            load_ms = (time.perf_counter() - t0) * 1e3
            timing = time_engine(engine, inputs, runs, warmup)
        timing.update(peak_mb=mem.peak_mb, load_ms=load_ms, backend=engine.backend, device=engine.device)
        if gpu:
            timing["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        report["results"][name] = timing
        del engine
        gc.collect()
    if figures:  # after timing: building the module here must not count towards any backend's memory
        try:
            from .flops import architecture_figures

            report.update(architecture_figures(spec))
        except Exception as exc:  # figures are a bonus; timing still counts without them
            log.warning("no parameter/FLOP count for %s: %s", path, exc)
        if path.suffix == ".onnx":
            report["tensorrt_rtx"] = rtx_build_figures(path)
    results = report["results"]
    if "onnxruntime-cpu" in results and "torch-cpu" in results:
        # > 1: onnxruntime is faster than torch on the CPU by this factor
        report["ort_cpu_vs_torch_cpu"] = results["torch-cpu"]["p50_ms"] / results["onnxruntime-cpu"]["p50_ms"]
    best = min(results, key=lambda k: results[k]["p50_ms"])
    report["best"] = best
    for key in ("p50_ms", "p95_ms", "fps", "peak_mb"):
        report[key] = results[best][key]
    return report


def rtx_build_figures(onnx_path: Path) -> dict[str, Any] | None:
    """TensorRT-RTX's ahead-of-time build of the ONNX (no GPU needed) into a temporary folder: seconds and MB, or
    None where tensorrt_rtx is not installed. A graph it rejects is reported with the builder's reason."""
    import importlib.util
    import shutil
    import tempfile

    from .build import BuildOptions, build_plan
    from .spec import EngineError, read_sidecar

    if importlib.util.find_spec("tensorrt_rtx") is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="rtx_bench_"))
    try:
        shutil.copy(onnx_path, tmp / onnx_path.name)
        shutil.copy(onnx_path.with_suffix(".json"), tmp / onnx_path.with_suffix(".json").name)
        try:
            plan = build_plan(tmp / onnx_path.name, None, BuildOptions(precision="fp32", runtime="tensorrt-rtx"))
        except EngineError as exc:
            return {"error": str(exc)}
        built = read_sidecar(plan)["tensorrt"]
        return {"version": built["version"], "build_s": built["build_s"], "engine_mb": plan.stat().st_size / 1e6}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_record(report: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's `cpu_latency_ms` from a report that timed both CPU backends."""
    import platform

    results = report["results"]
    missing = [k for k in ("onnxruntime-cpu", "torch-cpu") if k not in results]
    if missing:
        raise ValueError(f"--record needs both CPU backends timed; {', '.join(missing)} did not run")
    return {"onnxruntime": round(results["onnxruntime-cpu"]["p50_ms"], 2),
            "torch": round(results["torch-cpu"]["p50_ms"], 2),
            "threads": report["threads"] or os.cpu_count(), "machine": _cpu_name() or platform.machine(),
            "runs": report["runs"]}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return ""


def format_table(report: dict[str, Any]) -> str:
    lines = [f"engine {report['artifact']} ({report['kind']}, {report['width']}x{report['height']}, "
             f"{report['runs']} runs after {report['warmup']} warm-up)"]
    if "params" in report:
        lines.append(f"parameters {report['params'] / 1e6:.3f} M, {report['gflops']:.3f} GFLOPs per frame")
    lines.append(f"{'backend':<18} {'p50 ms':>9} {'p95 ms':>9} {'fps':>9} {'peak MB':>9} {'load ms':>9}")
    for name, r in report["results"].items():
        lines.append(f"{name:<18} {r['p50_ms']:>9.2f} {r['p95_ms']:>9.2f} {r['fps']:>9.1f} {r['peak_mb']:>9.1f} "
                     f"{r['load_ms']:>9.0f}")
    if "ort_cpu_vs_torch_cpu" in report:
        lines.append(f"onnxruntime-cpu is {report['ort_cpu_vs_torch_cpu']:.2f}x the speed of torch-cpu (p50)")
    rtx = report.get("tensorrt_rtx")
    if rtx and "error" in rtx:
        lines.append(f"TensorRT-RTX build failed: {rtx['error']}")
    elif rtx:
        lines.append(f"TensorRT-RTX {rtx['version']} ahead-of-time build (no GPU): {rtx['build_s']:.2f} s, "
                     f"{rtx['engine_mb']:.1f} MB engine (runs on RTX-class GPUs only; not timed here)")
    return "\n".join(lines)


def _child() -> int:
    """The per-backend subprocess of an isolated benchmark: one configuration, figures as JSON (see _isolated)."""
    import json

    opts = json.loads(sys.argv[1])
    report = bench_artifact(opts["path"], opts["runs"], opts["warmup"], opts["threads"], [opts["backend"]],
                            isolate=False, figures=False)
    Path(opts["json"]).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(_child())
