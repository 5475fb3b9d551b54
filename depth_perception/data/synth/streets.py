"""A Manhattan street grid: streets are bands across x or y; blocks between them are raised by the kerb height.

Everything on the ground has a closed form: a point is on the road when it lies in any band, and the ray caster
finds the kerb faces from the block rectangle a ray lands in (see render.ground_hits).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Bands:
    """Streets crossing one axis, sorted: `centre` on that axis, kerb-to-kerb `half` width, lanes per direction."""

    centre: np.ndarray
    half: np.ndarray
    lanes: np.ndarray
    lane_w: np.ndarray
    parking: np.ndarray  # bool: a parking lane on both sides
    sidewalk: np.ndarray
    crosswalk: np.ndarray  # bool: zebra crossings before the intersections
    dashed_centre: np.ndarray  # bool
    _f32: tuple | None = field(default=None, repr=False)

    def locate(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For coordinates c: index of the nearest street, signed offset from its centre, and inside-band mask."""
        if self._f32 is None:
            mid = 0.5 * (self.centre[1:] + self.centre[:-1])
            self._f32 = (mid.astype(np.float32), self.centre.astype(np.float32), self.half.astype(np.float32))
        mid, centre, half = self._f32
        nearest = np.searchsorted(mid, c.astype(np.float32, copy=False))  # the streets' midpoints split the axis
        offset = c - centre.take(nearest)
        inside = np.abs(offset) < half.take(nearest)
        return nearest, offset, inside

    def block_interval(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The kerb-to-kerb interval [a, b] of the block (between two streets) containing coordinates c."""
        i = np.clip(np.searchsorted(self.centre, c), 1, len(self.centre) - 1)
        a = (self.centre[i - 1] + self.half[i - 1]).astype(c.dtype)
        b = (self.centre[i] - self.half[i]).astype(c.dtype)
        return a, b


@dataclass
class StreetGrid:
    """bands[0]: streets at x = centre (running along y); bands[1]: streets at y = centre (running along x)."""

    bands: tuple[Bands, Bands]
    kerb_h: float
    extent: float

    @classmethod
    def generate(cls, rng: np.random.Generator, extent: float) -> StreetGrid:
        return cls((_bands(rng, extent), _bands(rng, extent)), float(rng.uniform(0.10, 0.16)), extent)

    def on_road(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.bands[0].locate(x)[2] | self.bands[1].locate(y)[2]


def _bands(rng: np.random.Generator, extent: float) -> Bands:
    centres = [float(rng.uniform(-70.0, -20.0))]
    while centres[-1] > -extent:
        centres.append(centres[-1] - float(rng.uniform(55.0, 140.0)))
    centres = centres[::-1]
    while centres[-1] < extent:
        centres.append(centres[-1] + float(rng.uniform(55.0, 140.0)))
    c = np.array(centres)
    n = len(c)
    lanes = rng.choice([1, 1, 2], size=n)
    lane_w = rng.uniform(3.0, 3.6, size=n)
    parking = rng.random(n) < 0.6
    half = lanes * lane_w + parking * 2.2 + 0.3
    return Bands(c, half, lanes, lane_w, parking, rng.uniform(2.5, 4.5, size=n), rng.random(n) < 0.5,
                 (lanes == 1) & (rng.random(n) < 0.7))
