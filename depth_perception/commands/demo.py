"""`depth-perception demo`: the command line of eval.demo (synthetic drive -> rosbag2 -> the three depth nodes
over DDS -> report in --out)."""
from __future__ import annotations

import argparse

from ..kinds import KIND_NAMES as KINDS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="out/demo", help="output folder (default out/demo)")
    parser.add_argument("--frames", type=int, default=20,
                        help="frames to synthesize, or to take from the start of --drive (default 20)")
    parser.add_argument("--seed", type=int, default=1000, help="synthetic drive seed (held-out: >= 1000)")
    parser.add_argument("--width", type=int, default=None, help="synthesize frames this wide (default: synth's)")
    parser.add_argument("--height", type=int, default=None, help="synthesize frames this high (default: synth's)")
    parser.add_argument("--drive", default=None, help="use this KITTI raw drive instead of synthesizing one")
    parser.add_argument("--engines-dir", default=None,
                        help="folder with <kind>_default.onnx + .json (default: the shipped engines)")
    parser.add_argument("--config", default=None, help="node parameter file (default: config/kitti.yaml)")
    parser.add_argument("--rate", type=float, default=None,
                        help="replay with the bag's timing at this rate; default: frame by frame, waiting for "
                             "every node's output, so every frame is processed")
    parser.add_argument("--frame-timeout", type=float, default=120.0,
                        help="seconds to wait for the nodes' outputs of one frame (default 120)")
    for kind in KINDS:
        parser.add_argument(f"--no-{kind}", action="store_true", help=f"leave the {kind} node out")
    parser.add_argument("--no-baselines", action="store_true", help="skip the offline classical baselines")
    parser.add_argument("--force", action="store_true", help="synthesize and convert again even if reusable")



def run(args: argparse.Namespace) -> int:
    from ..errors import CliError
    from ..eval.demo import DemoOptions, run_demo
    from ._options import options_from

    options = options_from(DemoOptions, args, kinds=tuple(k for k in KINDS if not getattr(args, f"no_{k}")),
                           baselines=not args.no_baselines)
    try:
        return run_demo(options)
    except RuntimeError as exc:
        raise CliError(str(exc), 1) from None
