"""The depth nodes' faults and diagnostics: throttled warnings per cause, and /diagnostics OK / WARN / ERROR with
the reason, input rates, latency and fault counts."""
from __future__ import annotations

import math
import time
from typing import Any

from ..ros.diagnostics import diagnostic_array, diagnostic_status

WARN_THROTTLE_S = 5.0  # one warning per cause per this many seconds
FAULT_WINDOW_S = 5.0  # diagnostics stay WARN this long after the last fault
STALE_INPUT_S = 5.0  # no input for this long while someone listens: WARN
DIAGNOSTICS_TOPIC = "/diagnostics"


class DiagnosticsMixin:
    """Faults and the diagnostic status.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

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
