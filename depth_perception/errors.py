"""Exceptions shared across the layers (the bottom of the rank in docs/ARCHITECTURE.md: it imports nothing of ours)."""
from __future__ import annotations


class CliError(Exception):
    """A failure the command line reports as one line; `code` 2 for bad usage or input, 1 for a failure inside.

    Raised by `commands/` only: the layers below raise ValueError, FileNotFoundError or their own specific errors
    (EngineError, BagError, ...), and the commands map them to one line and an exit code.
    """

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


__all__ = ["CliError"]
