"""The ego vehicle's route through the street grid: lanes, filleted turns, stops, and a smooth speed profile."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .streets import StreetGrid

STEP_M = 0.1  # arc-length sampling of the route
A_LAT = 2.2  # m/s^2 lateral acceleration allowed in a turn
A_ACC = 1.4  # m/s^2
A_DEC = 2.2  # m/s^2


@dataclass
class Route:
    """A route sampled every STEP_M metres: positions, headings, the speed limit along it, stops (s, dwell s)."""

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    v_max: np.ndarray
    stops: list[tuple[float, float]]


def _heading(axis: int, sign: int) -> np.ndarray:
    h = np.zeros(2)
    h[axis] = sign
    return h


def _lane_coord(grid: StreetGrid, axis: int, street: int, sign: int, lane: int) -> float:
    """Lateral coordinate of a lane's centre line: right-hand traffic, lane 0 beside the centre line."""
    bands = grid.bands[1 - axis]  # a street running along `axis` is a band across the other axis
    offset = (lane + 0.5) * bands.lane_w[street]
    # Facing +x the right side is -y; facing +y the right side is +x.
    right = -sign if axis == 0 else sign
    return float(bands.centre[street] + right * offset)


def plan_route(grid: StreetGrid, rng: np.random.Generator, length: float) -> Route:
    """A route at least `length` m long: lane keeping, turns at intersections, some stops before them."""
    axis = 0
    street = int(np.argmin(np.abs(grid.bands[1].centre)))
    sign = int(rng.choice([-1, 1]))
    lane = int(rng.integers(0, grid.bands[1].lanes[street]))
    cross = grid.bands[0]
    # Start in the middle of the block around x = 0.
    i = int(np.searchsorted(cross.centre, 0.0))
    start_along = 0.5 * (cross.centre[max(i - 1, 0)] + cross.centre[min(i, len(cross.centre) - 1)])
    pos = np.zeros(2)
    pos[axis] = start_along
    pos[1 - axis] = _lane_coord(grid, axis, street, sign, lane)
    points = [pos.copy()]
    radii: list[float] = []
    stop_points: list[tuple[np.ndarray, float]] = []
    total = 0.0
    while total < length:
        cross = grid.bands[axis]  # streets crossing ours are bands along our axis of travel
        ahead = sign * (cross.centre - pos[axis]) - cross.half
        candidates = np.nonzero(ahead > 20.0)[0]
        if len(candidates) == 0:
            raise ValueError("route left the street grid; make the grid larger")
        k = candidates[np.argmin(ahead[candidates])]
        centre = cross.centre[k]
        if rng.random() < 0.3:
            stop = pos.copy()
            stop[axis] = centre - sign * (cross.half[k] + 4.0)
            stop_points.append((stop, float(rng.uniform(1.0, 4.0))))
        action = rng.choice(["straight", "left", "right"], p=[0.5, 0.25, 0.25])
        if action == "straight":
            nxt = pos.copy()
            nxt[axis] = centre + sign * (cross.half[k] + 1.0)
            total += abs(nxt[axis] - pos[axis])
            pos = nxt
            continue
        h = _heading(axis, sign)
        h_new = np.array([-h[1], h[0]]) if action == "left" else np.array([h[1], -h[0]])
        new_axis = int(np.argmax(np.abs(h_new)))
        new_sign = int(np.sign(h_new[new_axis]))
        new_lane = int(rng.integers(0, cross.lanes[k]))
        corner = pos.copy()
        corner[axis] = _lane_coord(grid, new_axis, k, new_sign, new_lane)
        if action == "right":
            # Stay off the (square) kerb corner: the arc passes 0.293 r from the corner point.
            own = grid.bands[1 - axis]
            kerb_gap = min(cross.half[k] - abs(corner[axis] - centre),
                           own.half[street] - abs(corner[1 - axis] - own.centre[street]))
            r = min(float(rng.uniform(6.0, 9.0)), (kerb_gap - 0.8) / 0.293)
            r = max(r, 3.0)
        else:
            r = float(rng.uniform(9.0, 14.0))
        total += abs(corner[axis] - pos[axis])
        points.append(corner.copy())
        radii.append(r)
        pos = corner
        axis, sign, street, lane = new_axis, new_sign, int(k), new_lane
    end = pos.copy()
    end[axis] += sign * 30.0
    points.append(end)
    return _sample_route(points, radii, stop_points)


def _sample_route(points: list[np.ndarray], radii: list[float], stops: list[tuple[np.ndarray, float]]) -> Route:
    """Straight legs between the corner points with each corner replaced by a tangent arc of its radius."""
    xs, ys, yaws, vmax = [], [], [], []
    cur = points[0]
    for i in range(1, len(points)):
        p = points[i]
        h = (p - cur) / np.linalg.norm(p - cur)
        if i < len(points) - 1:
            r = radii[i - 1]
            leg_end = p - r * h
        else:
            r, leg_end = 0.0, p
        n = max(int(np.linalg.norm(leg_end - cur) / STEP_M), 1)
        f = np.arange(n) / n
        xs.append(cur[0] + f * (leg_end[0] - cur[0]))
        ys.append(cur[1] + f * (leg_end[1] - cur[1]))
        yaws.append(np.full(n, np.arctan2(h[1], h[0])))
        vmax.append(np.full(n, np.inf))
        if i < len(points) - 1:
            h2 = points[i + 1] - p
            h2 /= np.linalg.norm(h2)
            turn = np.sign(h[0] * h2[1] - h[1] * h2[0])  # +1 left, -1 right
            centre = leg_end + r * turn * np.array([-h[1], h[0]])
            a0 = np.arctan2(leg_end[1] - centre[1], leg_end[0] - centre[0])
            m = max(int(r * np.pi / 2 / STEP_M), 2)
            a = a0 + turn * np.arange(m) / m * np.pi / 2
            xs.append(centre[0] + r * np.cos(a))
            ys.append(centre[1] + r * np.sin(a))
            yaws.append(np.arctan2(h[1], h[0]) + turn * np.arange(m) / m * np.pi / 2)
            vmax.append(np.full(m, np.sqrt(A_LAT * r)))
            cur = p + r * h2
    x, y = np.concatenate(xs), np.concatenate(ys)
    yaw = np.unwrap(np.concatenate(yaws))
    s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    stop_s = []
    for point, dwell in stops:
        j = int(np.argmin(np.hypot(x - point[0], y - point[1])))
        stop_s.append((float(s[j]), dwell))
    return Route(s, x, y, yaw, np.concatenate(vmax), stop_s)


@dataclass
class EgoMotion:
    """Position along the route as a function of time: s(t) sampled on the route's arc-length grid."""

    route: Route
    t_of_s: np.ndarray  # knot times (increasing) ...
    s_knots: np.ndarray  # ... and the arc length reached at each

    @classmethod
    def drive(cls, route: Route, rng: np.random.Generator, cruise: float | None = None) -> EgoMotion:
        """A speed profile under the route's limits: cruise 7-14 m/s, accelerate and brake smoothly, stop and wait."""
        cruise = float(rng.uniform(7.0, 14.0)) if cruise is None else cruise
        v = np.minimum(route.v_max, cruise)
        for s_stop, _ in route.stops:
            v[np.argmin(np.abs(route.s - s_stop))] = 0.0
        start_speed = 0.0 if rng.random() < 0.3 else cruise
        v[0] = min(v[0], start_speed)
        ds = np.diff(route.s)
        for i in range(1, len(v)):  # forward: acceleration limit
            v[i] = min(v[i], np.sqrt(v[i - 1] ** 2 + 2 * A_ACC * ds[i - 1]))
        for i in range(len(v) - 2, -1, -1):  # backward: braking limit
            v[i] = min(v[i], np.sqrt(v[i + 1] ** 2 + 2 * A_DEC * ds[i]))
        v_mid = np.maximum(0.5 * (v[1:] + v[:-1]), 0.05)
        t = np.concatenate([[0.0], np.cumsum(ds / v_mid)])
        s = route.s.copy()
        # Waiting at a stop: the same s twice, `dwell` seconds apart.
        for s_stop, dwell in sorted(route.stops, reverse=True):
            j = int(np.argmin(np.abs(s - s_stop)))
            t[j + 1:] += dwell
            t = np.insert(t, j + 1, t[j] + dwell)
            s = np.insert(s, j + 1, s[j])
        return cls(route, t, s)

    @property
    def duration(self) -> float:
        return float(self.t_of_s[-1])

    def state(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, yaw) at times t (seconds from the start)."""
        t = np.asarray(t, dtype=np.float64)
        if np.any(t > self.duration):
            raise ValueError(f"time {float(t.max()):.2f} s is past the end of the route ({self.duration:.2f} s)")
        s = np.interp(t, self.t_of_s, self.s_knots)
        r = self.route
        return np.interp(s, r.s, r.x), np.interp(s, r.s, r.y), np.interp(s, r.s, r.yaw)
