"""`depth-perception bench node`: each node end to end over DDS at 10 Hz and KITTI size (1242x375).

For every node kind the node runs in a process of its own and a driver in this one publishes a synthetic scene
(a textured plane 10 m ahead; a LiDAR grid on it for completion) stamped with the wall clock, and receives depth
and points (or only the outputs asked for: the node computes and publishes nothing without a subscriber, so a
depth-only subscriber never pays for the cloud).
Per processed frame: latency = arrival - input stamp; engine = DepthResult.timings_ms["total"]; queue = the time
the synchronized set waited for the busy worker (the engine is slower than 10 Hz: newer sets replace older ones);
overhead = latency - engine - queue, i.e. what the node and DDS add (conversions, sync, publishing, transport);
node_overhead = the node's own share (its processing time minus the engine's), without DDS transport.
DDS floor, the peer measured in the same run: a relay process that answers each input image at once with a
prebuilt depth image and cloud of the node's output sizes (no conversion, no engine), through the same DDS, QoS
and receiving code; its latency is what transport alone costs, so overhead - floor is what the node adds.
Memory: resident set size after warm-up and at the end. Target: overhead p50 <= 15 ms.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera
from ..ros.image import DEPTH_ENCODINGS
from ..ros.node_driver import (
    OUTPUTS,
    Driver,
    PlaneScene,
    RosSession,
    completion_messages,
    publish_set,
    stamp_of,
    stereo_messages,
    topic,
)

KINDS = ("stereo", "completion", "mono")  # the registry's kinds, slowest first (kinds.KIND_NAMES)
CAMERA = PinholeCamera(1242, 375, 720.0, 720.0, 620.5, 187.5)
SCENE = PlaneScene(CAMERA, baseline=0.5, depth=10.0)  # 36 px disparity
TARGET_OVERHEAD_MS = 15.0


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else math.nan


def engines_by_kind(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        kind, sep, path = item.partition("=")
        if not sep or kind not in KINDS or not path:
            raise ValueError(f"--engine takes KIND=PATH with KIND in {KINDS}, got {item!r}")
        out[kind] = path
    return out


def _messages(kind: str, stamp_ns: int, frame: str) -> dict[str, Any]:
    if kind == "stereo":
        return stereo_messages(SCENE, stamp_ns, frame)
    msgs = completion_messages(SCENE, stamp_ns, frame, "velo_link",
                               points=SCENE.lidar_points(rows=64, cols=512) if kind == "completion" else None)
    if kind == "mono":
        del msgs["points"]
    return msgs


def _restamp(msgs: dict[str, Any], stamp_ns: int) -> None:
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    for msg in msgs.values():
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec


def rss_mb_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return math.nan


def _serve_node(kind: str, engine: str, ns: str, decimation: int, encoding: str, conn: Any) -> None:
    """The node under test, in a process of its own (as in a deployment: no GIL shared with the driver)."""
    from ..nodes.runner import node_class
    from ..ros.node_driver import parameter_list

    session = RosSession()
    node = session.add(node_class(kind)(context=session.context, namespace=ns, parameter_overrides=parameter_list(
        {"engine": engine, "qos_reliability": "reliable", "cloud_decimation": int(decimation),
         "output_encoding": encoding})))
    try:
        ready = node.wait_until_ready(600)
        if ready and kind == "completion":
            deadline = time.monotonic() + 30
            while not node.tf.can_transform("camera_color_left", "velo_link") and time.monotonic() < deadline:
                time.sleep(0.05)
        _answer(conn, (ready, node.diagnostic_state()[1]), node.frame_log)
    finally:
        session.close()


def _answer(conn: Any, state: tuple[bool, str], frame_log: Any) -> None:
    """The served process's side of the pipe: its state once started, the frame log cleared on "clear" (after
    warm-up), and the log's rows on anything else (the end of the run)."""
    conn.send(state)
    while conn.recv() == "clear":
        frame_log.clear()
        conn.send("cleared")
    conn.send([tuple(r) for r in frame_log])


def _serve_relay(kind: str, ns: str, decimation: int, encoding: str, outputs: tuple[str, ...], conn: Any) -> None:
    """The DDS floor's stand-in for the node (`ros.node_driver.Relay`): each input image answered at once with
    the `outputs` (a depth image in `encoding`, a cloud) of the node's output sizes, built before the run (frame
    log rows as the node's, engine time 0)."""
    from ..ros.image import depth_to_image
    from ..ros.node_driver import Relay
    from ..ros.pointcloud import depth_to_pointcloud2

    session = RosSession()
    depth = np.full(CAMERA.shape, SCENE.depth, np.float32)
    prebuilt = {"depth": depth_to_image(depth, encoding),
                "depth/points": depth_to_pointcloud2(depth, CAMERA, rgb=np.zeros(CAMERA.shape + (3,), np.uint8),
                                                     decimation=decimation)}
    inputs = {name: type(msg) for name, msg in _messages(kind, 0, "camera").items()}
    relay = session.add(Relay(session.context, ns, inputs, "left/image_rect" if kind == "stereo" else "image_rect",
                              {name: prebuilt[name] for name in outputs}))
    try:
        _answer(conn, (True, "relay"), relay.frame_log)
    finally:
        session.close()


OUTPUT_TOPICS = ("depth", "depth/points")  # what the bench's subscriber can take, in the order the node publishes


def bench_kind(kind: str, engine: str, seconds: float, rate: float, decimation: int = 1,
               outputs: tuple[str, ...] = OUTPUT_TOPICS, encoding: str = "32FC1") -> dict[str, Any]:
    """The node of `kind` end to end, and the DDS floor (`_serve_relay`) on the same inputs right after it.
    Only `outputs` are subscribed (the node computes nothing that nobody subscribes to); latency is to the last
    of them, the cloud when it is subscribed. `encoding`: the depth image's (the node's output_encoding; 16UC1
    millimetres is half the bytes of 32FC1 metres)."""
    outputs = tuple(name for name in OUTPUT_TOPICS if name in outputs)
    if not outputs:
        raise ValueError(f"outputs must name at least one of {OUTPUT_TOPICS}")
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
    result = _drive(kind, seconds, rate, outputs, _serve_node,
                    (kind, engine, f"/bench/{kind}", decimation, encoding))
    if "p50_ms" not in result:
        return result
    floor = _drive(kind, min(seconds, 5.0), rate, outputs, _serve_relay,
                   (kind, f"/bench/{kind}", decimation, encoding, outputs))
    result.update({"engine": engine, "cloud_decimation": decimation, "outputs": list(outputs), "encoding": encoding,
                   "dds_floor_p50_ms": floor.get("p50_ms", math.nan),
                   "dds_floor_depth_p50_ms": floor.get("depth_p50_ms", math.nan)})
    result["node_added_p50_ms"] = result["overhead_p50_ms"] - result["dds_floor_p50_ms"]
    return result


def _drive(kind: str, seconds: float, rate: float, outputs: tuple[str, ...], serve: Any,
           serve_args: tuple[Any, ...]) -> dict[str, Any]:
    """Publish the kind's inputs at `rate` for `seconds` to `serve` (run in a process of its own) and time what
    comes back on `outputs` (depth, depth/points); latency is to the last of them."""
    import multiprocessing

    from ..ros.node_driver import T_CAM_LIDAR

    ns, frame = f"/bench/{kind}", "camera_color_left"
    offset = time.time_ns() / 1e9 - time.monotonic()  # arrivals are monotonic, stamps are wall clock
    mp = multiprocessing.get_context("spawn")
    conn, child_conn = mp.Pipe()
    proc = mp.Process(target=serve, args=(*serve_args, child_conn), daemon=True)
    with RosSession() as session:
        driver = session.add(Driver(session.context, name="bench_driver"))
        last = outputs[-1]
        for name in outputs:
            driver.subscribe(topic(ns, name), OUTPUTS[name], keep_data=False)
        driver.send_tf(T_CAM_LIDAR, frame, "velo_link", 0, static=True)
        proc.start()
        try:
            if not conn.poll(600):
                return {"skipped": "the node did not start in 600 s"}
            ready, state = conn.recv()
            if not ready:
                return {"skipped": f"engine did not load: {state}"}
            msgs = _messages(kind, time.time_ns(), frame)
            inputs = {topic(ns, k): type(m) for k, m in msgs.items()}
            for name, msg in msgs.items():  # reliable publishers, as a bag replays a recording
                driver._pubs[topic(ns, name)] = driver.create_publisher(type(msg), topic(ns, name), 10)
            if not driver.publisher_ready(list(inputs), inputs, timeout=30):
                return {"skipped": "DDS discovery did not complete"}
            # warm-up: one frame through before measuring
            _restamp(msgs, time.time_ns())
            publish_set(driver, ns, msgs)
            driver.wait_for(topic(ns, last), timeout=120)
            time.sleep(0.5)
            driver.clear()
            conn.send("clear")
            conn.recv()
            rss_start = peak = rss_mb_of(proc.pid)
            rss_series: list[tuple[float, float]] = [(0.0, rss_start)]  # (seconds, MB) about once a second
            sent: list[int] = []
            period = 1.0 / rate
            t_next = time.monotonic()
            t_end = t_next + seconds
            while time.monotonic() < t_end:
                stamp = time.time_ns()
                _restamp(msgs, stamp)
                publish_set(driver, ns, msgs)
                sent.append(stamp)
                rss_now = rss_mb_of(proc.pid)
                peak = max(peak, rss_now)
                elapsed = seconds - (t_end - time.monotonic())
                if elapsed - rss_series[-1][0] >= 1.0:
                    rss_series.append((round(elapsed, 2), rss_now))
                t_next += period
                time.sleep(max(0.0, t_next - time.monotonic()))
            driver.wait_for(topic(ns, last), lambda m: stamp_of(m) >= sent[-1], timeout=30)
            time.sleep(0.3)
            rss_end = rss_mb_of(proc.pid)
            conn.send("stop")
            log_rows = {int(r[0]): r for r in conn.recv()}
            arrivals: dict[str, dict[int, float]] = {name: {} for name in outputs}
            sizes: dict[str, int] = {}
            with driver._cond:
                for name in arrivals:
                    for t_mono, msg in driver.received[topic(ns, name)]:
                        arrivals[name][stamp_of(msg)] = t_mono
                        sizes[name] = msg.size
        finally:
            proc.join(20)
            if proc.is_alive():
                proc.kill()
    lat_depth, lat_points, overhead, engine_ms, queue_ms, node_ms = [], [], [], [], [], []
    for stamp, row in log_rows.items():
        if any(stamp not in arrivals[name] for name in outputs):
            continue
        _, eng, processing, complete_to_published = row
        l_depth = (arrivals["depth"][stamp] + offset - stamp / 1e9) * 1e3 if "depth" in arrivals else math.nan
        l_points = (arrivals[last][stamp] + offset - stamp / 1e9) * 1e3
        queue = max(0.0, complete_to_published - processing)
        lat_depth.append(l_depth)
        lat_points.append(l_points)
        engine_ms.append(eng)
        queue_ms.append(queue)
        node_ms.append(processing - eng)
        overhead.append(l_points - eng - queue)
    processed = len(lat_points)
    return {
        "frames_sent": len(sent), "frames_out": processed,
        "fps": processed / seconds if seconds > 0 else math.nan,
        "p50_ms": _pct(lat_points, 50), "p95_ms": _pct(lat_points, 95),
        "depth_p50_ms": _pct(lat_depth, 50), "depth_p95_ms": _pct(lat_depth, 95),
        "engine_p50_ms": _pct(engine_ms, 50), "queue_p50_ms": _pct(queue_ms, 50),
        "overhead_p50_ms": _pct(overhead, 50), "overhead_p95_ms": _pct(overhead, 95),
        "node_overhead_p50_ms": _pct(node_ms, 50),
        "message_mb": {name: size / 1e6 for name, size in sizes.items()},  # serialized, as DDS carries them
        "overhead_ok": bool(_pct(overhead, 50) <= TARGET_OVERHEAD_MS),
        # the node's process: its resident memory after warm-up, at the end, and the peak in between
        "rss_start_mb": rss_start, "rss_end_mb": rss_end, "rss_growth_mb": rss_end - rss_start, "peak_mb": peak,
        # a leak keeps growing; warm-up (allocator pools, caches) levels off: the second half tells them apart
        "rss_growth_second_half_mb": rss_end - _rss_at(rss_series, seconds / 2.0),
        "rss_series_mb": rss_series,
    }


def _rss_at(series: list[tuple[float, float]], t: float) -> float:
    """The sampled resident memory nearest after time t (the last sample if none is)."""
    return next((mb for s, mb in series if s >= t), series[-1][1])
