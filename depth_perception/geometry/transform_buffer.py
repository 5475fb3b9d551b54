"""A small tf2-style transform buffer: static and time-stamped transforms on a tree of frames, chain lookups,
interpolation between stamps (slerp rotation, lerp translation); numeric, no ROS.

Each child frame has one parent, as in tf2. `lookup(target, source, t)` walks from both frames up to their common
ancestor and returns T_target_source (p_target = T @ p_source). A time of None or 0 means "latest": the newest time
at which every time-stamped link on the chain has data, as tf2 does. Times outside a link's cached range raise
LookupError rather than extrapolate.
"""
from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

import numpy as np

from .se3 import make_transform, matrix_to_quaternion, quaternion_slerp, quaternion_to_matrix


@dataclass
class _Link:
    """The transform from `parent` to one child frame: a single static one, or a time-ordered history."""

    parent: str
    static: bool
    stamps: list[int] = field(default_factory=list)
    translations: list[np.ndarray] = field(default_factory=list)
    rotations: list[np.ndarray] = field(default_factory=list)  # quaternions (x, y, z, w)

    def at(self, stamp_ns: int, child: str) -> np.ndarray:
        """T_parent_child at `stamp_ns` (any time for a static link); LookupError outside the cached range."""
        if self.static:
            return make_transform(quaternion_to_matrix(self.rotations[0]), self.translations[0])
        first, last = self.stamps[0], self.stamps[-1]
        if stamp_ns < first or stamp_ns > last:
            raise LookupError(
                f"time {stamp_ns} ns is outside the buffer for '{self.parent}' -> '{child}', "
                f"which holds [{first}, {last}] ns"
            )
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if self.stamps[i] == stamp_ns:
            return make_transform(quaternion_to_matrix(self.rotations[i]), self.translations[i])
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        a = (stamp_ns - t0) / (t1 - t0)
        q = quaternion_slerp(self.rotations[i - 1], self.rotations[i], a)
        t = (1.0 - a) * self.translations[i - 1] + a * self.translations[i]
        return make_transform(quaternion_to_matrix(q), t)


class TransformBuffer:
    """Static and time-stamped transforms between named frames; thread-safe (a TF callback fills it while
    other callbacks look up)."""

    def __init__(self, cache_time_s: float = 10.0) -> None:
        if not cache_time_s > 0:
            raise ValueError(f"cache_time_s must be positive, got {cache_time_s}")
        self.cache_time_ns = int(cache_time_s * 1e9)
        self._links: dict[str, _Link] = {}
        self._lock = threading.Lock()

    def set_transform(self, T_parent_child: np.ndarray, parent: str, child: str, stamp_ns: int,
                      static: bool = False) -> None:
        """Add T_parent_child (4x4) at `stamp_ns`; a static transform holds at all times and replaces the last one.

        A child that gets a new parent is re-parented (its history restarts), as tf2 allows. ValueError for a
        malformed matrix, an empty or equal frame name, or a link that would close a loop in the tree.
        """
        T = np.asarray(T_parent_child, dtype=np.float64)
        if T.shape != (4, 4) or not np.isfinite(T).all():
            raise ValueError(f"transform {parent!r} -> {child!r} must be a finite 4x4 matrix, got shape {T.shape}")
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child:
            raise ValueError(f"frame names must not be empty (parent={parent!r}, child={child!r})")
        if parent == child:
            raise ValueError(f"transform from frame {parent!r} to itself")
        stamp_ns = int(stamp_ns)
        q = matrix_to_quaternion(T[:3, :3])
        with self._lock:
            if child in self._ancestors(parent):
                raise ValueError(f"transform {parent!r} -> {child!r} would close a loop: {parent!r} is below {child!r}")
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static or static:
                link = self._links[child] = _Link(parent, static)
            i = bisect.bisect_left(link.stamps, stamp_ns)
            if i < len(link.stamps) and link.stamps[i] == stamp_ns:  # the same stamp again: newest data wins
                link.translations[i], link.rotations[i] = T[:3, 3].copy(), q
            else:
                link.stamps.insert(i, stamp_ns)
                link.translations.insert(i, T[:3, 3].copy())
                link.rotations.insert(i, q)
            if not static:
                cut = bisect.bisect_left(link.stamps, link.stamps[-1] - self.cache_time_ns)
                del link.stamps[:cut], link.translations[:cut], link.rotations[:cut]

    def frames(self) -> set[str]:
        """Every frame named so far, parents and children."""
        with self._lock:
            return set(self._links) | {link.parent for link in self._links.values()}

    def clear(self) -> None:
        with self._lock:
            self._links.clear()

    def lookup(self, target: str, source: str, stamp_ns: int | None = None) -> np.ndarray:
        """T_target_source (4x4 float64) at `stamp_ns` (None or 0: latest common time); LookupError naming the
        unknown frame, the unconnected pair, or the time outside the buffer."""
        target, source = target.lstrip("/"), source.lstrip("/")
        with self._lock:
            up_source, up_target = self._chain(source), self._chain(target)
            # Common ancestor: the first frame on the source's way up that is also on the target's.
            on_target = {frame: k for k, frame in enumerate(up_target)}
            common = next((k for k, frame in enumerate(up_source) if frame in on_target), None)
            if common is None:
                raise LookupError(
                    f"frames '{target}' and '{source}' are not connected: their roots are "
                    f"'{up_target[-1]}' and '{up_source[-1]}'"
                )
            source_links = up_source[:common]  # child frames whose links lead up to the ancestor
            target_links = up_target[:on_target[up_source[common]]]
            if not stamp_ns:
                stamp_ns = self._latest_common(source_links + target_links)
            T_anc_source = np.eye(4)
            for child in source_links:
                T_anc_source = self._links[child].at(stamp_ns, child) @ T_anc_source
            T_anc_target = np.eye(4)
            for child in target_links:
                T_anc_target = self._links[child].at(stamp_ns, child) @ T_anc_target
        R, t = T_anc_target[:3, :3], T_anc_target[:3, 3]
        T_target_anc = make_transform(R.T, -R.T @ t)
        return T_target_anc @ T_anc_source

    def can_transform(self, target: str, source: str, stamp_ns: int | None = None) -> bool:
        try:
            self.lookup(target, source, stamp_ns)
        except LookupError:
            return False
        return True

    def _ancestors(self, frame: str) -> list[str]:
        chain = [frame]
        while chain[-1] in self._links:
            chain.append(self._links[chain[-1]].parent)
        return chain

    def _chain(self, frame: str) -> list[str]:
        """The frame and its ancestors up to the root; LookupError for a frame nobody has mentioned."""
        if frame not in self._links and all(link.parent != frame for link in self._links.values()):
            known = sorted(set(self._links) | {link.parent for link in self._links.values()})
            raise LookupError(f"unknown frame '{frame}' (known frames: {', '.join(known) or 'none'})")
        return self._ancestors(frame)

    def _latest_common(self, children: list[str]) -> int:
        """The newest time every time-stamped link in the chain covers (tf2's time 0); 0 if all are static."""
        dynamic = [self._links[c] for c in children if not self._links[c].static]
        if not dynamic:
            return 0
        newest = min(link.stamps[-1] for link in dynamic)
        oldest = max(link.stamps[0] for link in dynamic)
        if oldest > newest:
            raise LookupError(
                "no common time on the chain: the links' buffered times do not overlap "
                f"(latest common {newest} ns < earliest common {oldest} ns)"
            )
        return newest
