"""`depth-perception train {mono,stereo,completion}`: train an engine network.

Each kind's code lives in depth_perception.commands.train_{kind}.
"""
from __future__ import annotations

import argparse

from ._dispatch import add_kind_subparsers, run_kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_kind_subparsers(parser, "depth_perception.commands.train_{kind}")


def run(args: argparse.Namespace) -> int:
    return run_kind(args)
