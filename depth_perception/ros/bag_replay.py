"""Replay a rosbag2 bag (mcap or sqlite3, read with rosbags) through rclpy with the original timing.

`replay_bag(node_or_context, bag_path, ...)` blocks until the bag ends (or `stop_event` is set) and serves
`depth-perception play`, `depth-perception run --bag` and the demo. Timing is relative to the first replayed
message and divided by `rate`; `/clock` (rosgraph_msgs/Clock) is published for use_sim_time when asked.
Topics recorded as transient-local (/tf_static) are republished transient-local, so late subscribers still
get them; messages of such topics before `start_offset` are published at once rather than dropped. A bag that
recorded no QoS (a single MCAP file from another tool) gets `/tf_static` as tf2's static broadcaster offers it:
reliable and transient-local; otherwise the nodes' transient-local subscription sees an incompatible offer.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from .bag_files import open_bag
from .bag_messages import UnknownMessageType, rclpy_message_class, to_rclpy

QOS_CHOICES = ("reliable", "best_effort", "sensor_data")
CLOCK_HZ = 40.0  # as `ros2 bag play --clock`


@dataclass
class ReplayStats:
    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why (names the unknown type)
    loops: int = 0
    clock_messages: int = 0
    elapsed_s: float = 0.0  # wall time of the playback itself (after waiting for subscribers)


TF_STATIC = "/tf_static"


def qos_for(recorded: Sequence[Any], override: str | None, topic: str = "") -> QoSProfile:
    """The publisher QoS: an override by name, else reliability and durability as recorded (depth 10); with
    nothing recorded, /tf_static is reliable and transient-local (tf2's static broadcaster) and the rest reliable."""
    if override is not None:
        if override not in QOS_CHOICES:
            raise ValueError(f"qos must be one of {QOS_CHOICES}, got {override!r}")
        if override == "sensor_data":
            return qos_profile_sensor_data
        reliability = ReliabilityPolicy.RELIABLE if override == "reliable" else ReliabilityPolicy.BEST_EFFORT
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=reliability)
    transient = _is_transient(recorded, topic)
    best_effort = bool(recorded) and all(getattr(q.reliability, "name", "") == "BEST_EFFORT" for q in recorded)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=10,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if transient else DurabilityPolicy.VOLATILE,
    )


def publishers_for(node: Node, connections: Sequence[Any], by_topic: dict[str, Any], skipped: dict[str, str],
                   say: Callable[[str], None], wanted: set[str] | None = None, qos: str | None = None,
                   ) -> dict[int, tuple[Any, type, bool]]:
    """connection id -> (publisher, rclpy message class, transient-local?) for a bag's connections, one publisher
    per topic (in `by_topic`) with the QoS the recording offered (or `qos`); topics of unknown types are noted in
    `skipped` and left out."""
    pubs: dict[int, tuple[Any, type, bool]] = {}
    for conn in connections:
        if wanted is not None and conn.topic not in wanted:
            continue
        try:
            cls = rclpy_message_class(conn.msgtype)
        except UnknownMessageType as exc:
            skipped[conn.topic] = str(exc)
            say(f"skipping topic {conn.topic}: {exc}")
            continue
        recorded = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
        if conn.topic not in by_topic:
            by_topic[conn.topic] = node.create_publisher(cls, conn.topic, qos_for(recorded, qos, conn.topic))
        pubs[conn.id] = (by_topic[conn.topic], cls, _is_transient(recorded, conn.topic))
    return pubs


def _is_transient(recorded: Sequence[Any], topic: str) -> bool:
    if not recorded:
        return topic == TF_STATIC
    return any(getattr(q.durability, "name", "") == "TRANSIENT_LOCAL" for q in recorded)


def _time_msg(ns: int):
    from builtin_interfaces.msg import Time

    sec, nsec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nsec)


def replay_bag(
    node_or_context: Node | Context | None,
    bag_path: str | Path,
    *,
    rate: float = 1.0,
    loop: bool = False,
    start_offset: float = 0.0,
    topics: Sequence[str] | None = None,
    qos: str | None = None,
    clock: bool = False,
    stop_event: threading.Event | None = None,
    raw: bool = False,
    wait_for_subscribers: float = 0.0,
    log: Callable[[str], None] | None = None,
) -> ReplayStats:
    """Publish the bag's messages with their recorded timing; returns what was published and skipped.

    node_or_context: a Node to publish from, or a Context (None: the default one) in which a node named
    `depth_perception_player` is made and destroyed. raw=True publishes the recorded CDR bytes unchanged
    (fastest; needs the installed message definitions to equal the recorded ones); by default messages are
    deserialized with the bag's own definitions and converted field by field. wait_for_subscribers: wait up to
    this many seconds, before playing, for every topic to have a subscriber (DDS discovery takes a moment).
    """
    if not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    if start_offset < 0:
        raise ValueError(f"start_offset must be >= 0 s, got {start_offset}")
    path = Path(bag_path)
    stop_event = stop_event or threading.Event()
    say = log or (lambda _msg: None)
    own_node = not isinstance(node_or_context, Node)
    node = Node("depth_perception_player", context=node_or_context) if own_node else node_or_context
    stats = ReplayStats()
    by_topic: dict[str, Any] = {}
    clock_pub = None
    try:
        with open_bag(path) as reader:
            wanted = set(topics) if topics else None
            if wanted:
                missing = sorted(wanted - {c.topic for c in reader.connections})
                if missing:
                    say(f"topics not in the bag: {', '.join(missing)}")
            pubs = publishers_for(node, reader.connections, by_topic, stats.skipped, say, wanted, qos)
            connections = [c for c in reader.connections if c.id in pubs]
            if clock:
                from rosgraph_msgs.msg import Clock

                clock_pub = node.create_publisher(Clock, "/clock", QoSProfile(depth=10))

            def publish_clock(bag_ns: int) -> None:
                if clock_pub is not None:
                    from rosgraph_msgs.msg import Clock

                    clock_pub.publish(Clock(clock=_time_msg(bag_ns)))
                    stats.clock_messages += 1

            if not connections:
                say("nothing to replay")
                return stats
            deadline = time.monotonic() + wait_for_subscribers
            while time.monotonic() < deadline and not stop_event.is_set():
                if all(p.get_subscription_count() > 0 for p in by_topic.values()):
                    break
                stop_event.wait(0.02)
            bag_start = reader.start_time + int(round(start_offset * 1e9))
            play_start = time.monotonic()
            while not stop_event.is_set():
                wall_start = time.monotonic()
                last_clock = 0.0
                for conn, stamp, rawdata in reader.messages(connections=connections):
                    if stop_event.is_set():
                        break
                    pub, cls, transient = pubs[conn.id]
                    if stamp < bag_start and not transient:
                        continue
                    target = wall_start + max(stamp - bag_start, 0) / 1e9 / rate
                    while True:  # sleep until the message is due, ticking /clock meanwhile
                        now = time.monotonic()
                        if now >= target or stop_event.is_set():
                            break
                        step = min(target - now, 1.0 / CLOCK_HZ) if clock_pub is not None else target - now
                        if stop_event.wait(step):
                            break
                        if clock_pub is not None and time.monotonic() - last_clock >= 1.0 / CLOCK_HZ:
                            elapsed = (time.monotonic() - wall_start) * rate
                            publish_clock(min(bag_start + int(elapsed * 1e9), max(stamp, bag_start)))
                            last_clock = time.monotonic()
                    if stop_event.is_set():
                        break
                    publish_clock(max(stamp, bag_start))
                    last_clock = time.monotonic()
                    if raw:
                        pub.publish(bytes(rawdata))
                    else:
                        pub.publish(to_rclpy(reader.deserialize(rawdata, conn.msgtype), cls))
                    stats.published[conn.topic] = stats.published.get(conn.topic, 0) + 1
                else:
                    stats.loops += 1
                    if loop:
                        continue
                break
            stats.elapsed_s = time.monotonic() - play_start
    finally:
        if own_node:
            node.destroy_node()
        else:
            for pub in [*by_topic.values(), clock_pub]:
                if pub is not None:
                    node.destroy_publisher(pub)
    return stats


def play_standalone(bag_path: str | Path, stop_event: threading.Event, **kwargs: Any) -> ReplayStats:
    """Initialize a ROS context of our own (no rclpy signal handlers: the caller owns SIGINT), replay, shut down."""
    import rclpy

    from .dds import init_context

    context = init_context()
    try:
        return replay_bag(context, bag_path, stop_event=stop_event, **kwargs)
    finally:
        rclpy.try_shutdown(context=context)


def spin_replay(bag_path: str | Path, stop_event: threading.Event, context: Context | None = None,
                **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run replay_bag in a daemon thread (its own node in `context`); the dict gets 'stats' or 'error'."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["stats"] = replay_bag(context, bag_path, stop_event=stop_event, **kwargs)
        except Exception as exc:  # handed to the caller
            result["error"] = exc

    thread = threading.Thread(target=target, name="bag_replay", daemon=True)
    thread.start()
    return thread, result


__all__ = ["QOS_CHOICES", "ReplayStats", "play_standalone", "qos_for", "replay_bag", "spin_replay"]
