"""TF for the nodes: a listener on /tf and /tf_static filling a TransformBuffer (tf2_ros's Buffer where installed),
and TransformStamped <-> 4x4 matrix."""
from __future__ import annotations

from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped

from ..geometry.se3 import make_transform, matrix_to_quaternion, quaternion_to_matrix
from ..geometry.transform_buffer import TransformBuffer
from .qos import tf_qos, tf_static_qos
from .sync import stamp_to_ns

try:  # a ROS distro install; the pip environment has no tf2_ros
    import tf2_ros
except ImportError:  # pragma: no cover - depends on the environment
    tf2_ros = None


def ns_to_stamp(stamp_ns: int) -> Time:
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def transform_stamped_to_matrix(msg: TransformStamped) -> np.ndarray:
    """TransformStamped (header.frame_id = parent, child_frame_id = child) -> 4x4 T_parent_child."""
    t, q = msg.transform.translation, msg.transform.rotation
    quat = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    norm = np.linalg.norm(quat)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(
            f"transform {msg.header.frame_id!r} -> {msg.child_frame_id!r} has an invalid rotation quaternion {quat}"
        )
    return make_transform(quaternion_to_matrix(quat), [t.x, t.y, t.z])


def matrix_to_transform_stamped(T: np.ndarray, parent: str, child: str, stamp: Any = 0) -> TransformStamped:
    """4x4 T_parent_child -> TransformStamped; `stamp` is a builtin_interfaces/Time or int nanoseconds."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"transform {parent!r} -> {child!r} must be 4x4, got shape {T.shape}")
    msg = TransformStamped()
    msg.header.frame_id = parent
    msg.header.stamp = ns_to_stamp(stamp) if isinstance(stamp, (int, np.integer)) else stamp
    msg.child_frame_id = child
    x, y, z, w = matrix_to_quaternion(T[:3, :3])
    tr, rot = msg.transform.translation, msg.transform.rotation
    tr.x, tr.y, tr.z = (float(v) for v in T[:3, 3])
    rot.x, rot.y, rot.z, rot.w = float(x), float(y), float(z), float(w)
    return msg


class TfListener:
    """Fills a transform buffer from /tf and /tf_static (transient local, so static transforms published before
    this node started still arrive). With tf2_ros installed and no buffer given, tf2_ros does the work."""

    def __init__(self, node: Any, buffer: TransformBuffer | None = None, cache_time_s: float = 10.0) -> None:
        self.node = node
        self._tf2_buffer = None
        self._tf2_listener = None
        self._subscriptions: list[Any] = []
        if buffer is None and tf2_ros is not None:  # pragma: no cover - needs a ROS distro
            from rclpy.duration import Duration

            self._tf2_buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_time_s), node=node)
            self._tf2_listener = tf2_ros.TransformListener(self._tf2_buffer, node)
            self.buffer = None
            return
        from tf2_msgs.msg import TFMessage

        self.buffer = buffer if buffer is not None else TransformBuffer(cache_time_s)
        self._subscriptions = [
            node.create_subscription(TFMessage, "/tf", lambda m: self._on_message(m, False), tf_qos()),
            node.create_subscription(TFMessage, "/tf_static", lambda m: self._on_message(m, True), tf_static_qos()),
        ]

    def _on_message(self, msg: Any, static: bool) -> None:
        for tr in msg.transforms:
            try:
                self.buffer.set_transform(transform_stamped_to_matrix(tr), tr.header.frame_id, tr.child_frame_id,
                                          stamp_to_ns(tr.header.stamp), static=static)
            except ValueError as exc:  # one bad transform must not stop the others
                self.node.get_logger().warning(f"ignoring transform: {exc}", throttle_duration_sec=5.0)

    def lookup(self, target: str, source: str, stamp_ns: int | None = None) -> np.ndarray:
        """T_target_source (4x4) at `stamp_ns` (None or 0: latest); LookupError naming the frame or the time."""
        if self._tf2_buffer is not None:  # pragma: no cover - needs a ROS distro
            from rclpy.time import Time as RclpyTime

            try:
                msg = self._tf2_buffer.lookup_transform(target, source, RclpyTime(nanoseconds=int(stamp_ns or 0)))
            except tf2_ros.TransformException as exc:
                raise LookupError(f"no transform {source!r} -> {target!r}: {exc}") from None
            return transform_stamped_to_matrix(msg)
        return self.buffer.lookup(target, source, stamp_ns)

    def can_transform(self, target: str, source: str, stamp_ns: int | None = None) -> bool:
        try:
            self.lookup(target, source, stamp_ns)
        except LookupError:
            return False
        return True

    def destroy(self) -> None:
        """Stop listening (the node itself stays)."""
        for sub in self._subscriptions:
            self.node.destroy_subscription(sub)
        self._subscriptions = []
        if self._tf2_listener is not None:  # pragma: no cover - needs a ROS distro
            self._tf2_listener.unregister()
            self._tf2_listener = None
