"""The `depth-perception` command: one entry point, one module per subcommand under `commands/`.

Each command module exposes `add_arguments(parser)` and `run(args) -> int`. Modules are imported only
when their subcommand runs, so `depth-perception synth` never pays for torch or rclpy.
Errors: one line on stderr naming the cause; exit 2 for bad usage or input, 1 for a failure inside.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import CliError

# name -> (module under depth_perception.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "render a synthetic drive in the KITTI raw layout"),
    "kitti2bag": ("kitti2bag", "convert a KITTI raw drive to a rosbag2 bag"),
    "play": ("play", "replay a rosbag2 bag through rclpy"),
    "run": ("run", "start the depth nodes from a parameter file in one process"),
    "train": ("train", "train an engine network {mono,stereo,completion}"),
    "eval": ("evaluate", "evaluate an engine on a KITTI-layout drive {mono,stereo,completion}"),
    "export": ("export", "export a trained checkpoint to ONNX with its sidecar"),
    "build-engine": ("build_engine", "build a TensorRT plan from an ONNX model"),
    "infer": ("infer", "run an engine on image files {mono,stereo,completion}"),
    "bench": ("bench", "benchmarks {core,engine,node}"),
    "demo": ("demo", "the end-to-end demo: synth -> bag -> nodes -> report"),
}


def _available() -> dict[str, tuple[str, str]]:
    here = os.path.join(os.path.dirname(__file__), "commands")
    return {k: v for k, v in COMMANDS.items() if os.path.exists(os.path.join(here, v[0] + ".py"))}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="depth-perception", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _available().items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(_module=module)
        if len(sys.argv) > 1 and sys.argv[1] == name or "--help-all" in sys.argv:
            importlib.import_module(f"depth_perception.commands.{module}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    saved = sys.argv
    sys.argv = [saved[0]] + list(argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    finally:
        sys.argv = saved
    prog = f"depth-perception {args.command}"
    try:
        module = importlib.import_module(f"depth_perception.commands.{args._module}")
        return int(module.run(args) or 0)
    except CliError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
            ValueError) as exc:
        if os.environ.get("DEPTH_PERCEPTION_DEBUG"):
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the CLI boundary reports everything in one line
        if os.environ.get("DEPTH_PERCEPTION_DEBUG"):
            raise
        print(f"{prog}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
