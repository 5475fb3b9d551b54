"""`depth-perception run CONFIG.yaml [--bag BAG]`: the depth nodes of a node-set YAML in one process (what the
launch files start in a ROS install), optionally fed from a bag; Ctrl-C stops cleanly."""
from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="node-set YAML, e.g. config/kitti.yaml or config/vehicle.yaml")
    parser.add_argument("--bag", default=None, help="replay this rosbag2 bag (mcap or sqlite3) into the nodes")
    parser.add_argument("--rate", type=float, default=1.0, help="replay speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="replay the bag again and again until Ctrl-C")
    parser.add_argument("--clock", action="store_true", help="publish /clock from the bag and set use_sim_time")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.PARAM=VALUE",
                        help="override a node parameter (repeatable), e.g. stereo_depth_node.engine=classical")
    parser.add_argument("--listen", action="store_true",
                        help="subscribe to every node's depth (as RViz would), so the nodes compute even with "
                             "nothing else listening; the summary counts what arrived")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds (default: at the end of the bag, or Ctrl-C)")


def _overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    from ..nodes.runner import parse_set_option

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        try:
            node, param, value = parse_set_option(item)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        out.setdefault(node, {})[param] = value
    return out


def _check(args: argparse.Namespace) -> None:
    if not Path(args.config).is_file():
        raise CliError(f"node config not found: {args.config}")
    if not args.rate > 0:
        raise CliError(f"--rate must be > 0, got {args.rate}")
    if args.duration is not None and not args.duration > 0:
        raise CliError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.bag is not None:
        from ..ros.bag_files import BagError, check_bag_path

        try:
            check_bag_path(Path(args.bag))
        except (FileNotFoundError, BagError) as exc:
            raise CliError(str(exc)) from None


def _fmt(value: float) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"


def run(args: argparse.Namespace) -> int:
    _check(args)
    overrides = _overrides(args.overrides)
    from ..nodes.runner import apply_overrides, load_node_config, run_config

    try:
        apply_overrides(load_node_config(args.config), overrides)  # reject bad files and --set before starting
    except ValueError as exc:
        raise CliError(str(exc)) from None

    def log(msg: str) -> None:
        print(f"depth-perception run: {msg}", file=sys.stderr, flush=True)

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    previous_term = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        summary = run_config(args.config, overrides=overrides, bag=args.bag, rate=args.rate, loop=args.loop,
                             clock=args.clock, duration_s=args.duration, stop_event=stop, listen=args.listen,
                             log=log)
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    print(f"{'node':<40} {'synced':>7} {'frames':>7} {'failed':>7} {'dropped':>8} {'p50 ms':>8}  state")
    for name, s in summary.nodes.items():
        level, message = s["state"]
        print(f"{name:<40} {s['frames_synchronized']:>7} {s['frames_processed']:>7} {s['frames_failed']:>7} "
              f"{s['frames_dropped']:>8} {_fmt(s['processing_ms_p50']):>8}  {level} {message}")
    if summary.replay is not None:
        total = sum(summary.replay.published.values())
        log(f"replayed {total} messages on {len(summary.replay.published)} topics")
    log(("stopped" if stop.is_set() else "done") + f" after {summary.elapsed_s:.1f} s")
    if summary.replay_error:
        raise CliError(f"bag replay failed: {summary.replay_error}", 1)
    return 0
