"""diagnostic_msgs building for the nodes' /diagnostics, plus the small rate and latency meters they report."""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

LEVELS = {"OK": DiagnosticStatus.OK, "WARN": DiagnosticStatus.WARN, "ERROR": DiagnosticStatus.ERROR,
          "STALE": DiagnosticStatus.STALE}


def _level_byte(level: str | int | bytes) -> bytes:
    if isinstance(level, bytes):
        return level
    if isinstance(level, int):
        return bytes([level])
    try:
        return LEVELS[level.upper()]
    except KeyError:
        raise ValueError(f"diagnostic level must be one of {sorted(LEVELS)}, got {level!r}") from None


def level_name(level: bytes | int) -> str:
    """b'\\x01' or 1 -> 'WARN'."""
    value = level[0] if isinstance(level, bytes) else int(level)
    for name, byte in LEVELS.items():
        if byte[0] == value:
            return name
    raise ValueError(f"unknown diagnostic level {level!r}")


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def diagnostic_status(name: str, hardware_id: str, level: str | int | bytes, message: str,
                      values: Mapping[str, Any] | None = None) -> DiagnosticStatus:
    """One DiagnosticStatus; `values` become KeyValue pairs (floats with 3 decimals)."""
    return DiagnosticStatus(
        level=_level_byte(level), name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_format(v)) for k, v in (values or {}).items()],
    )


def diagnostic_array(statuses: Iterable[DiagnosticStatus], stamp: Any = None) -> DiagnosticArray:
    msg = DiagnosticArray(status=list(statuses))
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def status_values(status: DiagnosticStatus) -> dict[str, str]:
    """KeyValue list -> dict (for readers of our diagnostics: tests, the bench)."""
    return {kv.key: kv.value for kv in status.values}


class RateMeter:
    """Events per second over a sliding window of wall time."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()
        self.count = 0

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append(now)
            self.count += 1
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()

    def rate_hz(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = now - self._times[0]
            return (len(self._times) - 1) / span if span > 0 else 0.0

    def age_s(self, now: float | None = None) -> float:
        """Seconds since the last event (inf before the first)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return now - self._times[-1] if self._times else math.inf


class LatencyStats:
    """The last `size` values (milliseconds): last, p50, p95, max."""

    def __init__(self, size: int = 100) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, value_ms: float) -> None:
        with self._lock:
            self._values.append(float(value_ms))

    def summary(self) -> dict[str, float]:
        with self._lock:
            values = sorted(self._values)
            last = self._values[-1] if self._values else math.nan
        if not values:
            return {"last": math.nan, "p50": math.nan, "p95": math.nan, "max": math.nan}

        def pct(q: float) -> float:
            return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]

        return {"last": last, "p50": pct(0.5), "p95": pct(0.95), "max": values[-1]}


__all__ = [
    "LEVELS", "LatencyStats", "RateMeter", "diagnostic_array", "diagnostic_status", "level_name", "status_values",
]
