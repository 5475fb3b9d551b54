"""The depth nodes' engine loading: a changed engine is loaded off the callback thread and swapped in when ready;
a failed load keeps the running engine and puts its parameter values back."""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from rclpy.parameter import Parameter


class EngineLoaderMixin:
    """Requesting, loading and swapping the pipeline.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

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
