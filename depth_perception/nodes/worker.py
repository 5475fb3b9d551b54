"""The depth nodes' worker: the newest complete input set goes to one worker thread (older sets are dropped, so
latency stays bounded when the engine is slower than the sensors); a fault ends the frame, never the node."""
from __future__ import annotations

import math
import time
from typing import Any

from ..ros.sync import stamp_to_ns
from .inputs import InputFault


class WorkerMixin:
    """The hand-over from the synchronizer to the worker thread, and one frame's processing.

    State lives on DepthNodeBase (its __init__ makes it); this class only groups one job's methods.
    """

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
