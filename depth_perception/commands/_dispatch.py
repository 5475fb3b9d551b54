"""Shared plumbing for subcommands that take an engine kind: `train mono`, `eval stereo`, `infer completion`."""
from __future__ import annotations

import argparse
import importlib

from ..kinds import KIND_NAMES as KINDS


def add_kind_subparsers(parser: argparse.ArgumentParser, module_pattern: str) -> None:
    """Add one sub-parser per kind; each kind's module (module_pattern.format(kind=...)) adds its arguments."""
    sub = parser.add_subparsers(dest="kind", metavar="{mono,stereo,completion}")
    sub.required = True
    for kind in KINDS:
        p = sub.add_parser(kind)
        name = module_pattern.format(kind=kind)
        p.set_defaults(_kind_module=name)
        importlib.import_module(name).add_arguments(p)


def run_kind(args: argparse.Namespace) -> int:
    return int(importlib.import_module(args._kind_module).run(args) or 0)
