"""QoS profiles: sensor inputs best effort (selectable), outputs reliable, TF as tf2_ros subscribes to it."""
from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

_RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}


def _reliability(name: str) -> ReliabilityPolicy:
    try:
        return _RELIABILITY[str(name).strip().lower()]
    except KeyError:
        raise ValueError(f"reliability must be one of {sorted(_RELIABILITY)}, got {name!r}") from None


def _depth(depth: int) -> int:
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise ValueError(f"QoS depth must be an integer >= 1, got {depth!r}")
    return int(depth)


def sensor_qos(reliability: str = "best_effort", depth: int = 5) -> QoSProfile:
    """Inputs: keep the newest `depth` samples, volatile; best effort like rclpy's qos_profile_sensor_data."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=_depth(depth), reliability=_reliability(reliability),
                      durability=DurabilityPolicy.VOLATILE)


def output_qos(depth: int = 5) -> QoSProfile:
    """Outputs: reliable, keep last, volatile; a best-effort subscriber (RViz's default) still matches."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=_depth(depth), reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def qos_from_params(reliability: str, depth: int) -> QoSProfile:
    """The input profile a node builds from its `qos_reliability` / `qos_depth` parameters; ValueError on bad ones."""
    return sensor_qos(reliability, depth)


def tf_qos() -> QoSProfile:
    """/tf as tf2_ros's listener subscribes: reliable, volatile, keep last 100."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def tf_static_qos() -> QoSProfile:
    """/tf_static: reliable and transient local, so a late subscriber still gets the latched static transforms."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)
