"""An approximate-time synchronizer of our own (message_filters is not a pip wheel): newest complete set wins.

Messages arrive per input key with their header stamp. A set is complete when every key has a message and all
stamps of the set lie within `slop_s` of each other. The newest complete set is handed to the callback and every
message at or before it is dropped, so a slow consumer never works through a backlog (DESIGN.md §4).

A message no newer than its input's last delivered one (a duplicate stamp, a set 0.5 s late) is dropped and
counted in `stale`: depth is never published out of order or twice for one stamp. Time that jumps back (a bag
loop, a sim-time reset, a restarted driver) must still recover: a stamp more than TIME_JUMP_BACK_NS before the
last delivered set, or STALE_RUN_RESET stale messages in a row on one input (a loop of a bag shorter than that),
starts the timeline again.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

# A stamp this far before the last matched set means time jumped back (a bag loop, a restarted sensor driver).
TIME_JUMP_BACK_NS = 1_000_000_000
STALE_RUN_RESET = 3  # this many stale messages in a row on one input: time went back by less than the above


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (sec, nanosec), or an int of nanoseconds already -> int nanoseconds."""
    if isinstance(stamp, (int, np.integer)):
        return int(stamp)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class ApproximateTimeSynchronizer:
    """Match one message per key by stamp; call `callback(dict key -> message)` with the newest complete set.

    Thread-safe: `add` may be called from several executor threads. The callback runs in the thread whose
    `add` completed the set, outside the lock.
    """

    def __init__(self, keys: Sequence[Hashable], slop_s: float, callback: Callable[[dict[Hashable, Any]], None],
                 queue_size: int = 5) -> None:
        if not keys:
            raise ValueError("keys must name at least one input")
        if len(set(keys)) != len(keys):
            raise ValueError(f"keys must be unique, got {list(keys)}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.keys = tuple(keys)
        self.slop_s = slop_s
        self.callback = callback
        self._queues: dict[Hashable, deque[tuple[int, Any]]] = {k: deque(maxlen=queue_size) for k in self.keys}
        self._lock = threading.Lock()
        self._last_matched_ns: int | None = None
        self._last_by_key: dict[Hashable, int] = {}  # stamp of each input's message in the last delivered set
        self._stale_run: dict[Hashable, int] = {k: 0 for k in self.keys}
        self.matched = 0
        self.dropped = 0  # messages discarded without being part of a delivered set
        self.stale = 0  # of those, messages no newer than their input's last delivered one
        self.time_resets = 0

    @property
    def slop_s(self) -> float:
        return self._slop_ns / 1e9

    @slop_s.setter
    def slop_s(self, value: float) -> None:
        if not value >= 0:
            raise ValueError(f"slop_s must be >= 0 seconds, got {value}")
        self._slop_ns = int(round(value * 1e9))

    def reset(self) -> None:
        """Forget queued messages and the last delivered stamps (a clock jumped back: a new timeline)."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self.dropped += sum(len(q) for q in self._queues.values())
        for q in self._queues.values():
            q.clear()
        self._last_matched_ns = None
        self._last_by_key.clear()
        self._stale_run = {k: 0 for k in self.keys}
        self.time_resets += 1

    def _is_stale(self, key: Hashable, stamp: int) -> bool:
        """Drop `stamp` as out of order? Resets the timeline instead when time evidently went back."""
        if self._last_matched_ns is not None and stamp < self._last_matched_ns - TIME_JUMP_BACK_NS:
            self._reset_locked()
            return False
        last = self._last_by_key.get(key)
        if last is None or stamp > last:
            self._stale_run[key] = 0
            return False
        self._stale_run[key] += 1
        if self._stale_run[key] >= STALE_RUN_RESET:
            self._reset_locked()
            return False
        self.stale += 1
        self.dropped += 1
        return True

    def add(self, key: Hashable, msg: Any, stamp_ns: int | None = None) -> bool:
        """Queue `msg` (its header stamp unless `stamp_ns` is given); True if it completed a set."""
        if key not in self._queues:
            raise KeyError(f"unknown synchronizer input {key!r}; inputs are {list(self.keys)}")
        stamp = stamp_to_ns(msg.header.stamp) if stamp_ns is None else int(stamp_ns)
        with self._lock:
            if self._is_stale(key, stamp):
                return False
            queue = self._queues[key]
            if len(queue) == queue.maxlen:
                self.dropped += 1
            queue.append((stamp, msg))
            found = self._newest_set()
            if found is None:
                return False
            chosen = found
            for k, (t, _) in chosen.items():
                q = self._queues[k]
                before = len(q)
                kept = [(s, m) for s, m in q if s > t]
                q.clear()
                q.extend(kept)
                self.dropped += before - len(kept) - 1  # the chosen one is delivered, not dropped
            self._last_matched_ns = min(t for t, _ in chosen.values())
            self._last_by_key = {k: t for k, (t, _) in chosen.items()}
            self.matched += 1
        self.callback({k: m for k, (_, m) in chosen.items()})
        return True

    def _newest_set(self) -> dict[Hashable, tuple[int, Any]] | None:
        if any(not q for q in self._queues.values()):
            return None
        # Try pivots newest first: each candidate set takes, per key, the message nearest the pivot.
        pivots = sorted({t for q in self._queues.values() for t, _ in q}, reverse=True)
        for pivot in pivots:
            chosen = {k: min(q, key=lambda item: abs(item[0] - pivot)) for k, q in self._queues.items()}
            stamps = [t for t, _ in chosen.values()]
            if max(stamps) - min(stamps) <= self._slop_ns:
                return chosen
        return None


__all__ = ["STALE_RUN_RESET", "TIME_JUMP_BACK_NS", "ApproximateTimeSynchronizer", "stamp_to_ns"]
