"""Drive the depth nodes in-process (node tests, `bench node`): a private ROS context spun in a thread, and a
driver node that publishes synthetic camera / LiDAR / TF inputs, collects outputs and sets remote parameters.

The scenes are exact: a fronto-parallel textured plane at a known depth, seen by a rectified stereo pair whose
disparity is a whole number of pixels, and a LiDAR grid on the same plane.
"""
from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from ..geometry.camera import PinholeCamera
from ..geometry.se3 import invert_transform, transform_points
from .camera_info import model_to_camera_info, pinhole_model
from .image import numpy_to_image
from .pointcloud import XYZ_DTYPE, array_to_pointcloud2
from .qos import output_qos, sensor_qos, tf_qos, tf_static_qos
from .recorder import init_context
from .tf import matrix_to_transform_stamped, ns_to_stamp

# Velodyne as mounted in KITTI (x forward, y left, z up) relative to the camera optical frame (z forward, x right,
# y down), 0.3 m above and 0.27 m behind it.
T_CAM_LIDAR = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27], [0.0, 0.0, 0.0, 1.0]])


def texture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """uint8 (height, width) texture with detail at several scales (what a matcher needs)."""
    rng = np.random.default_rng(seed)
    t = np.zeros((height, width), np.float32)
    for s in (2, 8, 32):
        n = rng.random((height // s + 2, width // s + 2)).astype(np.float32)
        t += cv2.resize(n, (width + 2 * s, height + 2 * s), interpolation=cv2.INTER_CUBIC)[:height, :width]
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (t * 255).astype(np.uint8)


@dataclass
class PlaneScene:
    """A fronto-parallel textured plane `depth` metres in front of a rectified stereo pair (left = reference)."""

    camera: PinholeCamera
    baseline: float
    depth: float
    seed: int = 0
    right_cx_offset: int = 0  # cx_right - cx_left in pixels (Middlebury's doffs); a real rig's rectification leaves one

    @property
    def image_shift(self) -> int:
        """right(u) = left(u + image_shift): the disparity less the principal-point offset."""
        shift = self.disparity - self.right_cx_offset
        if shift < 0:
            raise ValueError(f"right_cx_offset {self.right_cx_offset} exceeds the disparity {self.disparity}")
        return shift

    @property
    def disparity(self) -> int:
        d = self.camera.fx * self.baseline / self.depth
        if abs(d - round(d)) > 1e-6:
            raise ValueError(f"fx * baseline / depth = {d} px must be a whole number for an exact scene")
        return int(round(d))

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """(left, right) uint8 RGB: right(u) = left(u + disparity), as a plane at `depth` makes them."""
        w, h, d = self.camera.width, self.camera.height, self.image_shift
        tex = texture(w + d, h, self.seed)
        left, right = tex[:, :w], tex[:, d:d + w]
        return np.repeat(left[..., None], 3, 2), np.repeat(right[..., None], 3, 2)

    def camera_infos(self, header: Header) -> tuple[CameraInfo, CameraInfo]:
        """Left and right CameraInfo; the right P carries Tx = -fx * baseline and its own cx."""
        left = pinhole_model(self.camera)
        P = left.P.copy()
        P[0, 3] = -self.camera.fx * self.baseline
        P[0, 2] += self.right_cx_offset
        K = left.K.copy()
        K[0, 2] += self.right_cx_offset
        right = type(left)(left.width, left.height, K=K, D=left.D, R=left.R, P=P)
        return model_to_camera_info(left, header), model_to_camera_info(right, header)

    def lidar_points(self, rows: int = 16, cols: int = 64, T_cam_lidar: np.ndarray = T_CAM_LIDAR,
                     ) -> np.ndarray:
        """float32 (rows*cols, 3) points on the plane inside the camera's view, in the LiDAR frame."""
        u = np.linspace(2, self.camera.width - 3, cols)
        v = np.linspace(2, self.camera.height - 3, rows)
        uu, vv = np.meshgrid(u, v)
        cam = self.camera
        pts = np.stack([(uu - cam.cx) / cam.fx * self.depth, (vv - cam.cy) / cam.fy * self.depth,
                        np.full_like(uu, self.depth)], -1).reshape(-1, 3)
        return transform_points(invert_transform(T_cam_lidar), pts).astype(np.float32)


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str, encoding: str = "rgb8") -> Image:
    return numpy_to_image(np.ascontiguousarray(rgb), encoding, header(stamp_ns, frame_id))


def cloud_msg(points: np.ndarray, stamp_ns: int, frame_id: str) -> PointCloud2:
    arr = np.zeros(len(points), XYZ_DTYPE)
    if len(points):
        arr["x"], arr["y"], arr["z"] = points[:, 0], points[:, 1], points[:, 2]
    return array_to_pointcloud2(arr, header(stamp_ns, frame_id))


def parameter_list(values: Mapping[str, Any]) -> list[Parameter]:
    """`parameter_overrides` for a node constructor from a plain mapping."""
    return [Parameter(name, value=value) for name, value in values.items()]


class RosSession:
    """A private, initialized context with a multi-threaded executor spinning in a daemon thread."""

    def __init__(self, threads: int = 4) -> None:
        self.context: Context = init_context()
        self.executor = MultiThreadedExecutor(num_threads=threads, context=self.context)
        self.nodes: list[Node] = []
        self._thread = threading.Thread(target=self._spin, name="ros_session", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception:  # shutdown races end the spin; nothing to report
            pass

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=5.0)
        self._thread.join(timeout=5.0)
        for node in reversed(self.nodes):
            node.destroy_node()
        self.nodes = []
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> RosSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Driver(Node):
    """Publishes inputs and TF, keeps every output it subscribes to, sets other nodes' parameters."""

    def __init__(self, context: Context, name: str = "depth_test_driver") -> None:
        super().__init__(name, context=context)
        self._pubs: dict[str, Any] = {}
        self._cond = threading.Condition()
        self.received: dict[str, list[tuple[float, Any]]] = {}
        self._param_clients: dict[str, Any] = {}
        from tf2_msgs.msg import TFMessage

        self._tf = self.create_publisher(TFMessage, "/tf", tf_qos())
        self._tf_static = self.create_publisher(TFMessage, "/tf_static", tf_static_qos())

    def publish(self, topic: str, msg: Any, reliability: str = "best_effort") -> None:
        pub = self._pubs.get(topic)
        if pub is None:
            pub = self._pubs[topic] = self.create_publisher(type(msg), topic, sensor_qos(reliability, 10))
        pub.publish(msg)

    def publisher_ready(self, topics: Iterable[str], msg_types: Mapping[str, type], timeout: float = 10.0) -> bool:
        """Create the publishers and wait until each has a subscriber (DDS discovery)."""
        for topic in topics:
            if topic not in self._pubs:
                self._pubs[topic] = self.create_publisher(msg_types[topic], topic, sensor_qos("best_effort", 10))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._pubs[t].get_subscription_count() > 0 for t in topics):
                return True
            time.sleep(0.02)
        return False

    def send_tf(self, T: np.ndarray, parent: str, child: str, stamp_ns: int, static: bool = False) -> None:
        from tf2_msgs.msg import TFMessage

        msg = TFMessage(transforms=[matrix_to_transform_stamped(T, parent, child, int(stamp_ns))])
        (self._tf_static if static else self._tf).publish(msg)

    def subscribe(self, topic: str, msg_type: type, qos: Any = None, keep_data: bool = True) -> None:
        """Keep (arrival time, message) of every message on `topic`; keep_data=False keeps only the header and the
        serialized size in bytes (long runs of large messages: the bench), read from the serialized message, as a
        C++ subscriber that looks at the header would: the Python copy of a 7.5 MB cloud's data is not part of what
        a node costs."""
        self.received.setdefault(topic, [])

        def keep(msg: Any) -> None:
            kept = msg if keep_data else SimpleNamespace(header=serialized_header(msg), size=len(msg))
            with self._cond:
                self.received[topic].append((time.monotonic(), kept))
                self._cond.notify_all()

        self.create_subscription(msg_type, topic, keep, qos or output_qos(10), raw=not keep_data)

    def messages(self, topic: str) -> list[Any]:
        with self._cond:
            return [m for _, m in self.received.get(topic, [])]

    def clear(self) -> None:
        with self._cond:
            for values in self.received.values():
                values.clear()

    def wait_for(self, topic: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 10.0,
                 ) -> Any | None:
        """The first received message on `topic` that satisfies `predicate`; None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, msg in self.received.get(topic, []):
                    if predicate is None or predicate(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.1))

    def set_remote_parameters(self, node_fqn: str, values: Mapping[str, Any], timeout: float = 10.0) -> list[Any]:
        """SetParameters on another node through its parameter service; the SetParametersResult list."""
        from rclpy.parameter_client import AsyncParameterClient

        client = self._param_clients.get(node_fqn)
        if client is None:
            client = self._param_clients[node_fqn] = AsyncParameterClient(self, node_fqn)
        if not client.wait_for_services(timeout_sec=timeout):
            raise TimeoutError(f"parameter services of {node_fqn} not available after {timeout} s")
        future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"set_parameters on {node_fqn} got no answer in {timeout} s")
            time.sleep(0.01)
        return list(future.result().results)

    def get_remote_parameters(self, node_fqn: str, names: list[str], timeout: float = 10.0) -> dict[str, Any]:
        from rclpy.parameter import parameter_value_to_python
        from rclpy.parameter_client import AsyncParameterClient

        client = self._param_clients.get(node_fqn)
        if client is None:
            client = self._param_clients[node_fqn] = AsyncParameterClient(self, node_fqn)
        if not client.wait_for_services(timeout_sec=timeout):
            raise TimeoutError(f"parameter services of {node_fqn} not available after {timeout} s")
        future = client.get_parameters(names)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"get_parameters on {node_fqn} got no answer in {timeout} s")
            time.sleep(0.01)
        return {n: parameter_value_to_python(v) for n, v in zip(names, future.result().values, strict=True)}


STEREO_INPUTS = {"left/image_rect": Image, "right/image_rect": Image, "left/camera_info": CameraInfo,
                 "right/camera_info": CameraInfo}
COMPLETION_INPUTS = {"image_rect": Image, "camera_info": CameraInfo, "points": PointCloud2}
MONO_INPUTS = {"image_rect": Image, "camera_info": CameraInfo}
OUTPUTS = {"depth": Image, "depth/confidence": Image, "depth/colorized": Image, "depth/camera_info": CameraInfo,
           "depth/points": PointCloud2}


def topic(namespace: str, name: str) -> str:
    return name if name.startswith("/") else f"{namespace.rstrip('/')}/{name}"


def stereo_messages(scene: PlaneScene, stamp_ns: int, frame_id: str, shift_px: int = 0,
                    ) -> dict[str, Any]:
    """One synchronized stereo set (relative topic -> message); `shift_px` slides the rig sideways along the
    plane (the texture moves left by that many pixels), for multi-view sequences."""
    w, h, d = scene.camera.width, scene.camera.height, scene.image_shift
    tex = texture(w + d + shift_px, h, scene.seed)
    left, right = tex[:, shift_px:shift_px + w], tex[:, shift_px + d:shift_px + d + w]
    hdr = header(stamp_ns, frame_id)
    left_info, right_info = scene.camera_infos(hdr)
    return {
        "left/image_rect": image_msg(np.repeat(left[..., None], 3, 2), stamp_ns, frame_id),
        "right/image_rect": image_msg(np.repeat(right[..., None], 3, 2), stamp_ns, frame_id),
        "left/camera_info": left_info, "right/camera_info": right_info,
    }


def completion_messages(scene: PlaneScene, stamp_ns: int, frame_id: str, lidar_frame: str,
                        points: np.ndarray | None = None) -> dict[str, Any]:
    """One completion set: the left image, its camera_info and a LiDAR grid on the plane (in `lidar_frame`)."""
    left, _ = scene.images()
    hdr = header(stamp_ns, frame_id)
    info, _ = scene.camera_infos(hdr)
    pts = scene.lidar_points() if points is None else points
    return {"image_rect": image_msg(left, stamp_ns, frame_id), "camera_info": info,
            "points": cloud_msg(pts, stamp_ns, lidar_frame)}


def publish_set(driver: Driver, namespace: str, messages: Mapping[str, Any]) -> None:
    for name, msg in messages.items():
        driver.publish(topic(namespace, name), msg)


class Relay(Node):
    """Answers each message on `trigger` at once with prebuilt `outputs` (relative name -> message) carrying its
    header: what DDS alone costs for a node's inputs and outputs, with no conversion and no engine (the peer of
    `bench node`). It subscribes to every topic of `inputs` (relative name -> type), as the node does, so a
    driver that waits for its subscribers sees it ready; `frame_log` rows are the nodes' (stamp ns, engine ms
    = 0, processing ms, processing ms)."""

    def __init__(self, context: Context, namespace: str, inputs: Mapping[str, type], trigger: str,
                 outputs: Mapping[str, Any]) -> None:
        super().__init__("bench_relay", namespace=namespace, context=context)
        self.frame_log: list[tuple[int, float, float, float]] = []
        self._outputs = [(self.create_publisher(type(msg), name, output_qos(5)), msg) for name, msg in outputs.items()]
        for name, msg_type in inputs.items():
            self.create_subscription(msg_type, name, self._relay if name == trigger else (lambda _msg: None),
                                     sensor_qos("reliable", 5))

    def _relay(self, msg: Any) -> None:
        t0 = time.perf_counter()
        for pub, out in self._outputs:
            out.header = msg.header
            pub.publish(out)
        ms = (time.perf_counter() - t0) * 1e3
        self.frame_log.append((stamp_of(msg), 0.0, ms, ms))


def serialized_header(data: bytes) -> Header:
    """The std_msgs/Header that a serialized (CDR) message starts with: every stamped sensor message's first
    field (Image, PointCloud2, CameraInfo, ...)."""
    if len(data) < 16 or data[0] != 0 or data[1] not in (0, 1):
        raise ValueError(f"not a CDR-serialized message ({len(data)} bytes, encapsulation {data[:2].hex()})")
    order = "<" if data[1] == 1 else ">"
    sec, nanosec, length = struct.unpack_from(order + "iII", data, 4)
    if length < 1 or 16 + length > len(data):
        raise ValueError(f"serialized header's frame_id of {length} bytes overruns the {len(data)}-byte message")
    header = Header(frame_id=data[16:16 + length - 1].decode("utf-8"))
    header.stamp.sec, header.stamp.nanosec = sec, nanosec
    return header


def stamp_of(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def exchange(driver: Driver, namespace: str, messages: Mapping[str, Any], outputs: Iterable[str] = ("depth",),
             timeout: float = 20.0, resend_s: float = 3.0) -> dict[str, Any] | None:
    """Publish one input set and wait for each output (relative name) with the set's stamp; the set is sent again
    every `resend_s` (best-effort inputs may be lost). None if an output did not come within `timeout`."""
    stamp = stamp_of(next(m for m in messages.values() if hasattr(m, "header")))
    outputs = list(outputs)
    deadline = time.monotonic() + timeout
    got: dict[str, Any] = {}
    while time.monotonic() < deadline:
        publish_set(driver, namespace, messages)
        resend_at = min(deadline, time.monotonic() + resend_s)
        for name in outputs:
            if name in got:
                continue
            msg = driver.wait_for(topic(namespace, name), lambda m: stamp_of(m) == stamp,
                                  timeout=max(0.0, resend_at - time.monotonic()))
            if msg is not None:
                got[name] = msg
        if len(got) == len(outputs):
            return got
    return None
