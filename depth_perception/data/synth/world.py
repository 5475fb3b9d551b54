"""A procedural city from a seed: street grid, buildings, trees, poles, signs, parked and moving cars, sun and sky.

All solid objects are axis-aligned boxes, vertical cylinders or spheres (the street grid is axis-aligned and cars
drive straight along it), kept in one `Objects` table that the ray caster reads column-wise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .streets import StreetGrid
from .trajectory import EgoMotion, plan_route

BOX, CYLINDER, SPHERE = 0, 1, 2

# Materials: texture index (textures.TEXTURE_NAMES), metres per texel, tint RGB, texture contrast, LiDAR reflectance.
ASPHALT, PAINT, SIDEWALK, KERB, GRASS, BRICK, PLASTER, GLASS, CAR_PAINT, TYRE, METAL, BARK, FOLIAGE, SIGN, \
    POSTER, CABIN = range(16)
MATERIALS = {
    ASPHALT: (0, 0.004, (0.30, 0.30, 0.31), 0.7, 0.12),
    PAINT: (0, 0.004, (0.85, 0.85, 0.80), 0.15, 0.55),
    SIDEWALK: (1, 0.005, (0.62, 0.60, 0.57), 0.6, 0.25),
    KERB: (3, 0.003, (0.70, 0.70, 0.68), 0.8, 0.30),
    GRASS: (2, 0.004, (0.30, 0.42, 0.18), 0.9, 0.45),
    BRICK: (1, 0.0035, (0.60, 0.35, 0.28), 0.9, 0.30),
    PLASTER: (3, 0.006, (0.80, 0.75, 0.65), 0.6, 0.35),
    GLASS: (0, 0.01, (0.14, 0.17, 0.21), 0.25, 0.05),
    CAR_PAINT: (3, 0.01, (0.5, 0.5, 0.5), 0.25, 0.40),
    TYRE: (0, 0.003, (0.08, 0.08, 0.08), 0.4, 0.10),
    METAL: (3, 0.004, (0.55, 0.56, 0.58), 0.4, 0.50),
    BARK: (0, 0.003, (0.35, 0.27, 0.20), 0.9, 0.30),
    FOLIAGE: (2, 0.003, (0.20, 0.35, 0.12), 1.0, 0.40),
    SIGN: (5, 0.002, (0.85, 0.85, 0.90), 0.8, 0.90),
    POSTER: (4, 0.004, (0.85, 0.82, 0.80), 1.0, 0.30),
    CABIN: (0, 0.01, (0.14, 0.17, 0.21), 0.25, 0.05),  # glass sides, painted roof (shading decides per face)
}
MAT_TEXTURE = np.array([MATERIALS[m][0] for m in range(len(MATERIALS))], np.int32)
MAT_SCALE = np.array([MATERIALS[m][1] for m in range(len(MATERIALS))], np.float32)
MAT_TINT = np.array([MATERIALS[m][2] for m in range(len(MATERIALS))], np.float32)
MAT_CONTRAST = np.array([MATERIALS[m][3] for m in range(len(MATERIALS))], np.float32)
MAT_REFLECTANCE = np.array([MATERIALS[m][4] for m in range(len(MATERIALS))], np.float32)

CAR_COLOURS = np.array([(0.75, 0.75, 0.77), (0.12, 0.12, 0.13), (0.55, 0.1, 0.08), (0.15, 0.2, 0.45),
                        (0.45, 0.47, 0.5), (0.85, 0.85, 0.82), (0.2, 0.35, 0.25), (0.6, 0.55, 0.4)], np.float32)
FACADE_COLOURS = np.array([(0.85, 0.78, 0.65), (0.9, 0.88, 0.82), (0.7, 0.72, 0.75), (0.8, 0.6, 0.45),
                           (0.65, 0.7, 0.6), (0.75, 0.55, 0.5)], np.float32)
BRICK_COLOURS = np.array([(0.62, 0.34, 0.26), (0.55, 0.42, 0.33), (0.7, 0.5, 0.4), (0.5, 0.3, 0.25)], np.float32)


@dataclass
class Objects:
    """Primitives column-wise: kind, axis-aligned bounds (of the cylinder or sphere too), material, tint, uv offset,
    and window layout (spacing, floor height, window width, window height; 0 = no windows)."""

    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    lo: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    hi: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    material: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    tint: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    uv_off: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    windows: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    def __len__(self) -> int:
        return len(self.kind)

    @classmethod
    def concat(cls, parts: list[Objects]) -> Objects:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("kind", "lo", "hi", "material", "tint", "uv_off", "windows")))

    def subset(self, index: np.ndarray) -> Objects:
        return Objects(self.kind[index], self.lo[index], self.hi[index], self.material[index], self.tint[index],
                       self.uv_off[index], self.windows[index])


class _Builder:
    """Collects primitives as rows, then packs them into an Objects table."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rows: list[tuple] = []

    def add(self, kind: int, lo, hi, material: int, tint=None, windows=(0, 0, 0, 0)) -> None:
        tint = MAT_TINT[material] if tint is None else tint
        uv = self.rng.uniform(0, 50, 2)
        self.rows.append((kind, lo, hi, material, tint, uv, windows))

    def cylinder(self, x: float, y: float, r: float, z0: float, z1: float, material: int, tint=None) -> None:
        self.add(CYLINDER, (x - r, y - r, z0), (x + r, y + r, z1), material, tint)

    def sphere(self, x: float, y: float, z: float, r: float, material: int, tint=None) -> None:
        self.add(SPHERE, (x - r, y - r, z - r), (x + r, y + r, z + r), material, tint)

    def build(self) -> Objects:
        if not self.rows:
            return Objects()
        cols = list(zip(*self.rows, strict=True))
        return Objects(np.array(cols[0], np.int8), np.array(cols[1], np.float32), np.array(cols[2], np.float32),
                       np.array(cols[3], np.int16), np.array(cols[4], np.float32), np.array(cols[5], np.float32),
                       np.array(cols[6], np.float32))


def car_boxes(b: _Builder, x: float, y: float, along: int, length: float, width: float, colour, van: bool) -> None:
    """A car as boxes: two axles with wheels, the body, a glass cabin; `along` is the axis the car points along."""
    def box(c_along: float, c_across: float, half_along: float, half_across: float, z0: float, z1: float,
            material: int, tint=None) -> None:
        lo, hi = [0.0, 0.0, z0], [0.0, 0.0, z1]
        centre = (x, y)
        lo[along], hi[along] = centre[along] + c_along - half_along, centre[along] + c_along + half_along
        across = centre[1 - along] + c_across
        lo[1 - along], hi[1 - along] = across - half_across, across + half_across
        b.add(BOX, lo, hi, material, tint)

    hl, hw = length / 2, width / 2
    for axle in (hl - 0.8, -hl + 0.8):
        box(axle, 0.0, 0.32, hw - 0.03, 0.0, 0.64, TYRE)
    if van:
        box(0.0, 0.0, hl, hw, 0.35, 2.3, CAR_PAINT, colour)
        box(hl - 0.01, 0.0, 0.02, hw - 0.15, 1.3, 2.0, CABIN)  # windscreen
        return
    body_top = 0.35 + b.rng.uniform(0.6, 0.75)
    box(0.0, 0.0, hl, hw, 0.35, body_top, CAR_PAINT, colour)
    box(-0.08 * length, 0.0, 0.27 * length, hw - 0.08, body_top, body_top + b.rng.uniform(0.42, 0.55), CABIN, colour)


@dataclass
class MovingCars:
    """Cars driving straight along streets: position at time t is start + direction * speed * t."""

    start: np.ndarray  # (n, 2)
    along: np.ndarray  # (n,) axis of travel
    direction: np.ndarray  # (n,) +1 / -1
    speed: np.ndarray
    length: np.ndarray
    width: np.ndarray
    colour: np.ndarray
    van: np.ndarray
    seed: int
    _boxes: Objects | None = field(default=None, repr=False)
    _owner: np.ndarray | None = field(default=None, repr=False)

    def positions(self, t: float | np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        pos = np.repeat(self.start[None], t.size, 0) if t.ndim else self.start.copy()
        step = self.direction * self.speed * t.reshape(-1, 1) if t.ndim else self.direction * self.speed * t
        idx = np.arange(len(self.start))
        if t.ndim:
            pos[:, idx, self.along] += step
        else:
            pos[idx, self.along] += step
        return pos

    def objects(self, t: float, near: tuple[float, float] = (0.0, 0.0), radius: float = np.inf) -> Objects:
        """The cars at time t within `radius` metres of `near`, as boxes (each car keeps its look over time)."""
        if self._boxes is None:
            b = _Builder(np.random.default_rng([self.seed, 99]))
            owner = []
            for k in range(len(self.start)):
                before = len(b.rows)
                car_boxes(b, self.start[k, 0], self.start[k, 1], int(self.along[k]), float(self.length[k]),
                          float(self.width[k]), self.colour[k], bool(self.van[k]))
                owner += [k] * (len(b.rows) - before)
            self._boxes, self._owner = b.build(), np.array(owner, np.int64)
        pos = self.positions(t)
        shift = (pos - self.start)[self._owner].astype(np.float32)
        keep = np.hypot(pos[:, 0] - near[0], pos[:, 1] - near[1])[self._owner] < radius
        boxes = self._boxes.subset(keep)
        boxes.lo = boxes.lo.copy()
        boxes.hi = boxes.hi.copy()
        boxes.lo[:, :2] += shift[keep]
        boxes.hi[:, :2] += shift[keep]
        return boxes


@dataclass
class World:
    """Everything that a seed decides: streets, static objects, moving cars, the ego's motion, sun and sky."""

    seed: int
    grid: StreetGrid
    static: Objects
    cars: MovingCars
    ego: EgoMotion
    sun: np.ndarray  # unit vector towards the sun
    sun_colour: np.ndarray
    ambient: np.ndarray
    sky_zenith: np.ndarray
    sky_horizon: np.ndarray
    haze_m: float

    def objects_at(self, t: float, near: tuple[float, float] = (0.0, 0.0), radius: float = np.inf) -> Objects:
        """Static objects and the moving cars at time t (cars only within `radius` of `near`)."""
        return Objects.concat([self.static, self.cars.objects(t, near, radius)])


def _rand_car(rng: np.random.Generator) -> tuple[float, float, np.ndarray, bool]:
    van = bool(rng.random() < 0.12)
    length = float(rng.uniform(5.0, 6.5) if van else rng.uniform(3.8, 4.9))
    width = float(rng.uniform(1.95, 2.1) if van else rng.uniform(1.65, 1.9))
    colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))] * rng.uniform(0.85, 1.1)
    return length, width, colour.astype(np.float32), van


def _block_side(b: _Builder, grid: StreetGrid, rect: tuple[float, float, float, float], side: int,
                sidewalk: float) -> None:
    """Buildings, trees, poles and signs along one side of a block; side 0..3 = south, north, west, east."""
    rng, hk = b.rng, grid.kerb_h
    x0, x1, y0, y1 = rect
    along = 0 if side in (0, 1) else 1
    a0, a1 = (x0, x1) if along == 0 else (y0, y1)
    kerb = (y0, y1, x0, x1)[side]
    inward = (1.0, -1.0, 1.0, -1.0)[side]

    def place(a_lo: float, a_hi: float, d_lo: float, d_hi: float) -> tuple[list[float], list[float]]:
        """An along/inward rectangle to world x/y bounds."""
        p, q = kerb + inward * d_lo, kerb + inward * d_hi
        c_lo, c_hi = min(p, q), max(p, q)
        return ([a_lo, c_lo] if along == 0 else [c_lo, a_lo]), ([a_hi, c_hi] if along == 0 else [c_hi, a_hi])

    # Street furniture on the sidewalk, clear of the corners.
    a = a0 + 8.0 + rng.uniform(0, 10)
    while a < a1 - 8.0:
        lo, hi = place(a, a, 0.7, 0.7)
        x, y = lo
        kind = rng.random()
        if kind < 0.45:
            trunk_h, r = rng.uniform(2.2, 3.5), rng.uniform(1.4, 2.6)
            # the crown starts above trunk_h: clear of car roofs and of the cameras when it overhangs the road
            b.cylinder(x, y, rng.uniform(0.12, 0.22), hk, hk + trunk_h + 0.5 * r, BARK)
            b.sphere(x, y, hk + trunk_h + r, r, FOLIAGE, MAT_TINT[FOLIAGE] * rng.uniform(0.75, 1.25, 3))
        elif kind < 0.75:
            h = rng.uniform(6.0, 8.5)
            b.cylinder(x, y, 0.09, hk, hk + h, METAL)
            arm_lo, arm_hi = place(a - 0.1, a + 0.1, -1.8, 0.7)
            b.add(BOX, (arm_lo[0], arm_lo[1], hk + h - 0.25), (arm_hi[0], arm_hi[1], hk + h - 0.05), METAL)
        else:
            b.cylinder(x, y, 0.04, hk, hk + 2.8, METAL)
            s_lo, s_hi = place(a - 0.015, a + 0.015, 0.4, 1.0)
            b.add(BOX, (s_lo[0], s_lo[1], hk + 2.1), (s_hi[0], s_hi[1], hk + 2.75), SIGN,
                  MAT_TINT[SIGN] * rng.uniform(0.6, 1.1, 3))
        a += rng.uniform(9.0, 30.0)

    # Buildings: a row set back behind the sidewalk, with the odd gap (a bush or two in it).
    a = a0 + sidewalk
    while a < a1 - sidewalk - 4.0:
        if rng.random() < 0.15:
            gap = rng.uniform(3.0, 9.0)
            lo, _ = place(a + gap / 2, a + gap / 2, sidewalk + 3.0, sidewalk + 3.0)
            b.sphere(lo[0], lo[1], hk + 0.2, rng.uniform(0.6, 1.3), FOLIAGE)
            a += gap
            continue
        w = min(rng.uniform(8.0, 26.0), a1 - sidewalk - a)
        setback = 0.0 if rng.random() < 0.6 else rng.uniform(1.0, 5.0)
        depth, height = rng.uniform(9.0, 18.0), rng.uniform(5.0, 24.0)
        lo, hi = place(a, a + w, sidewalk + setback, sidewalk + setback + depth)
        if rng.random() < 0.5:
            material, tint = BRICK, BRICK_COLOURS[rng.integers(len(BRICK_COLOURS))] * rng.uniform(0.85, 1.1)
        else:
            material, tint = PLASTER, FACADE_COLOURS[rng.integers(len(FACADE_COLOURS))] * rng.uniform(0.85, 1.1)
        floor_h = rng.uniform(2.8, 3.6)
        spacing = w / max(round(w / rng.uniform(2.4, 4.0)), 1)
        windows = (spacing, floor_h, spacing * rng.uniform(0.35, 0.6), floor_h * rng.uniform(0.4, 0.6))
        b.add(BOX, (lo[0], lo[1], hk), (hi[0], hi[1], hk + height), material, tint, windows)
        if setback > 1.5 and rng.random() < 0.5:
            p, _ = place(a + w / 2, a + w / 2, sidewalk + setback / 2, 0)
            b.sphere(p[0], p[1], hk + 0.3, min(setback / 2, 1.2), FOLIAGE)
        if rng.random() < 0.1 and height > 8:  # a poster on the facade: photographic content at a new scale
            p_lo, p_hi = place(a + 0.2 * w, a + 0.8 * w, sidewalk + setback - 0.08, sidewalk + setback)
            b.add(BOX, (p_lo[0], p_lo[1], hk + 3.5), (p_hi[0], p_hi[1], hk + 3.5 + 0.4 * w), POSTER)
        a += w


def _blocks_near(grid: StreetGrid, xs: np.ndarray, ys: np.ndarray, radius: float) -> list[tuple[int, int]]:
    bx, by = grid.bands
    out = set()
    for x, y in zip(xs, ys, strict=True):
        i0, i1 = np.searchsorted(bx.centre, [x - radius, x + radius])
        j0, j1 = np.searchsorted(by.centre, [y - radius, y + radius])
        for i in range(max(i0, 1), min(i1 + 1, len(bx.centre))):
            for j in range(max(j0, 1), min(j1 + 1, len(by.centre))):
                out.add((i, j))
    return sorted(out)


def _parked_cars(b: _Builder, grid: StreetGrid, axis: int, street: int, a0: float, a1: float) -> None:
    """Cars parked in the parking lanes of one street segment, keeping clear of the intersections."""
    bands = grid.bands[1 - axis]
    if not bands.parking[street]:
        return
    for side in (-1.0, 1.0):
        lateral = bands.centre[street] + side * (bands.half[street] - 0.3 - 1.1)
        a = a0 + 10.0 + b.rng.uniform(0, 6)
        while True:
            length, width, colour, van = _rand_car(b.rng)
            if a + length > a1 - 10.0:
                break
            if b.rng.random() < 0.7:
                c = a + length / 2
                x, y = (c, lateral) if axis == 0 else (lateral, c)
                car_boxes(b, x, y, axis, length, width, colour, van)
            a += length + b.rng.uniform(0.8, 6.0)


def _moving_cars(seed: int, grid: StreetGrid, ego: EgoMotion, times: np.ndarray, region: tuple) -> MovingCars:
    """Traffic in every lane of the streets in the region, minus any car that would come near the ego."""
    rng = np.random.default_rng([seed, 5])
    x_min, x_max, y_min, y_max = region
    rows = []
    for axis in (0, 1):  # axis of travel; the street is a band across the other axis
        bands = grid.bands[1 - axis]
        lo, hi = (y_min, y_max) if axis == 0 else (x_min, x_max)
        a_lo, a_hi = (x_min, x_max) if axis == 0 else (y_min, y_max)
        for k in np.nonzero((bands.centre > lo) & (bands.centre < hi))[0]:
            for direction in (-1, 1):
                for lane in range(int(bands.lanes[k])):
                    right = -direction if axis == 0 else direction
                    lateral = bands.centre[k] + right * (lane + 0.5) * bands.lane_w[k]
                    speed = rng.uniform(6.0, 13.0)
                    reach = speed * times[-1] + 50.0
                    a = a_lo - reach + rng.uniform(0, 40)
                    while a < a_hi + reach:
                        length, width, colour, van = _rand_car(rng)
                        start = (a, lateral) if axis == 0 else (lateral, a)
                        rows.append((start, axis, direction, speed, length, width, colour, van))
                        a += rng.uniform(20.0, 90.0)
    if not rows:
        cols = [np.zeros((0, 2)), np.zeros(0, int), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0),
                np.zeros((0, 3), np.float32), np.zeros(0, bool)]
    else:
        cols = [np.array(c) for c in zip(*rows, strict=True)]
    cars = MovingCars(*cols, seed=seed)
    ex, ey, _ = ego.state(times)
    pos = cars.positions(times)  # (T, n, 2)
    dist = np.hypot(pos[..., 0] - ex[:, None], pos[..., 1] - ey[:, None]).min(axis=0)
    keep = dist > 7.0
    return MovingCars(*(getattr(cars, f)[keep] for f in ("start", "along", "direction", "speed", "length", "width",
                                                           "colour", "van")), seed=seed)


def build_world(seed: int, duration_s: float, view_m: float = 250.0) -> World:
    """The world for `seed`, with a route long enough to drive for `duration_s` seconds."""
    rng = np.random.default_rng([seed, 1])
    extent = 400.0 + 16.0 * duration_s
    grid = StreetGrid.generate(rng, extent)
    route = plan_route(grid, np.random.default_rng([seed, 2]), length=15.0 * duration_s + 40.0)
    ego = EgoMotion.drive(route, np.random.default_rng([seed, 3]))
    if ego.duration < duration_s:
        raise ValueError(f"seed {seed}: route lasts {ego.duration:.1f} s, need {duration_s:.1f} s")
    times = np.linspace(0.0, duration_s, max(int(duration_s * 10) + 1, 2))
    ex, ey, _ = ego.state(times)
    statics = []
    for i, j in _blocks_near(grid, ex[::10], ey[::10], view_m):
        b = _Builder(np.random.default_rng([seed, 4, i, j]))
        bx, by = grid.bands
        rect = (bx.centre[i - 1] + bx.half[i - 1], bx.centre[i] - bx.half[i],
                by.centre[j - 1] + by.half[j - 1], by.centre[j] - by.half[j])
        sidewalks = (by.sidewalk[j - 1], by.sidewalk[j], bx.sidewalk[i - 1], bx.sidewalk[i])
        for side in range(4):
            _block_side(b, grid, rect, side, float(sidewalks[side]))
        # parked cars along the block's south and west streets (each street segment once)
        _parked_cars(b, grid, 0, j - 1, rect[0], rect[1])
        _parked_cars(b, grid, 1, i - 1, rect[2], rect[3])
        statics.append(b.build())
    static = Objects.concat(statics)
    # Parked cars on the ego's own path (it turns across parking lanes) are removed.
    centre = 0.5 * (static.lo + static.hi)
    near_path = np.zeros(len(static), bool)
    for k in range(0, len(ex)):
        near_path |= np.hypot(centre[:, 0] - ex[k], centre[:, 1] - ey[k]) < 3.5
    is_car = np.isin(static.material, (CAR_PAINT, TYRE, CABIN))
    static = static.subset(~(near_path & is_car))
    region = (ex.min() - view_m, ex.max() + view_m, ey.min() - view_m, ey.max() + view_m)
    cars = _moving_cars(seed, grid, ego, times, region)
    sun_elev, sun_az = np.deg2rad(rng.uniform(25, 65)), rng.uniform(0, 2 * np.pi)
    sun = np.array([np.cos(sun_elev) * np.cos(sun_az), np.cos(sun_elev) * np.sin(sun_az), np.sin(sun_elev)])
    warm = rng.uniform(0.9, 1.0)
    return World(
        seed=seed, grid=grid, static=static, cars=cars, ego=ego, sun=sun.astype(np.float32),
        sun_colour=np.array([1.0, warm, warm ** 2], np.float32) * rng.uniform(0.75, 0.95),
        ambient=np.array([0.36, 0.38, 0.44], np.float32) * rng.uniform(0.8, 1.1),
        sky_zenith=np.array([0.35, 0.52, 0.82], np.float32) * rng.uniform(0.85, 1.1),
        sky_horizon=np.array([0.82, 0.86, 0.92], np.float32) * rng.uniform(0.9, 1.05),
        haze_m=float(rng.uniform(400, 900)),
    )
