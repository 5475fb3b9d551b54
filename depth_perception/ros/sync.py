"""An approximate-time synchronizer of our own (message_filters is not a pip wheel): newest complete set wins.

Messages arrive per input key with their header stamp. A set is complete when every key has a message and all
stamps of the set lie within `slop_s` of each other. The newest complete set is handed to the callback and every
message at or before it is dropped, so a slow consumer never works through a backlog (DESIGN.md §4).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from typing import Any

# A stamp this far before the last matched set means time jumped back (a bag loop, a restarted sensor driver).
TIME_JUMP_BACK_NS = 1_000_000_000


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (sec, nanosec) -> int nanoseconds."""
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
        self.matched = 0
        self.dropped = 0  # messages discarded without being part of a delivered set

    @property
    def slop_s(self) -> float:
        return self._slop_ns / 1e9

    @slop_s.setter
    def slop_s(self, value: float) -> None:
        if not value >= 0:
            raise ValueError(f"slop_s must be >= 0 seconds, got {value}")
        self._slop_ns = int(round(value * 1e9))

    def reset(self) -> None:
        with self._lock:
            self.dropped += sum(len(q) for q in self._queues.values())
            for q in self._queues.values():
                q.clear()
            self._last_matched_ns = None

    def add(self, key: Hashable, msg: Any, stamp_ns: int | None = None) -> bool:
        """Queue `msg` (its header stamp unless `stamp_ns` is given); True if it completed a set."""
        if key not in self._queues:
            raise KeyError(f"unknown synchronizer input {key!r}; inputs are {list(self.keys)}")
        stamp = stamp_to_ns(msg.header.stamp) if stamp_ns is None else int(stamp_ns)
        with self._lock:
            if self._last_matched_ns is not None and stamp < self._last_matched_ns - TIME_JUMP_BACK_NS:
                self.dropped += sum(len(q) for q in self._queues.values())
                for q in self._queues.values():
                    q.clear()
                self._last_matched_ns = None
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


__all__ = ["TIME_JUMP_BACK_NS", "ApproximateTimeSynchronizer", "stamp_to_ns"]
