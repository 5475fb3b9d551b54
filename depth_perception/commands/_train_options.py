"""What every `train <kind>` command shares: the training-loop options (they map onto training.trainer.TrainConfig)."""
from __future__ import annotations

from typing import Any


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
