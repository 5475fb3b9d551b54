"""Files the package installs under share/depth_perception (launch files, configs, engines): one lookup for all."""
from __future__ import annotations

from pathlib import Path

PACKAGE = "depth_perception"


def share_file(*parts: str) -> str:
    """A file installed under share/depth_perception (the source tree's copy outside a ROS install)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        base = Path(get_package_share_directory(PACKAGE))
    except Exception:  # not installed: the source tree
        base = Path(__file__).resolve().parents[1]
    return str(base.joinpath(*parts))


__all__ = ["PACKAGE", "share_file"]
