"""DDS transport settings for camera-size messages, and the private rclpy contexts our commands run in.

Fast DDS (the default RMW from Humble to Kilted) shares memory between processes on one machine in 512 KB
segments by default. A KITTI-size image does not fit: it is fragmented, a best-effort reader (sensor-data QoS)
loses it entirely and a reliable one gets it ~20 ms late. `config/fastdds_large_data.xml` enlarges the segment;
`use_large_data_profile()` points Fast DDS at it before the first participant is created, unless the user has
configured Fast DDS (a profiles file or FASTDDS_BUILTIN_TRANSPORTS), chose another RMW, or set
DEPTH_PERCEPTION_DDS_PROFILE=0.
"""
from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

PROFILE_NAME = "fastdds_large_data.xml"
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")  # Fast DDS 3.x, 2.x
USER_SETTINGS = (*PROFILE_VARIABLES, "FASTDDS_BUILTIN_TRANSPORTS")
OPT_OUT = "DEPTH_PERCEPTION_DDS_PROFILE"
MIN_SHM_FREE_MB = 256  # a few processes' 16 MB segments, filled; Docker's default /dev/shm is 64 MB
log = logging.getLogger(__name__)


def shm_free_mb(path: str = "/dev/shm") -> float | None:
    """Free space of the shared-memory file system in MB (None where there is none, e.g. not Linux)."""
    try:
        st = os.statvfs(path)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize / 2**20


def large_data_profile() -> Path:
    """The installed (share/depth_perception/config) or source-tree copy of the Fast DDS profile."""
    from ..resources import share_file

    return Path(share_file("config", PROFILE_NAME))


def profile_variable(environ: MutableMapping[str, str]) -> str:
    """FASTDDS_DEFAULT_PROFILES_FILE for Fast DDS 3 (Kilted on; the other name is deprecated there and warns),
    FASTRTPS_DEFAULT_PROFILES_FILE for Fast DDS 2 (Humble to Jazzy)."""
    try:
        major = int(importlib.metadata.version("ros-fastdds").split(".")[0])  # the pip environment
    except (importlib.metadata.PackageNotFoundError, ValueError):
        major = 2 if environ.get("ROS_DISTRO") in ("humble", "iron", "jazzy") else 3
    return PROFILE_VARIABLES[0] if major >= 3 else PROFILE_VARIABLES[1]


def large_data_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to `environ` (default os.environ) for the profile; empty where it does not apply."""
    environ = os.environ if environ is None else environ
    rmw = environ.get("RMW_IMPLEMENTATION", "")
    if environ.get(OPT_OUT, "1") == "0" or (rmw and "fastrtps" not in rmw):
        return {}
    if any(environ.get(name) for name in USER_SETTINGS):
        return {}  # the user's own Fast DDS configuration wins
    profile = large_data_profile()
    if not profile.is_file():
        return {}
    free = shm_free_mb()
    if free is not None and free < MIN_SHM_FREE_MB:
        log.warning("/dev/shm has %.0f MB free (< %d): not enlarging Fast DDS's shared-memory segments; camera-size "
                    "best-effort messages between processes may be lost (docker run --shm-size=512m)", free,
                    MIN_SHM_FREE_MB)
        return {}
    return {profile_variable(environ): str(profile)}


def use_large_data_profile(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Set the profile in `environ` (default os.environ) where it applies; the profile's path, or None.

    Fast DDS reads the variable when a process creates its first participant: call before rclpy.init.
    """
    environ = os.environ if environ is None else environ
    extra = large_data_environment(environ)
    environ.update(extra)
    return next(iter(extra.values()), None)


def init_default_context(args: Any = None) -> None:
    """rclpy.init of the default context with the large-data profile and without rclpy's signal handlers (the
    node process installs its own: see nodes.process.run_node)."""
    import rclpy

    use_large_data_profile()
    try:
        from rclpy.signals import SignalHandlerOptions

        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # an rclpy without signal options
        rclpy.init(args=args)


def init_context() -> Any:
    """A private, initialized ROS context (no rclpy signal handlers: the caller owns SIGINT)."""
    import rclpy
    from rclpy.context import Context

    use_large_data_profile()
    context = Context()
    try:
        from rclpy.signals import SignalHandlerOptions

        rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # an rclpy without signal options
        rclpy.init(context=context)
    return context
