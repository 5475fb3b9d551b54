"""Settings named once: a pipeline config field carries its description, numeric range and choices, and the nodes'
parameters, their validation and the README's parameter table are generated from it.

    @dataclass
    class MonoPipelineConfig:
        camera_height: float = setting(1.65, "camera height above a flat ground (m)", 0.05, 10.0)

        def __post_init__(self) -> None:
            check_settings(self)  # ranges and choices; cross-field rules stay written out

`setting(...)` is a `dataclasses.field` with a default, so configs stay plain dataclasses: `Config(min_depth=2)`
works everywhere and validates in `__post_init__`. Fields without `setting` are not node parameters.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..kinds import BACKENDS

KEY = "setting"


@dataclass(frozen=True)
class Setting:
    """What a person tuning the field needs: what it does, and the values it takes."""

    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, name: str, value: Any) -> None:
        """ValueError naming the field and the bad value."""
        if self.choices and value not in self.choices:
            raise ValueError(f"{name} must be one of {list(self.choices)}, got {value!r}")
        if self.low is not None and self.high is not None and not (self.low <= value <= self.high):
            raise ValueError(f"{name} must be in [{self.low}, {self.high}], got {value!r}")


def setting(default: Any, description: str, low: float | None = None, high: float | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A dataclass field with a default and its Setting."""
    if (low is None) != (high is None):
        raise ValueError(f"setting {description!r}: give both low and high, or neither")
    return dataclasses.field(default=default, metadata={KEY: Setting(description, low, high, tuple(choices))})


def settings_of(config: Any) -> dict[str, tuple[Any, Setting]]:
    """name -> (default, Setting) for every field of a config class (or instance) that carries one, in order."""
    return {f.name: (f.default, f.metadata[KEY]) for f in dataclasses.fields(config) if KEY in f.metadata}


def check_settings(config: Any) -> None:
    """Check every setting field's value against its range and choices (a config's __post_init__ calls it)."""
    for name, (_, spec) in settings_of(config).items():
        spec.check(name, getattr(config, name))


@dataclass
class EngineSettings:
    """The fields every depth pipeline config starts with (its engine and where it runs), written once."""

    engine: str = setting("auto", "depth engine: 'auto' (the shipped default engine; stereo on a machine without a "
                          "GPU takes the CPU-sized one, stereo_cpu, where shipped), 'classical' where the node has "
                          "one, an engine artifact path (.onnx / .engine / .plan with its .json sidecar) or a "
                          "training checkpoint folder; a new value is loaded in the background and swapped in when "
                          "ready")
    backend: str = setting("auto", "engine runtime backend", choices=BACKENDS)
    device: str = setting("auto", "engine device: auto, cpu, cuda or cuda:N")


# Fields every pipeline has with its own default.
def min_depth_setting(default: float) -> Any:
    return setting(default, "nearest valid depth in metres (nearer is published as invalid)", 0.01, 1000.0)


def max_depth_setting(default: float) -> Any:
    return setting(default, "farthest valid depth in metres (farther is published as invalid)", 0.1, 1000.0)


def confidence_setting() -> Any:
    return setting(0.0, "depth with confidence below this is published as invalid", 0.0, 1.0)
