#!/usr/bin/env python3
"""Plot training curves from runs' scalars.jsonl: one panel per run, every logged scalar against the step.

    python tools/plot_training.py --out docs/training/curves.png mono=runs/mono stereo=runs/stereo1 ...

Each argument is LABEL=PATH, PATH a run folder or its scalars.jsonl. Scalars on very different scales share a
panel on a log axis.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SKIP = {"step", "lr", "seconds"}


def read_scalars(path: Path) -> list[dict[str, float]]:
    file = path / "scalars.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no scalars.jsonl at {path}")
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    if not rows:
        raise ValueError(f"{file} holds no rows")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="LABEL=PATH (run folder or scalars.jsonl)")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for item in args.runs:
        label, sep, path = item.partition("=")
        if not sep:
            parser.error(f"expected LABEL=PATH, got {item!r}")
        try:
            runs.append((label, read_scalars(Path(path))))
        except (OSError, ValueError) as exc:
            print(f"plot_training: {exc}", file=sys.stderr)
            return 1
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), squeeze=False)
    for ax, (label, rows) in zip(axes[0], runs, strict=True):
        steps = [r["step"] for r in rows]
        for key in [k for k in rows[0] if k not in SKIP]:
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=key)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        minutes = rows[-1].get("seconds", 0.0) / 60.0
        ax.set_title(f"{label} ({rows[-1]['step']} steps, {minutes:.1f} min)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
