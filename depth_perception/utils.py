"""Small shared helpers: atomic file output, JSON figures, progress bars."""
from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    A half-written output never replaces a good one: on failure the temporary file or folder is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        try:
            os.replace(tmp_path, path)
        except OSError as exc:
            raise _naming(exc, path) from None
    except BaseException:
        if tmp_path.is_dir():
            import shutil

            shutil.rmtree(tmp_path, ignore_errors=True)
        elif tmp_path.exists():
            tmp_path.unlink()
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error about the output the caller named, not the temporary file beside it."""
    return type(exc)(exc.errno, f"cannot write {path}: {exc.strerror}")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically, sorted keys, with NaN written as null."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and x != x:
            return None
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
            return clean(x.item())
        return x

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(clean(data), indent=2, sort_keys=True) + "\n")


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, **kwargs: Any) -> Iterable[T]:
    """A tqdm progress bar on stderr for people; quiet when DEPTH_PERCEPTION_QUIET is set."""
    if os.environ.get("DEPTH_PERCEPTION_QUIET"):
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but never fail for a progress bar
        return iterable
    return tqdm(iterable, desc=desc, total=total, file=sys.stderr, dynamic_ncols=True, leave=False, **kwargs)
