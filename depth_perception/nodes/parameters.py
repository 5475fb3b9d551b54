"""The depth nodes' parameters: each declared up front with its description, range or choices (ParamSpec). A
node's parameters are its pipeline config's settings (`pipelines.settings`: named once, on the config field) and
the node-only ones every node shares (COMMON_PARAMS: resizing, encoding, colours, cloud, QoS, diagnostics);
and the error a bad value at start-up raises."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from ..engines import check_device
from ..pipelines.settings import Setting, settings_of
from ..ros.image import DEPTH_ENCODINGS


class ParameterStartupError(ValueError):
    """A node given a bad parameter value at start-up; one line naming the node, the parameter and why.

    The node does not start with a default in its place: a vehicle configured with min_depth -5 should stop at
    launch with the reason, not run with a setting nobody asked for. `run_node` exits with code 2.
    """


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter: default (its type is the parameter's type), description, numeric range or choices.

    `field` names the pipeline-config dataclass field it feeds (default: the same name, if the config has it).
    """

    name: str
    default: bool | int | float | str
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    field: str | None = None

    @classmethod
    def from_setting(cls, name: str, default: Any, setting: Setting) -> ParamSpec:
        return cls(name, default, setting.description, setting.low, setting.high, setting.choices)

    def descriptor(self) -> ParameterDescriptor:
        text = self.description + (f" (one of: {', '.join(self.choices)})" if self.choices else "")
        desc = ParameterDescriptor(name=self.name, description=text)
        if self.low is not None and self.high is not None:
            if isinstance(self.default, bool):
                raise TypeError(f"parameter {self.name}: a bool has no range")
            if isinstance(self.default, int):
                desc.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=1)]
            else:
                desc.floating_point_range = [FloatingPointRange(from_value=float(self.low),
                                                                to_value=float(self.high), step=0.0)]
        return desc

    def check(self, value: Any) -> None:
        """ValueError naming the parameter and the bad value (rclpy checks ranges too; construction-time values
        and choices are ours to check)."""
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {list(self.choices)}, got {value!r}")
        if self.low is not None and self.high is not None and not (self.low <= value <= self.high):
            raise ValueError(f"{self.name} must be in [{self.low}, {self.high}], got {value!r}")


COMMON_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("input_width", 0, "resize inputs to this width before the engine; 0 keeps the camera's width; "
              "outputs and depth/camera_info use this resolution", 0, 8192),
    ParamSpec("input_height", 0, "resize inputs to this height; 0 keeps the camera's height", 0, 8192),
    ParamSpec("output_encoding", "32FC1", "depth image encoding: 32FC1 metres (NaN invalid) or 16UC1 millimetres "
              "(0 invalid; depth beyond 65.535 m is 0; half the bytes, so less DDS latency)",
              choices=DEPTH_ENCODINGS),
    ParamSpec("colormap_min_depth", 1.0, "depth (m) drawn with the nearest colour in depth/colorized", 0.01, 1000.0),
    ParamSpec("colormap_max_depth", 80.0, "depth (m) drawn with the farthest colour in depth/colorized", 0.1,
              1000.0),
    ParamSpec("cloud_decimation", 1, "depth/points keeps every Nth pixel in each direction (organized)", 1, 16),
    ParamSpec("cloud_rgb", True, "depth/points carries packed rgb from the camera image (xyzrgb) or not (xyz)"),
    ParamSpec("target_frame", "", "frame of depth/points; empty keeps the camera optical frame (else TF)"),
    ParamSpec("qos_reliability", "best_effort", "input subscriptions' reliability",
              choices=("best_effort", "reliable")),
    ParamSpec("qos_depth", 5, "input subscriptions' history depth", 1, 100),
    ParamSpec("sync_slop", 0.05, "largest stamp difference (s) between inputs of one synchronized set", 0.0, 1.0),
    ParamSpec("diagnostics_period", 1.0, "seconds between /diagnostics messages", 0.1, 60.0),
)


def pipeline_params(config_class: type) -> tuple[ParamSpec, ...]:
    """The node parameters a pipeline config declares with `setting`, in field order."""
    return tuple(ParamSpec.from_setting(name, default, spec) for name, (default, spec) in
                 settings_of(config_class).items())


class ParameterMixin:
    """Validation of parameter values (start-up and run time) and the set-parameters callback.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

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
