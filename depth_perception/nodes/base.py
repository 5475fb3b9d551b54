"""DepthNodeBase: what the three depth nodes share — parameters, synchronized inputs, a worker, outputs, diagnostics.

(The parameter declarations live in nodes/parameters.py, the node as a process of its own in nodes/process.py.)

A node subclass names its inputs, its extra parameters and its pipeline, converts a synchronized set of messages
into the pipeline's arrays (`prepare`) and calls the pipeline (`infer`). Everything else lives here:

- parameters declared up front with descriptions and ranges, changeable at run time: the set-parameters callback
  validates by building the pipeline config dataclass and rejects a bad value with the reason (the old value
  stays); a changed engine is loaded off the callback thread and swapped in when ready;
- inputs matched by stamp (ros.sync), the newest complete set handed to one worker thread, older sets dropped,
  so latency stays bounded when the engine is slower than the sensors;
- outputs depth (32FC1 m or 16UC1 mm), depth/confidence, depth/colorized, depth/camera_info, depth/points, with the
  input's stamp and frame; an output nobody subscribes to is not computed;
- faults (bad encoding, size mismatch, empty clouds, missing transforms, an engine that fails to load) are caught
  at the frame boundary: a throttled warning naming the cause, nothing published for that frame, the node keeps
  running, and /diagnostics says OK / WARN / ERROR with the reason, input rates and latency.
"""
from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header

from ..engines import check_device
from ..geometry.camera import PinholeCamera
from ..pipelines.base import DepthResult, colorize_depth
from ..ros.camera_info import camera_info_to_model, pinhole_to_camera_info
from ..ros.diagnostics import LatencyStats, RateMeter, diagnostic_array, diagnostic_status
from ..ros.image import depth_to_image, image_to_rgb, numpy_to_image
from ..ros.pointcloud import depth_to_pointcloud2, transform_pointcloud2
from ..ros.qos import output_qos, qos_from_params
from ..ros.sync import ApproximateTimeSynchronizer, stamp_to_ns
from .parameters import COMMON_PARAMS, ParameterStartupError, ParamSpec, pipeline_params

WARN_THROTTLE_S = 5.0  # one warning per cause per this many seconds
FAULT_WINDOW_S = 5.0  # diagnostics stay WARN this long after the last fault
STALE_INPUT_S = 5.0  # no input for this long while someone listens: WARN
DIAGNOSTICS_TOPIC = "/diagnostics"


class InputFault(Exception):
    """A frame that cannot be processed; `cause` groups warnings for throttling and diagnostics."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class InputSpec:
    key: str  # the relative topic name, remappable (image_pipeline names)
    msg_type: type


@dataclass
class Frame:
    """What `prepare` hands to `infer`: the output header, the (resized) camera and image, pipeline arguments."""

    header: Header
    camera: PinholeCamera
    rgb: np.ndarray
    args: dict[str, Any]


def copy_header(header: Header, frame_id: str | None = None) -> Header:
    out = Header()
    out.stamp = header.stamp
    out.frame_id = header.frame_id if frame_id is None else frame_id
    return out


class DepthNodeBase(Node):
    """Shared machinery of the depth nodes; subclasses set the class attributes and `prepare` / `infer`."""

    NODE_NAME = "depth_node"
    KIND = ""
    INPUTS: tuple[InputSpec, ...] = ()
    EXTRA_PARAMS: tuple[ParamSpec, ...] = ()
    DEFAULTS: Mapping[str, Any] = {}  # per-node defaults overriding the declared ones

    @classmethod
    def param_specs(cls) -> dict[str, ParamSpec]:
        """The pipeline config's settings first, then the node-only parameters."""
        specs = {s.name: s for s in (*pipeline_params(cls.config_class()), *COMMON_PARAMS, *cls.EXTRA_PARAMS)}
        for name, value in cls.DEFAULTS.items():
            specs[name] = dataclasses.replace(specs[name], default=value)
        return specs

    # -- subclass hooks ---------------------------------------------------------------------------------------
    @classmethod
    def config_class(cls) -> type:
        """The pipeline config dataclass; its `setting` fields are this node's pipeline parameters."""
        raise NotImplementedError

    def build_pipeline(self, config: Any) -> Any:
        raise NotImplementedError

    def prepare(self, msgs: dict[str, Any]) -> Frame:
        raise NotImplementedError

    def infer(self, pipeline: Any, frame: Frame) -> DepthResult:
        raise NotImplementedError

    def check_values(self, values: Mapping[str, Any], runtime: bool) -> None:
        """Cross-parameter checks beyond the pipeline config (ValueError naming the parameter)."""

    def on_values_changed(self, changed: set[str]) -> None:
        """Called after accepted changes (any thread); subclasses reset state that depends on them."""

    def extra_diagnostics(self) -> dict[str, Any]:
        """Node-specific values for /diagnostics."""
        return {}

    # -- construction -----------------------------------------------------------------------------------------
    def __init__(self, **kwargs: Any) -> None:
        # what destroy_node needs exists before anything can fail (rclpy destroys a half-built node at shutdown)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stop = False
        self._worker: threading.Thread | None = None
        self._loaders: list[threading.Thread] = []  # joined on destroy: a load must not outlive the process
        self._load_generation = 0
        super().__init__(kwargs.pop("node_name", self.NODE_NAME), **kwargs)
        self._specs = self.param_specs()
        try:
            for spec in self._specs.values():
                self.declare_parameter(spec.name, spec.default, spec.descriptor())
            self._values: dict[str, Any] = {n: self.get_parameter(n).value for n in self._specs}
            config = self._validate(self._values, runtime=False)  # a bad start-up value is an error at once
        except (ValueError, TypeError, ParameterException) as exc:
            name = self.get_fully_qualified_name()
            super().destroy_node()
            raise ParameterStartupError(f"{name}: bad parameter at start-up: {' '.join(str(exc).split())}") from None

        self._pending: dict[str, Any] | None = None
        self._pending_t = 0.0
        self._pipeline: Any = None
        self._active_config: Any = None
        self._active_values: dict[str, Any] = {}
        self._requested_config: Any = None
        self._engine_error: str | None = None
        self._loading = False

        self.input_rates = {spec.key: RateMeter() for spec in self.INPUTS}
        self.synced_rate, self.output_rate = RateMeter(), RateMeter()
        self.processing_ms, self.engine_ms, self.latency_ms = LatencyStats(), LatencyStats(), LatencyStats()
        self.frames_processed = 0
        self.frames_dropped = 0  # complete sets replaced by a newer one before the worker took them
        self.frames_failed = 0
        self.frames_idle = 0  # sets skipped because nobody subscribes to any output
        self.fault_counts: dict[str, int] = {}
        self._last_fault: tuple[float, str, str] | None = None  # (monotonic time, cause, message)
        self._warned_at: dict[str, float] = {}
        # (stamp_ns, engine_ms, processing_ms, set-complete -> published ms) of recent frames, for the bench
        self.frame_log: deque[tuple[int, float, float, float]] = deque(maxlen=1000)

        qos = output_qos(depth=5)
        self.pub_depth = self.create_publisher(Image, "depth", qos)
        self.pub_confidence = self.create_publisher(Image, "depth/confidence", qos)
        self.pub_colorized = self.create_publisher(Image, "depth/colorized", qos)
        self.pub_camera_info = self.create_publisher(CameraInfo, "depth/camera_info", qos)
        self.pub_points = self.create_publisher(PointCloud2, "depth/points", qos)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)

        from ..ros.tf import TfListener

        self.tf = TfListener(self)
        self._sync = ApproximateTimeSynchronizer([s.key for s in self.INPUTS], self._values["sync_slop"],
                                                 self._on_synced)
        # ROS time jumping back (sim time reset, /clock of a looped bag) starts the synchronizer's timeline anew
        self._clock_jump = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=None, min_backward=Duration(nanoseconds=-1), on_clock_change=True),
            post_callback=lambda _jump: self._sync.reset())
        self._subscriptions_by_key: dict[str, Any] = {}
        self._make_subscriptions()
        self._worker = threading.Thread(target=self._work, name=f"{self.get_name()}_worker", daemon=True)
        self._worker.start()
        self._diag_timer = self.create_timer(self._values["diagnostics_period"], self.publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._request_pipeline(config)

    # -- parameters -------------------------------------------------------------------------------------------
    def make_config(self, values: Mapping[str, Any]) -> Any:
        """The pipeline config dataclass from parameter values (its __post_init__ validates)."""
        cls = self.config_class()
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for spec in self._specs.values():
            target = spec.field or spec.name
            if target in names:
                kwargs[target] = values[spec.name]
        return cls(**kwargs)

    def _validate(self, values: Mapping[str, Any], runtime: bool) -> Any:
        for name, spec in self._specs.items():
            spec.check(values[name])
        if values["colormap_max_depth"] <= values["colormap_min_depth"]:
            raise ValueError(f"colormap_max_depth must be > colormap_min_depth ({values['colormap_min_depth']}), "
                             f"got {values['colormap_max_depth']}")
        engine = str(values["engine"])
        if runtime and engine not in ("auto", "classical") and not Path(engine).exists():
            raise ValueError(f"engine not found: {engine}")
        if engine != "classical":  # a device nobody has fails here, not later in the background load
            check_device(values["device"])
        self.check_values(values, runtime)
        return self.make_config(values)

    def _on_set_parameters(self, params: Sequence[Parameter]) -> SetParametersResult:
        with self._lock:
            new = dict(self._values)
            for p in params:
                if p.name in self._specs:
                    new[p.name] = p.value
            try:
                config = self._validate(new, runtime=True)
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            changed = {n for n in self._specs if new[n] != self._values[n]}
            self._values = new
            # setting `engine` again after a failed load (the file fixed, a device back) retries it
            retry = self._pipeline is None and not self._loading and any(p.name == "engine" for p in params)
        if not changed and not retry:
            return SetParametersResult(successful=True)
        if "sync_slop" in changed:
            self._sync.slop_s = new["sync_slop"]
        if changed & {"qos_reliability", "qos_depth"}:
            self._make_subscriptions()
        if "diagnostics_period" in changed:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = self.create_timer(new["diagnostics_period"], self.publish_diagnostics)
        self.on_values_changed(changed)
        self._request_pipeline(config)
        return SetParametersResult(successful=True)

    def value(self, name: str) -> Any:
        """The current (accepted) value of a declared parameter."""
        return self._values[name]

    # -- engine loading ---------------------------------------------------------------------------------------
    def _request_pipeline(self, config: Any) -> None:
        with self._lock:
            if config == self._requested_config:
                return
            self._requested_config = config
            self._load_generation += 1
            generation = self._load_generation
            if self._pipeline is not None and config == self._active_config:
                self._loading = False  # a load still under way is now stale and will not clear this itself
                return  # back to what runs (e.g. a reverted failed load): nothing to load
            self._loading = True
            values = dict(self._values)
            loader = threading.Thread(target=self._load, args=(generation, config, values),
                                      name=f"{self.get_name()}_loader", daemon=True)
            self._loaders = [t for t in self._loaders if t.is_alive()] + [loader]
        loader.start()

    def _load(self, generation: int, config: Any, values: dict[str, Any]) -> None:
        try:
            pipeline = self.build_pipeline(config)
        except Exception as exc:  # any load failure is reported, the node keeps running
            message = f"engine {config.engine!r} failed to load: {type(exc).__name__}: {exc}"
            revert: list[Parameter] = []
            with self._lock:
                if generation != self._load_generation:
                    return
                self._loading = False
                self._requested_config = None  # asking for the same engine again retries the load
                if self._pipeline is None:
                    self._engine_error = message
                else:  # keep the running engine and put its parameter values back, so they say what runs
                    revert = [Parameter(n, value=v) for n, v in self._active_values.items()
                              if self._values.get(n) != v]
                    message += "; keeping the previous engine"
            self._fault("engine", message, frame_dropped=False)
            if revert:
                # A fast failure can finish before rclpy stores the values whose callback started this load; put
                # them back only once they are stored, or the store would overwrite the revert.
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline and any(
                        self.get_parameter(p.name).value != values[p.name] for p in revert):
                    time.sleep(0.005)
                self.set_parameters(revert)
            return
        with self._lock:
            if generation != self._load_generation:
                return
            self._pipeline, self._active_config = pipeline, config
            self._active_values = {n: values[n] for n, s in self._specs.items()
                                   if (s.field or s.name) in {f.name for f in dataclasses.fields(config)}}
            self._engine_error = None
            self._loading = False
        engine = getattr(pipeline, "engine", None)
        runtime = f" ({engine.backend} on {engine.device})" if engine is not None else ""
        fallback = getattr(pipeline, "fallback", "")
        if fallback:  # a learned engine was asked for and cannot run: say so once, loudly
            self.get_logger().warning(f"engine ready: {getattr(pipeline, 'name', config.engine)}; {fallback}")
        else:
            self.get_logger().info(f"engine ready: {getattr(pipeline, 'name', config.engine)}{runtime}")

    @property
    def pipeline(self) -> Any:
        with self._lock:
            return self._pipeline

    def wait_until_ready(self, timeout: float = 30.0) -> bool:
        """Block until the requested engine is loaded (or failed); True if one runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._loading:
                    return self._pipeline is not None
            time.sleep(0.01)
        return False

    # -- inputs -----------------------------------------------------------------------------------------------
    def _make_subscriptions(self) -> None:
        qos = qos_from_params(self._values["qos_reliability"], self._values["qos_depth"])
        with self._lock:
            old = list(self._subscriptions_by_key.values())
            self._subscriptions_by_key = {}
        for sub in old:
            self.destroy_subscription(sub)
        subs = {}
        for spec in self.INPUTS:
            subs[spec.key] = self.create_subscription(
                spec.msg_type, spec.key, lambda msg, key=spec.key: self._on_input(key, msg), qos)
        with self._lock:
            self._subscriptions_by_key = subs

    def _on_input(self, key: str, msg: Any) -> None:
        self.input_rates[key].tick()
        self._sync.add(key, msg)

    def _on_synced(self, msgs: dict[str, Any]) -> None:
        self.synced_rate.tick()
        with self._cond:
            if self._pending is not None:
                self.frames_dropped += 1
            self._pending, self._pending_t = msgs, time.perf_counter()
            self._cond.notify()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                msgs, t_complete = self._pending, self._pending_t
                self._pending = None
            try:
                self._process(msgs, t_complete)
            except InputFault as fault:
                self.frames_failed += 1
                self._fault(fault.cause, str(fault))
            except Exception as exc:  # the frame boundary: report, drop the frame, keep running
                self.frames_failed += 1
                self._fault("processing", f"{type(exc).__name__}: {exc}")

    def has_subscribers(self) -> bool:
        return any(p.get_subscription_count() > 0 for p in self._outputs())

    def _outputs(self) -> tuple[Any, ...]:
        return (self.pub_depth, self.pub_confidence, self.pub_colorized, self.pub_camera_info, self.pub_points)

    def _process(self, msgs: dict[str, Any], t_complete: float) -> None:
        if not self.has_subscribers():
            self.frames_idle += 1
            return
        t0 = time.perf_counter()
        with self._lock:
            pipeline, error = self._pipeline, self._engine_error
        if pipeline is None:
            raise InputFault("engine", error or "no engine yet: still loading")
        frame = self.prepare(msgs)
        result = self.infer(pipeline, frame)
        engine_ms = float(result.timings_ms.get("total", math.nan))
        self._publish(frame, result)
        t1 = time.perf_counter()
        self.output_rate.tick()
        self.frames_processed += 1
        self.processing_ms.add((t1 - t0) * 1e3)
        self.latency_ms.add((t1 - t_complete) * 1e3)
        self.engine_ms.add(engine_ms)
        self.frame_log.append((stamp_to_ns(frame.header.stamp), engine_ms, (t1 - t0) * 1e3,
                               (t1 - t_complete) * 1e3))

    # -- conversions shared by the subclasses ------------------------------------------------------------------
    def rgb_and_camera(self, image: Image, info: CameraInfo, label: str) -> tuple[np.ndarray, PinholeCamera]:
        """Image + CameraInfo -> (uint8 RGB, rectified camera), checked against each other; InputFault if not."""
        try:
            rgb = image_to_rgb(image)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFault("image", f"{label} image: {exc}") from None
        try:
            camera = camera_info_to_model(info).pinhole()
        except (ValueError, KeyError, TypeError) as exc:
            raise InputFault("camera_info", f"{label} camera_info: {exc}") from None
        if rgb.shape[:2] != camera.shape:
            raise InputFault("size", f"{label} image is {rgb.shape[1]}x{rgb.shape[0]} but its camera_info says "
                                     f"{camera.width}x{camera.height}")
        return rgb, camera

    def output_size(self, camera: PinholeCamera) -> tuple[int, int]:
        w, h = self._values["input_width"], self._values["input_height"]
        return int(w) or camera.width, int(h) or camera.height

    def resize_input(self, rgb: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, PinholeCamera]:
        """To the input_width x input_height parameters (intrinsics scaled with the image)."""
        w, h = self.output_size(camera)
        if (w, h) == (camera.width, camera.height):
            return rgb, camera
        return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA), camera.scaled(w, h)

    def lookup_transform(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """T_target_source from TF at the stamp (identity for equal frames); InputFault naming what is missing."""
        if not target or not source:
            raise InputFault("transform", f"empty frame id (target {target!r}, source {source!r})")
        if target == source:
            return np.eye(4)
        try:
            return np.asarray(self.tf.lookup(target, source, stamp_ns), np.float64)
        except Exception as exc:  # LookupError from our buffer, tf2 exceptions from tf2_ros
            raise InputFault("transform", f"no transform {source} -> {target} at {stamp_ns * 1e-9:.3f} s: "
                                          f"{exc}") from None

    # -- outputs ----------------------------------------------------------------------------------------------
    def _publish(self, frame: Frame, result: DepthResult) -> None:
        values = self._values
        header = frame.header
        depth = result.depth  # every pipeline applies its own confidence_threshold
        want_cloud = self.pub_points.get_subscription_count() > 0
        T_target_camera = None
        target = values["target_frame"]
        if want_cloud and target and target != header.frame_id:
            # looked up before anything is published: a missing transform drops the whole frame
            T_target_camera = self.lookup_transform(target, header.frame_id, stamp_to_ns(header.stamp))
        if self.pub_depth.get_subscription_count() > 0:
            self.pub_depth.publish(depth_to_image(depth, values["output_encoding"], header=copy_header(header)))
        if self.pub_confidence.get_subscription_count() > 0:
            conf = np.ascontiguousarray(result.confidence, dtype=np.float32)
            self.pub_confidence.publish(numpy_to_image(conf, "32FC1", header=copy_header(header)))
        if self.pub_camera_info.get_subscription_count() > 0:
            self.pub_camera_info.publish(pinhole_to_camera_info(result.camera, header=copy_header(header)))
        if want_cloud:  # the largest message: after the small ones, so they are not held up
            rgb = frame.rgb if values["cloud_rgb"] and frame.rgb.shape[:2] == depth.shape else None
            cloud = depth_to_pointcloud2(depth, result.camera, header=copy_header(header), rgb=rgb,
                                         decimation=int(values["cloud_decimation"]))
            if T_target_camera is not None:
                cloud = transform_pointcloud2(cloud, T_target_camera, target)
            self.pub_points.publish(cloud)
        if self.pub_colorized.get_subscription_count() > 0:  # for people watching: last
            rgb8 = colorize_depth(depth, values["colormap_min_depth"], values["colormap_max_depth"])
            self.pub_colorized.publish(numpy_to_image(rgb8, "rgb8", header=copy_header(header)))

    # -- faults and diagnostics -------------------------------------------------------------------------------
    def _fault(self, cause: str, message: str, frame_dropped: bool = True) -> None:
        now = time.monotonic()
        with self._lock:
            self.fault_counts[cause] = self.fault_counts.get(cause, 0) + 1
            self._last_fault = (now, cause, message)
            due = now - self._warned_at.get(cause, -math.inf) >= WARN_THROTTLE_S
            if due:
                self._warned_at[cause] = now
        # Throttled per cause here: rclpy's throttle_duration_sec throttles per call site, which would let one
        # cause hide another.
        if due:
            what = "frame dropped; " if frame_dropped else ""
            self.get_logger().warning(f"{cause}: {message} ({what}repeats suppressed for {WARN_THROTTLE_S:.0f} s)")

    def diagnostic_state(self) -> tuple[str, str, dict[str, Any]]:
        """(level, message, values) as published on /diagnostics."""
        now = time.monotonic()
        with self._lock:
            pipeline, error, loading, last = self._pipeline, self._engine_error, self._loading, self._last_fault
        listening = self.has_subscribers()
        stale = [k for k, meter in self.input_rates.items() if meter.age_s(now) > STALE_INPUT_S]
        if pipeline is None and error:
            level, message = "ERROR", error
        elif pipeline is None:
            level, message = "WARN", "engine loading"
        elif last is not None and now - last[0] < FAULT_WINDOW_S:
            level, message = "WARN", f"{last[1]}: {last[2]}"
        elif listening and stale:
            level, message = "WARN", f"no input on {', '.join(stale)} for over {STALE_INPUT_S:.0f} s"
        elif not listening:
            level, message = "OK", "idle: no subscribers"
        else:
            level, message = "OK", f"publishing depth at {self.output_rate.rate_hz(now):.1f} Hz"
        values: dict[str, Any] = {
            "kind": self.KIND,
            "engine": getattr(pipeline, "name", self._values["engine"]) if pipeline is not None else "none",
            "engine_loading": loading,
        }
        if getattr(pipeline, "fallback", ""):
            values["engine_fallback"] = pipeline.fallback
        engine = getattr(pipeline, "engine", None)
        if engine is not None:  # the runtime `backend: auto` chose, e.g. torch for NLSPN on a CPU
            values["backend"], values["device"] = str(engine.backend), str(engine.device)
        for key, meter in self.input_rates.items():
            values[f"input_rate_hz/{key}"] = meter.rate_hz(now)
        values["synchronized_rate_hz"] = self.synced_rate.rate_hz(now)
        values["output_rate_hz"] = self.output_rate.rate_hz(now)
        for name, stats in (("processing_ms", self.processing_ms), ("engine_ms", self.engine_ms),
                            ("latency_ms", self.latency_ms)):
            summary = stats.summary()
            values[f"{name}/last"], values[f"{name}/p50"], values[f"{name}/p95"] = (
                summary["last"], summary["p50"], summary["p95"])
        values.update(frames_processed=self.frames_processed, frames_dropped=self.frames_dropped,
                      frames_failed=self.frames_failed, frames_idle=self.frames_idle,
                      sync_dropped=self._sync.dropped, out_of_order_dropped=self._sync.stale,
                      time_resets=self._sync.time_resets)
        for cause, count in sorted(self.fault_counts.items()):
            values[f"faults/{cause}"] = count
        if last is not None:
            values["last_fault"] = f"{last[1]}: {last[2]}"
        values.update(self.extra_diagnostics())
        return level, message, values

    def publish_diagnostics(self) -> None:
        level, message, values = self.diagnostic_state()
        status = diagnostic_status(f"{self.get_name()}: depth", self.get_fully_qualified_name(), level, message,
                                   values)
        self.pub_diagnostics.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    # -- shutdown ---------------------------------------------------------------------------------------------
    def destroy_node(self, timeout_s: float = 60.0) -> None:
        """Stop the worker and wait up to `timeout_s` for a frame in the engine and an engine still loading.

        In-process users (tests, `depth-perception run`) wait: exiting while an ONNX Runtime session is being
        built in C++ aborts the process ("terminate called without an active exception"). A node process that
        got SIGINT waits a short time instead and then leaves at once (see run_node): launch escalates to SIGKILL
        after 5 s, and a stereo frame on a CPU takes about one.
        """
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        worker = self._worker
        if worker is not None and worker.is_alive() and threading.current_thread() is not worker:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._load_generation += 1  # whatever finishes now is stale and will not be installed
            loaders = list(self._loaders)
        for loader in loaders:
            if loader is not threading.current_thread():
                loader.join(timeout=max(0.0, deadline - time.monotonic()))
        jump = getattr(self, "_clock_jump", None)  # absent when construction failed before it
        if jump is not None:
            jump.unregister()  # rclpy: the callback must stay valid as long as its handle is registered
        super().destroy_node()

    def busy_threads(self) -> list[str]:
        """Names of this node's worker and loader threads still running (an engine call in progress)."""
        threads = [self._worker, *self._loaders]
        return [t.name for t in threads if t is not None and t.is_alive()]
