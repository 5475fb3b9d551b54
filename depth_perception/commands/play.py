"""`depth-perception play <bag>`: publish a rosbag2 bag through rclpy with its original timing (Ctrl-C stops)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", help="a rosbag2 folder (mcap or sqlite3)")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    parser.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    parser.add_argument("--start-offset", type=float, default=0.0, metavar="S",
                        help="skip the first S seconds of the bag")
    parser.add_argument("--topics", nargs="+", default=None, metavar="T", help="replay only these topics")
    parser.add_argument("--qos", choices=("reliable", "best_effort", "sensor_data"), default=None,
                        help="publisher QoS for every topic (default: as recorded)")
    parser.add_argument("--clock", action="store_true", help="publish /clock from the bag's time (use_sim_time)")
    parser.add_argument("--raw", action="store_true",
                        help="publish the recorded CDR bytes unchanged (fastest; definitions must match)")


def _check(args: argparse.Namespace) -> None:
    if not args.rate > 0:
        raise CliError(f"--rate must be > 0, got {args.rate}")
    if args.start_offset < 0:
        raise CliError(f"--start-offset must be >= 0, got {args.start_offset}")
    from ..ros.bag_files import BagError, check_bag_path

    try:
        check_bag_path(Path(args.bag))
    except (FileNotFoundError, BagError) as exc:
        raise CliError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    _check(args)
    from ..ros.bag_files import BagError
    from ..ros.bag_replay import play_standalone

    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    previous_term = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def log(msg: str) -> None:
        print(f"depth-perception play: {msg}", file=sys.stderr, flush=True)

    try:
        log(f"playing {args.bag} at rate {args.rate}" + (" (loop)" if args.loop else ""))
        stats = play_standalone(args.bag, stop, rate=args.rate, loop=args.loop, start_offset=args.start_offset,
                                topics=args.topics, qos=args.qos, clock=args.clock, raw=args.raw, log=log)
    except BagError as exc:
        raise CliError(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    total = sum(stats.published.values())
    state = "stopped" if stop.is_set() else "done"
    log(f"{state}: published {total} messages on {len(stats.published)} topics"
        + (f", {stats.loops} loops" if args.loop else ""))
    return 0
