"""`depth-perception kitti2bag <drive dir> <out bag>`: a KITTI raw drive to a rosbag2 bag (mcap or sqlite3)."""
from __future__ import annotations

import argparse
import sys

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("drive", help="a KITTI raw drive folder: <date>/<date>_drive_<NNNN>_sync")
    parser.add_argument("out", help="the bag folder to write (must not exist unless --overwrite)")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument("--start", type=int, default=0, help="first frame (default 0)")
    parser.add_argument("--end", type=int, default=None, help="one past the last frame (default: all)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output bag")


def run(args: argparse.Namespace) -> int:
    from ..data.kitti2bag import convert

    try:
        summary = convert(args.drive, args.out, storage=args.storage, start=args.start, end=args.end,
                          overwrite=args.overwrite)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 2) from exc
    total = sum(summary.counts.values())
    print(f"wrote {summary.path} ({summary.storage}): {summary.frames} frames, {total} messages")
    width = max(len(t) for t in summary.counts)
    for topic, count in sorted(summary.counts.items()):
        print(f"  {topic:<{width}}  {count}", file=sys.stdout)
    return 0
