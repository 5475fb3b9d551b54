#!/usr/bin/env python3
"""Copy the figures of a `depth-perception eval ... --json` file into an engine's sidecar, under metrics[NAME].

    python tools/record_metrics.py engines/stereo_default.onnx out/eval/stereo.json --name synthetic_heldout \
        --data "synthetic seeds 1000-1001, 640x192, 20 frames each"

Machine-specific entries (absolute data and engine paths) are dropped; --data says in words what was scored.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DROP = {"data", "engine"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("engine", help="ENGINE.onnx (its ENGINE.json is updated)")
    parser.add_argument("eval_json", help="the --json output of depth-perception eval")
    parser.add_argument("--name", required=True, help="key under metrics, e.g. synthetic_heldout")
    parser.add_argument("--data", required=True, help="what was evaluated, in words")
    parser.add_argument("--command", help="the eval command line, recorded for reproduction")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from depth_perception.engines.spec import EngineError, record_metrics

    try:
        figures = json.loads(Path(args.eval_json).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"record_metrics: cannot read {args.eval_json}: {exc}", file=sys.stderr)
        return 1
    figures = {k: v for k, v in figures.items() if k not in DROP}
    figures["data"] = args.data
    if args.command:
        figures["command"] = args.command
    try:
        path = record_metrics(args.engine, args.name, figures)
    except EngineError as exc:
        print(f"record_metrics: {exc}", file=sys.stderr)
        return 1
    print(f"metrics[{args.name!r}] -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
