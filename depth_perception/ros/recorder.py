"""Record what the depth nodes publish (depth, confidence, points per stamp) while a bag is fed to them frame by frame.

`DepthRecorder` subscribes `/depth/<kind>/depth`, `.../depth/confidence` and `.../depth/points` and keeps numpy
arrays per header stamp, with the wall time each arrived. `step_bag` publishes a rosbag2 bag one frame at a
time (a frame = every message whose stamp is nearest to one stamp of a key topic, the left camera image by
default) and waits until every recorded node has published depth for that frame before the next, so nodes
slower than the bag's rate still see every frame; with `rate` it keeps the bag's timing (divided by rate)
instead. `record_bag` does the whole session in a private ROS context: build the nodes, spin them with the
recorder in a multi-threaded executor, step the bag, drain, shut down. The demo uses it.
"""
from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

from ..kinds import KIND_NAMES as KINDS
from .bag_files import open_bag
from .bag_messages import to_rclpy
from .bag_replay import publishers_for
from .dds import init_context
from .sync import stamp_to_ns

KEY_TOPIC = "/kitti/camera_color_left/image_raw"
OUTPUTS = {"depth": "depth", "confidence": "depth/confidence", "points": "depth/points"}


@dataclass
class RecordedOutput:
    """One node's outputs for one stamp; arrays are copies, owned here."""

    stamp_ns: int
    depth: np.ndarray | None = None
    confidence: np.ndarray | None = None
    points: np.ndarray | None = None  # (N, 3) float32, NaN kept (organized clouds keep N = H * W)
    frame_id: str = ""
    points_frame_id: str = ""
    received_s: dict[str, float] = field(default_factory=dict)  # output -> time.monotonic() at arrival


class DepthRecorder(Node):
    """Subscribes each kind's depth outputs under `namespace_format` and keeps them per stamp."""

    def __init__(self, kinds: Sequence[str] = KINDS, *, namespace_format: str = "/depth/{kind}",
                 outputs: Sequence[str] = tuple(OUTPUTS), node_name: str = "depth_recorder",
                 context: Context | None = None, queue_depth: int = 20) -> None:
        super().__init__(node_name, context=context)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"outputs must be among {tuple(OUTPUTS)}, got {unknown}")
        self.kinds = tuple(kinds)
        self.outputs = tuple(outputs)
        self.records: dict[str, dict[int, RecordedOutput]] = {k: {} for k in self.kinds}
        self.errors: list[str] = []
        self._cond = threading.Condition()
        # Outputs are reliable (DESIGN §4); a deep queue so a burst of outputs is never dropped here.
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=queue_depth, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.VOLATILE)
        self.topics: dict[str, dict[str, str]] = {}
        for kind in self.kinds:
            base = namespace_format.format(kind=kind).rstrip("/")
            self.topics[kind] = {}
            for what in self.outputs:
                topic = f"{base}/{OUTPUTS[what]}"
                self.topics[kind][what] = topic
                cls = PointCloud2 if what == "points" else Image
                self.create_subscription(cls, topic, lambda msg, k=kind, w=what: self._on_message(k, w, msg), qos)

    def _on_message(self, kind: str, what: str, msg: Any) -> None:
        received = time.monotonic()
        try:
            value = self._decode(what, msg)
        except Exception as exc:  # a bad message is recorded as an error, never kills the spin
            self.errors.append(f"{self.topics[kind][what]}: {type(exc).__name__}: {exc}")
            return
        stamp = stamp_to_ns(msg.header.stamp)
        with self._cond:
            rec = self.records[kind].setdefault(stamp, RecordedOutput(stamp))
            setattr(rec, what, value)
            if what == "points":
                rec.points_frame_id = msg.header.frame_id
            else:
                rec.frame_id = rec.frame_id or msg.header.frame_id
            rec.received_s[what] = received
            self._cond.notify_all()

    @staticmethod
    def _decode(what: str, msg: Any) -> np.ndarray:
        if what == "points":
            from .pointcloud import pointcloud2_to_xyz

            return np.array(pointcloud2_to_xyz(msg, skip_nans=False), dtype=np.float32, copy=True)
        from .image import depth_image_to_numpy, image_to_numpy

        if what == "depth":
            return np.array(depth_image_to_numpy(msg), dtype=np.float32, copy=True)
        return np.array(image_to_numpy(msg), dtype=np.float32, copy=True)

    def stamps(self, kind: str, what: str = "depth") -> list[int]:
        with self._cond:
            return sorted(s for s, r in self.records[kind].items() if getattr(r, what) is not None)

    def has_output(self, kind: str, lo_ns: int, hi_ns: int, what: Sequence[str] = ("depth",)) -> bool:
        """Whether `kind` has published every output in `what` for some stamp in [lo_ns, hi_ns)."""
        with self._cond:
            return self._has(kind, lo_ns, hi_ns, what)

    def _has(self, kind: str, lo_ns: int, hi_ns: int, what: Sequence[str]) -> bool:
        return any(lo_ns <= s < hi_ns and all(getattr(r, w) is not None for w in what)
                   for s, r in self.records[kind].items())

    def wait_for(self, kinds: Sequence[str], lo_ns: int, hi_ns: int, timeout_s: float,
                 what: Sequence[str] = ("depth",), stop_event: threading.Event | None = None) -> bool:
        """Block until every kind in `kinds` has its outputs for a stamp in [lo_ns, hi_ns); False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not all(self._has(k, lo_ns, hi_ns, what) for k in kinds):
                left = deadline - time.monotonic()
                if left <= 0 or (stop_event is not None and stop_event.is_set()):
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    def publisher_counts(self) -> dict[str, int]:
        """Publishers discovered per recorded topic (0 until DDS discovery has matched the node)."""
        return {t: self.count_publishers(t) for topics in self.topics.values() for t in topics.values()}


# ------------------------------------------------------------------------------------------------ stepping


@dataclass
class FrameTiming:
    """Frame windows of a bag: frame k owns stamps nearest to key_stamps[k]."""

    key_stamps: list[int]

    def frame_of(self, stamp_ns: int) -> int:
        """Index of the key stamp nearest to stamp_ns."""
        s = self.key_stamps
        k = bisect.bisect_left(s, stamp_ns)
        if k == 0:
            return 0
        if k == len(s):
            return len(s) - 1
        return k if s[k] - stamp_ns < stamp_ns - s[k - 1] else k - 1

    def window(self, k: int) -> tuple[int, int]:
        """[lo, hi) of stamps that belong to frame k (midpoints to the neighbouring key stamps)."""
        s = self.key_stamps
        lo = (s[k - 1] + s[k]) // 2 if k > 0 else s[k] - 10**12
        hi = (s[k] + s[k + 1]) // 2 if k + 1 < len(s) else s[k] + 10**12
        return lo, hi


@dataclass
class StepStats:
    frames: int = 0
    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> why
    published_s: dict[int, float] = field(default_factory=dict)  # frame -> monotonic time its last message went out
    topic_published_s: dict[int, dict[str, float]] = field(default_factory=dict)  # frame -> topic -> the same
    timed_out: list[int] = field(default_factory=list)  # frames whose outputs did not all arrive in time
    given_up: list[str] = field(default_factory=list)  # kinds no longer awaited: they never published
    elapsed_s: float = 0.0


def key_stamps(bag_path: str | Path, key_topic: str = KEY_TOPIC) -> list[int]:
    """The bag's (recorded) stamps of `key_topic`, sorted; ValueError if the bag lacks the topic."""
    with open_bag(bag_path) as reader:
        conns = [c for c in reader.connections if c.topic == key_topic]
        if not conns:
            raise ValueError(f"bag {bag_path} has no topic {key_topic}")
        return sorted(int(stamp) for _, stamp, _ in reader.messages(connections=conns))


def wait_for_discovery(player: Node, recorder: DepthRecorder, input_topics: Sequence[str], timeout_s: float,
                       stop_event: threading.Event | None = None) -> bool:
    """Until the recorder sees a publisher on each output topic and each input topic has a subscriber."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (stop_event and stop_event.is_set()):
        outputs_ready = all(n > 0 for n in recorder.publisher_counts().values())
        inputs_ready = all(player.count_subscribers(t) > 0 for t in input_topics)
        if outputs_ready and inputs_ready:
            return True
        time.sleep(0.05)
    return False


def settle_subscriptions(player: Node, topics: Sequence[str], quiet_s: float = 0.5, timeout_s: float = 5.0,
                         stop_event: threading.Event | None = None) -> dict[str, int]:
    """Wait until the subscriber counts of `topics` stop changing for quiet_s (discovery has settled)."""
    deadline = time.monotonic() + timeout_s
    counts = {t: player.count_subscribers(t) for t in topics}
    last_change = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_change < quiet_s:
        if stop_event is not None and stop_event.is_set():
            break
        time.sleep(0.05)
        now = {t: player.count_subscribers(t) for t in topics}
        if now != counts:
            counts, last_change = now, time.monotonic()
    return counts


def step_bag(
    player: Node,
    bag_path: str | Path,
    recorder: DepthRecorder,
    *,
    kinds: Sequence[str] | None = None,
    key_topic: str = KEY_TOPIC,
    rate: float | None = None,
    frame_timeout_s: float = 60.0,
    discovery_timeout_s: float = 15.0,
    give_up_after: int = 2,
    wait_outputs: Sequence[str] = ("depth",),
    stop_event: threading.Event | None = None,
    on_frame: Callable[[int, int, bool], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[StepStats, FrameTiming]:
    """Publish the bag from `player`, frame by frame, waiting for `kinds`' outputs after each (rate=None).

    With `rate`, messages keep the bag's timing divided by rate and nothing is awaited. on_frame(k, n, ok) is called
    after each frame; ok is False when the outputs did not arrive within frame_timeout_s. A kind that has
    never published anything after `give_up_after` timed-out frames is no longer awaited.
    """
    if rate is not None and not rate > 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    kinds = tuple(recorder.kinds if kinds is None else kinds)
    stop_event = stop_event or threading.Event()
    say = log or (lambda _msg: None)
    timing = FrameTiming(key_stamps(bag_path, key_topic))
    n = len(timing.key_stamps)
    stats = StepStats(frames=n)
    pubs: dict[int, tuple[Any, type, bool]] = {}
    by_topic: dict[str, Any] = {}
    try:
        with open_bag(bag_path) as reader:
            pubs = publishers_for(player, reader.connections, by_topic, stats.skipped, say)
            deadline = time.monotonic() + discovery_timeout_s
            while player.count_subscribers(key_topic) == 0 and time.monotonic() < deadline:
                if stop_event.wait(0.05):
                    break
            if player.count_subscribers(key_topic) == 0:
                say(f"no subscriber for {key_topic} after {discovery_timeout_s:.0f} s; publishing anyway")
            settle_subscriptions(player, list(by_topic), stop_event=stop_event)
            # Every topic is published, also those without subscribers (cheap): a node whose subscription is
            # matched late must not lose a topic for the whole run.
            connections = [c for c in reader.connections if c.id in pubs]
            start = time.monotonic()
            current = 0

            awaited = list(kinds)
            misses = {c: 0 for c in kinds}

            def finish(k: int) -> None:
                stats.published_s.setdefault(k, time.monotonic())
                ok = True
                if rate is None:
                    lo, hi = timing.window(k)
                    ok = recorder.wait_for(awaited, lo, hi, frame_timeout_s, wait_outputs, stop_event)
                    if not ok and not stop_event.is_set():
                        stats.timed_out.append(k)
                        silent = [c for c in awaited if not recorder.has_output(c, lo, hi, wait_outputs)]
                        say(f"frame {k}: no output from {silent} within {frame_timeout_s:.0f} s")
                        for c in silent:
                            misses[c] += 1
                            # A node that never answered (an engine that failed to load, say) is not awaited
                            # again: one timeout per frame would stall the replay for nothing.
                            if misses[c] >= give_up_after and not recorder.stamps(c):
                                awaited.remove(c)
                                stats.given_up.append(c)
                                say(f"{c}: no output for {misses[c]} frames; no longer waiting for it")
                    ok = ok and len(awaited) == len(kinds)
                if on_frame:
                    on_frame(k, n, ok)

            t0 = timing.key_stamps[0]
            for conn, stamp, raw in reader.messages(connections=connections):
                if stop_event.is_set():
                    break
                k = timing.frame_of(stamp)
                while k > current:
                    finish(current)
                    current += 1
                if rate is not None:
                    target = start + max(stamp - t0, 0) / 1e9 / rate
                    delay = target - time.monotonic()
                    if delay > 0 and stop_event.wait(delay):
                        break
                pub, cls, _ = pubs[conn.id]
                pub.publish(to_rclpy(reader.deserialize(raw, conn.msgtype), cls))
                stats.published[conn.topic] = stats.published.get(conn.topic, 0) + 1
                now = time.monotonic()
                stats.published_s[k] = now
                stats.topic_published_s.setdefault(k, {})[conn.topic] = now
            while current < n and not stop_event.is_set():
                finish(current)
                current += 1
            stats.elapsed_s = time.monotonic() - start
    finally:
        for pub in by_topic.values():
            player.destroy_publisher(pub)
    return stats, timing


# ------------------------------------------------------------------------------------------------ sessions


@dataclass
class Recording:
    """What the nodes published for a bag, per kind and frame index, with latency from the frame's last input."""

    kinds: tuple[str, ...]
    frame_stamps: list[int]
    outputs: dict[str, dict[int, RecordedOutput]]
    latency_ms: dict[str, dict[int, float]]
    stats: StepStats
    errors: list[str] = field(default_factory=list)
    node_info: dict[str, Any] = field(default_factory=dict)

    def arrays(self, kind: str, what: str = "depth") -> tuple[list[int], np.ndarray]:
        """(frame indices, stacked arrays) of one output of one kind, for frames that have it."""
        frames = sorted(k for k, r in self.outputs[kind].items() if getattr(r, what) is not None)
        if not frames:
            return [], np.zeros((0,), np.float32)
        return frames, np.stack([getattr(self.outputs[kind][k], what) for k in frames])


def _by_frame(recorder: DepthRecorder, kind: str, timing: FrameTiming) -> dict[int, RecordedOutput]:
    out: dict[int, RecordedOutput] = {}
    with recorder._cond:
        records = list(recorder.records[kind].values())
    for rec in sorted(records, key=lambda r: r.stamp_ns):
        k = timing.frame_of(rec.stamp_ns)
        lo, hi = timing.window(k)
        if lo <= rec.stamp_ns < hi:
            out.setdefault(k, rec)  # the first output of a frame; a node publishes each frame once
    return out


IGNORED_INPUTS = ("/tf", "/tf_static", "/parameter_events", "/clock")


def node_inputs(nodes: Sequence[Node], recorder: DepthRecorder) -> dict[str, set[str]]:
    """kind -> the topics its node subscribes (TF and parameter events aside): the node whose depth topic the
    recorder subscribes is the node of that kind."""
    out: dict[str, set[str]] = {}
    for node in nodes:
        published = {t for t, _ in node.get_publisher_names_and_types_by_node(node.get_name(), node.get_namespace())}
        subscribed = {t for t, _ in node.get_subscriber_names_and_types_by_node(node.get_name(),
                                                                                   node.get_namespace())}
        for kind, topics in recorder.topics.items():
            if topics.get("depth") in published:
                out.setdefault(kind, set()).update(t for t in subscribed if t not in IGNORED_INPUTS)
    return out


def inputs_published_s(stats: StepStats, frame: int, topics: set[str] | None) -> float:
    """When the last of `topics` went out for a frame (the last message of the frame when not known): where a
    node's latency starts, as a sensor's stamp would on a vehicle."""
    sent = stats.topic_published_s.get(frame, {})
    times = [sent[t] for t in topics or () if t in sent]
    return max(times) if times else stats.published_s[frame]


def record_bag(
    bag_path: str | Path,
    make_nodes: Callable[[Context], Sequence[Node]],
    kinds: Sequence[str],
    *,
    rate: float | None = None,
    frame_timeout_s: float = 60.0,
    drain_s: float = 5.0,
    discovery_timeout_s: float = 20.0,
    stop_event: threading.Event | None = None,
    on_frame: Callable[[int, int, bool], None] | None = None,
    log: Callable[[str], None] | None = None,
    node_info: Callable[[Node], Any] | None = None,
) -> Recording:
    """Build the nodes in a private context, feed them the bag frame by frame, record their outputs, shut down.

    node_info(node) is asked of every node before it is destroyed (e.g. its own timing statistics); the
    answers land in Recording.node_info under the node names.
    """
    say = log or (lambda _msg: None)
    stop_event = stop_event or threading.Event()
    kinds = tuple(kinds)
    context = init_context()
    nodes: list[Node] = []
    executor = None
    recorder = player = None
    thread = None
    try:
        nodes = list(make_nodes(context))
        recorder = DepthRecorder(kinds, context=context)
        player = Node("depth_perception_demo_player", context=context)
        executor = MultiThreadedExecutor(num_threads=max(2, len(nodes) + 1), context=context)
        for node in [*nodes, recorder]:
            executor.add_node(node)
        thread = threading.Thread(target=executor.spin, name="depth_nodes", daemon=True)
        thread.start()
        if not wait_for_discovery(player, recorder, [], discovery_timeout_s, stop_event):
            missing = [t for t, c in recorder.publisher_counts().items() if c == 0]
            say(f"no publisher discovered for {', '.join(missing)} after {discovery_timeout_s:.0f} s")
        stats, timing = step_bag(player, bag_path, recorder, kinds=kinds, rate=rate, frame_timeout_s=frame_timeout_s,
                                 discovery_timeout_s=discovery_timeout_s, stop_event=stop_event, on_frame=on_frame,
                                 log=say)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not stop_event.is_set():
            if all(len(_by_frame(recorder, k, timing)) >= stats.frames for k in kinds):
                break
            time.sleep(0.1)
        time.sleep(0.3)  # the last frame's confidence and points follow its depth
        outputs = {k: _by_frame(recorder, k, timing) for k in kinds}
        inputs = node_inputs(nodes, recorder)
        latency = {k: {i: (r.received_s["depth"] - inputs_published_s(stats, i, inputs.get(k))) * 1e3
                       for i, r in outputs[k].items() if "depth" in r.received_s and i in stats.published_s}
                   for k in kinds}
        info = {n.get_name(): node_info(n) for n in nodes} if node_info else {}
        return Recording(kinds, timing.key_stamps, outputs, latency, stats, list(recorder.errors), info)
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if thread is not None:
            thread.join(5.0)
        for node in [*nodes, recorder, player]:
            if node is not None:
                try:
                    node.destroy_node()
                except Exception:  # shutting down: a node that fails to go must not hide the result
                    pass
        rclpy.try_shutdown(context=context)


__all__ = [
    "DepthRecorder", "FrameTiming", "KEY_TOPIC", "Recording", "RecordedOutput", "StepStats", "init_context",
    "key_stamps", "record_bag", "settle_subscriptions", "step_bag", "stamp_to_ns", "wait_for_discovery",
]
