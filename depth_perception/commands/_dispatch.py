"""Shared plumbing for subcommands that take an engine kind: `train mono`, `eval stereo`, `infer completion`."""
from __future__ import annotations

import argparse
import importlib

KINDS = ("mono", "stereo", "completion")


def add_kind_subparsers(parser: argparse.ArgumentParser, module_pattern: str) -> None:
    """Add one sub-parser per kind; each kind's module (module_pattern.format(kind=...)) adds its arguments."""
    sub = parser.add_subparsers(dest="kind", metavar="{mono,stereo,completion}")
    sub.required = True
    for kind in KINDS:
        p = sub.add_parser(kind)
        name = module_pattern.format(kind=kind)
        p.set_defaults(_kind_module=name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            p.set_defaults(_kind_missing=True)
            continue
        module.add_arguments(p)


def run_kind(args: argparse.Namespace) -> int:
    from ..cli import CliError

    if getattr(args, "_kind_missing", False):
        raise CliError(f"'{args.kind}' is not available in this build", code=2)
    return int(importlib.import_module(args._kind_module).run(args) or 0)
