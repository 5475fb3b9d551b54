"""DepthNodeBase: what the three depth nodes share — parameters, synchronized inputs, a worker, outputs, diagnostics.

Split by job, one module each: parameters.py (declarations, validation, the set-parameters callback),
engine_loading.py (the hot swap), inputs.py (subscriptions, conversions, InputFault), worker.py (the worker
thread and one frame's processing), outputs.py (publishing), diagnostics.py (faults, /diagnostics); the node as
a process of its own in process.py.

A node subclass names its inputs, its extra parameters and its pipeline, converts a synchronized set of messages
into the pipeline's arrays (`prepare`) and calls the pipeline (`infer`). The base and its mixins do the rest:

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
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import JumpThreshold
from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from ..pipelines.base import DepthResult
from ..ros.diagnostics import LatencyStats, RateMeter
from ..ros.qos import output_qos
from ..ros.sync import ApproximateTimeSynchronizer
from .diagnostics import DIAGNOSTICS_TOPIC, DiagnosticsMixin
from .engine_loading import EngineLoaderMixin
from .inputs import Frame, InputFault, InputsMixin, InputSpec, copy_header
from .outputs import OutputsMixin
from .parameters import COMMON_PARAMS, ParameterMixin, ParameterStartupError, ParamSpec, pipeline_params
from .worker import WorkerMixin


class DepthNodeBase(ParameterMixin, EngineLoaderMixin, InputsMixin, WorkerMixin, OutputsMixin,
                    DiagnosticsMixin, Node):
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


__all__ = ["DepthNodeBase", "Frame", "InputFault", "InputSpec", "copy_header"]
