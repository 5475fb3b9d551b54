"""What the commands share: the training-loop options (training.trainer.LoopOptions) and the step from parsed
arguments to a layer's options dataclass (`options_from`)."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")


def options_from(cls: type[T], args: argparse.Namespace, **overrides: Any) -> T:
    """`cls` (an options dataclass) filled from the parsed arguments of the same names, then `overrides`; a value
    the dataclass refuses becomes the command's one-line error."""
    from ..errors import CliError

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
              if f.init and hasattr(args, f.name)}
    values.update(overrides)
    try:
        return cls(**values)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def add_loop_arguments(parser: Any) -> None:
    """The training-loop options every `train <kind>` command shares (they map onto TrainConfig)."""
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amp", action="store_true", help="mixed precision on CUDA")
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--ckpt-every", type=int, default=250)
    parser.add_argument("--max-minutes", type=float, default=0.0,
                        help="wall-clock budget: stop early with a checkpoint (0 = none)")
