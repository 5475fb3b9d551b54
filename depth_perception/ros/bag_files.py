"""Opening a rosbag2 bag (a folder with metadata.yaml, or a single .mcap file) with rosbags, whatever its name.

rosbags' AnyReader takes any path ending in `.bag` for a ROS 1 bag, so a rosbag2 folder named `drive.bag` failed
with "Is a directory" (and hid the real error of a corrupt bag under such a name). Every error rosbags raises
while the bag is open (bad metadata, a chunk whose CRC does not match, a truncated file) becomes one `BagError`
line naming the bag.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class BagError(ValueError):
    """A bag that cannot be read; the message is one line naming the bag and the cause."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def check_bag_path(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        raise BagError(f"not a rosbag2 bag: {path} has no metadata.yaml")


@contextmanager
def open_bag(bag_path: str | Path) -> Iterator[Any]:
    """An open rosbags AnyReader (ROS 2 Kilted types where the bag has no definitions of its own)."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.rosbag2 import Reader as Rosbag2Reader
    from rosbags.rosbag2.errors import ReaderError as Rosbag2Error
    from rosbags.typesys import Stores, get_typestore

    try:
        from rosbags.rosbag1 import ReaderError as Rosbag1Error
    except ImportError:  # pragma: no cover - rosbags without ROS 1 support
        Rosbag1Error = Rosbag2Error
    path = Path(bag_path)
    check_bag_path(path)
    errors = (AnyReaderError, Rosbag2Error, Rosbag1Error)
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_KILTED))
        if path.is_dir():  # a rosbag2 folder, whatever its suffix
            reader.is2 = True
            reader.readers = [Rosbag2Reader(path)]
        with reader:
            yield reader
    except errors as exc:
        raise BagError(f"cannot read bag {path}: {_one_line(exc)}") from None


__all__ = ["BagError", "check_bag_path", "open_bag"]
