"""`depth-perception bench stereo`: the classical sweep's time beside OpenCV StereoSGBM's on the same frames, each
with the ratio to SGBM and its accuracy (issue 19: the sweep at no more than 3x SGBM's time, accuracy unchanged).

Four methods run on every frame through `eval.stereo_eval` (its protocol: holes filled as the KITTI devkit does,
bad-N on disparity at the evaluation width): SGBM with stereo_image_proc's settings, the sweep with its compiled
kernels (`pipelines.sweep_kernels`), the same sweep on its numpy code (the previous implementation, kept as the
kernels' reference), both without the pipeline's edge snap (the sweep's own time, issue 19's figure), and the
compiled sweep with the edge snap as the pipeline runs it by default. Times are per-frame medians on this machine,
single process.
"""
from __future__ import annotations

from typing import Any

from ..pipelines.stereo import StereoPipeline, StereoPipelineConfig
from .stereo_eval import StereoEvalOptions, evaluate

NUMPY_SWEEP = "classical (numpy)"
SNAPPED_SWEEP = "classical + edge snap"


def _sweep(options: StereoEvalOptions, compiled: bool, edge_snap: bool) -> Any:
    """The sweep exactly as `eval stereo` runs it (through the stereo pipeline), compiled or on its numpy code."""
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=options.min_depth,
                                               max_depth=options.max_depth, planes=options.planes,
                                               sweep_width=max(options.width, 32), edge_snap=edge_snap))
    assert pipe.classical is not None
    pipe.classical.config.compiled = compiled

    def run(left, right, camera, baseline):
        return pipe.process(left, right, camera, baseline).depth, None

    return run


def bench_stereo(options: StereoEvalOptions, drives: list[Any] | None = None) -> dict[str, Any]:
    """`eval stereo`'s report for SGBM, the compiled sweep and the numpy sweep (no edge snap) and the compiled
    sweep with it, each row with `x_sgbm`: its per-frame median time over SGBM's."""
    options.engine = ["classical"]
    options.edge_snap = False
    report = evaluate(options, drives, extra=[(NUMPY_SWEEP, _sweep(options, compiled=False, edge_snap=False)),
                                              (SNAPPED_SWEEP, _sweep(options, compiled=True, edge_snap=True))])
    sgbm_ms = report["methods"]["sgbm"]["p50_ms"]
    for row in report["methods"].values():
        row["x_sgbm"] = row["p50_ms"] / sgbm_ms if sgbm_ms > 0 else float("nan")
    return report


def format_table(report: dict[str, Any]) -> str:
    lines = [f"{'method':<22}{'ms':>9}{'x SGBM':>9}{'bad-3':>9}{'bad-1':>9}{'AbsRel':>9}{'density':>9}"]
    for name, row in report["methods"].items():
        lines.append(f"{name:<22}{row['p50_ms']:>9.1f}{row['x_sgbm']:>9.2f}{row['bad3']:>9.4f}{row['bad1']:>9.4f}"
                     f"{row['abs_rel']:>9.4f}{row['density']:>9.3f}")
    lines.append(f"{report['frames']} frames at {report['width']}x{report['height']}, median ms per frame, one run")
    return "\n".join(lines)


__all__ = ["NUMPY_SWEEP", "SNAPPED_SWEEP", "bench_stereo", "format_table"]
