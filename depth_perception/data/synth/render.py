"""CPU ray casting of the synthetic world: closed-form ground and kerbs, primitives tested only inside their
screen-space rectangles, then deferred shading (textures, window and lane-marking coverage, Lambert + ambient).

A `RayGrid` is a 2-D array of rays from one origin (a pinhole camera's pixels, or a spinning LiDAR's beams x
azimuths) that knows how to bound an axis-aligned box by a rectangle of its rays. Casting fills, per ray, the
distance `t` along the (not necessarily unit) direction, the object hit (-1 = ground, -2 = nothing) and a ground code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry.camera import PinholeCamera
from . import world as W
from .textures import TextureAtlas

NOTHING, GROUND = -2, -1
G_NONE, G_ROAD, G_TOP, G_KERB_X, G_KERB_Y = 0, 1, 2, 3, 4
# The 12 edges of a box whose corner i has x = bit 0, y = bit 1, z = bit 2.
_EDGES = np.array([(a, a | b) for a in range(8) for b in (1, 2, 4) if not a & b])
_CORNER_BITS = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], bool)


def box_corners(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(n, 8, 3) corners of boxes given by their lo, hi (n, 3)."""
    return np.where(_CORNER_BITS[None], hi[:, None, :], lo[:, None, :])


class RayGrid:
    """Rays from `origin` (world, float64) along `dirs` (H, W, 3) world directions, float32."""

    def __init__(self, origin: np.ndarray, dirs: np.ndarray, max_t: float) -> None:
        self.origin = np.asarray(origin, np.float64)
        self.dirs = np.ascontiguousarray(dirs, dtype=np.float32)
        d = np.moveaxis(self.dirs, -1, 0)
        safe = np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)
        self.d = d  # (3, H, W) views
        self.inv = (np.float32(1.0) / safe).astype(np.float32)
        self.dd = np.einsum("khw,khw->hw", d, d)
        self.max_len = float(np.sqrt(self.dd.max()))  # the longest direction: t >= distance / max_len
        self.max_t = max_t
        self.shape = self.dirs.shape[:2]

    def rects(self, lo: np.ndarray, hi: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
        raise NotImplementedError


_DIRS_CAM: dict[PinholeCamera, np.ndarray] = {}


class CameraRays(RayGrid):
    """A pinhole camera's pixel rays: directions with camera z = 1, so `t` is the depth z."""

    def __init__(self, camera: PinholeCamera, T_world_cam: np.ndarray, max_t: float = 400.0) -> None:
        self.camera = camera
        self.R = np.asarray(T_world_cam, np.float64)[:3, :3]
        dc = _DIRS_CAM.get(camera)
        if dc is None:
            u = (np.arange(camera.width, dtype=np.float32) - camera.cx) / camera.fx
            v = (np.arange(camera.height, dtype=np.float32) - camera.cy) / camera.fy
            dc = np.empty((camera.height, camera.width, 3), np.float32)
            dc[..., 0] = u[None, :]
            dc[..., 1] = v[:, None]
            dc[..., 2] = 1.0
            _DIRS_CAM[camera] = dc
        self.dirs_cam = dc
        super().__init__(np.asarray(T_world_cam)[:3, 3], dc @ self.R.T.astype(np.float32), max_t)
        self.pixel_m = 1.0 / camera.fx  # metres per pixel at 1 m
        self.spacing = self.pixel_m

    def rects(self, lo: np.ndarray, hi: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
        """Pixel rectangles holding each box's projection (the box clipped at the near plane)."""
        near = 0.05
        c = (box_corners(lo, hi) - self.origin) @ self.R  # (n, 8, 3) camera frame
        z = c[..., 2]
        cam = self.camera
        p0, p1 = c[:, _EDGES[:, 0]], c[:, _EDGES[:, 1]]
        z0, z1 = p0[..., 2], p1[..., 2]
        cross = (z0 - near) * (z1 - near) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(cross, (near - z0) / np.where(cross, z1 - z0, 1.0), 0.0)
        clip = p0 + f[..., None] * (p1 - p0)
        pts = np.concatenate([c, clip], axis=1)
        valid = np.concatenate([z > near, cross], axis=1)
        zz = np.where(valid, pts[..., 2], 1.0)
        u = cam.fx * pts[..., 0] / zz + cam.cx
        v = cam.fy * pts[..., 1] / zz + cam.cy
        inf = np.float64(np.inf)
        u0 = np.where(valid, u, inf).min(1)
        u1 = np.where(valid, u, -inf).max(1)
        v0 = np.where(valid, v, inf).min(1)
        v1 = np.where(valid, v, -inf).max(1)
        seen = valid.any(1)
        r0 = np.clip(np.floor(np.where(seen, v0, 0)), 0, cam.height).astype(int)
        r1 = np.clip(np.ceil(np.where(seen, v1, 0)) + 1, 0, cam.height).astype(int)
        c0 = np.clip(np.floor(np.where(seen, u0, 0)), 0, cam.width).astype(int)
        c1 = np.clip(np.ceil(np.where(seen, u1, 0)) + 1, 0, cam.width).astype(int)
        ok = seen & (r1 > r0) & (c1 > c0)
        return [[(a, b, c, d)] if k else [] for a, b, c, d, k in
                zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist(), ok.tolist(), strict=True)]


class SpinningRays(RayGrid):
    """A spinning LiDAR: rows are beams (elevations, descending), columns azimuths from -pi; unit directions."""

    def __init__(self, elevations: np.ndarray, azimuths: int, T_world_sensor: np.ndarray,
                 max_t: float = 120.0) -> None:
        self.elev = np.asarray(elevations, np.float64)
        self.n_az = azimuths
        self.az_step = 2 * np.pi / azimuths
        self.spacing = self.az_step
        az = -np.pi + (np.arange(azimuths) + 0.5) * self.az_step
        ce = np.cos(self.elev)[:, None]
        ds = np.stack([ce * np.cos(az)[None], ce * np.sin(az)[None], np.repeat(np.sin(self.elev)[:, None],
                                                                                azimuths, 1)], -1)
        self.dirs_sensor = ds.astype(np.float32)
        T = np.asarray(T_world_sensor, np.float64)
        self.R = T[:3, :3]
        super().__init__(T[:3, 3], self.dirs_sensor @ self.R.T.astype(np.float32), max_t)

    def rects(self, lo: np.ndarray, hi: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
        o = self.origin
        c = (box_corners(lo, hi) - o) @ self.R  # sensor frame
        az = np.arctan2(c[..., 1], c[..., 0])
        ref = az[:, :1]
        rel = (az - ref + np.pi) % (2 * np.pi) - np.pi
        a0, a1 = (ref[:, 0] + rel.min(1)), (ref[:, 0] + rel.max(1))
        inside = (lo[:, 0] <= o[0]) & (o[0] <= hi[:, 0]) & (lo[:, 1] <= o[1]) & (o[1] <= hi[:, 1])
        dx = np.maximum(np.maximum(lo[:, 0] - o[0], o[0] - hi[:, 0]), 0)
        dy = np.maximum(np.maximum(lo[:, 1] - o[1], o[1] - hi[:, 1]), 0)
        dmin = np.hypot(dx, dy)
        dmax = np.hypot(np.maximum(np.abs(lo[:, 0] - o[0]), np.abs(hi[:, 0] - o[0])),
                        np.maximum(np.abs(lo[:, 1] - o[1]), np.abs(hi[:, 1] - o[1])))
        zt, zb = hi[:, 2] - o[2], lo[:, 2] - o[2]
        with np.errstate(divide="ignore"):
            e_hi = np.arctan2(zt, np.where(zt > 0, dmin, dmax))
            e_lo = np.arctan2(zb, np.where(zb > 0, dmax, dmin))
        margin = np.deg2rad(2.0)
        # rows: elevations are descending
        r0 = np.searchsorted(-self.elev, -(e_hi + margin))
        r1 = np.searchsorted(-self.elev, -(e_lo - margin), side="right")
        out = []
        for k in range(len(lo)):
            if r1[k] <= r0[k]:
                out.append([])
                continue
            if inside[k]:
                out.append([(int(r0[k]), int(r1[k]), 0, self.n_az)])
                continue
            c0 = int(np.floor((a0[k] + np.pi) / self.az_step)) - 2
            c1 = int(np.ceil((a1[k] + np.pi) / self.az_step)) + 2
            rects = []
            for s0, s1 in ((c0, c1), (c0 + self.n_az, c1 + self.n_az), (c0 - self.n_az, c1 - self.n_az)):
                s0, s1 = max(s0, 0), min(s1, self.n_az)
                if s1 > s0:
                    rects.append((int(r0[k]), int(r1[k]), s0, s1))
            out.append(rects)
        return out


@dataclass
class Hits:
    t: np.ndarray  # (H, W) float32, inf = nothing
    oid: np.ndarray  # (H, W) int32: object index, GROUND or NOTHING
    gcode: np.ndarray  # (H, W) int8 ground code
    gsign: np.ndarray  # (H, W) int8 sign of a kerb face's normal


def cast_ground(rays: RayGrid, grid) -> Hits:
    """Closed-form hits with the road (z = 0), the raised blocks (z = kerb height) and the kerb faces between."""
    h, w = rays.shape
    t = np.full(h * w, np.inf, np.float32)
    oid = np.full(h * w, NOTHING, np.int32)
    gcode = np.zeros(h * w, np.int8)
    gsign = np.zeros(h * w, np.int8)
    dx, dy, dz = (a.reshape(-1) for a in rays.d)
    down = np.flatnonzero(dz < -1e-6)
    ox, oy, oz = (np.float32(v) for v in rays.origin)
    hk = np.float32(grid.kerb_h)
    dxd, dyd, dzd = dx[down], dy[down], dz[down]
    t_top = (hk - oz) / dzd
    xa, ya = ox + t_top * dxd, oy + t_top * dyd
    top = ~grid.on_road(xa, ya)
    t_road = -oz / dzd
    xb, yb = ox + t_road * dxd, oy + t_road * dyd
    road = ~top & grid.on_road(xb, yb)
    kerb = ~top & ~road
    res = np.where(top, t_top, t_road)
    code = np.where(top, G_TOP, G_ROAD).astype(np.int8)
    sign = np.zeros(len(down), np.int8)
    if kerb.any():
        k = np.flatnonzero(kerb)
        kdx, kdy = dxd[k], dyd[k]
        ax, bx = grid.bands[0].block_interval(xb[k])
        ay, by = grid.bands[1].block_interval(yb[k])
        tx = (np.where(kdx > 0, ax, bx) - ox) / np.where(np.abs(kdx) < 1e-9, np.float32(1e-9), kdx)
        ty = (np.where(kdy > 0, ay, by) - oy) / np.where(np.abs(kdy) < 1e-9, np.float32(1e-9), kdy)
        tx = np.where(np.abs(kdx) < 1e-9, -np.inf, tx)
        ty = np.where(np.abs(kdy) < 1e-9, -np.inf, ty)
        xface = tx >= ty
        te = np.clip(np.maximum(tx, ty), t_top[k], t_road[k])
        res[k] = te
        code[k] = np.where(xface, G_KERB_X, G_KERB_Y)
        sign[k] = np.where(xface, -np.sign(kdx), -np.sign(kdy)).astype(np.int8)
    ok = res < rays.max_t
    sel = down[ok]
    t[sel], oid[sel], gcode[sel], gsign[sel] = res[ok], GROUND, code[ok], sign[ok]
    return Hits(t.reshape(h, w), oid.reshape(h, w), gcode.reshape(h, w), gsign.reshape(h, w))


def cast_objects(rays: RayGrid, objects: W.Objects, hits: Hits) -> None:
    """Nearest hits of the primitives, each tested only on the rays of its rectangles; updates `hits` in place."""
    if not len(objects):
        return
    o = rays.origin
    centre = 0.5 * (objects.lo + objects.hi)
    size = objects.hi - objects.lo
    dist = np.linalg.norm(centre - o, axis=1) - 0.5 * np.linalg.norm(size, axis=1)
    # Objects thinner than a ray spacing at their distance would only alias (a pole 200 m away): skip them.
    thickness = np.sort(size, axis=1)[:, 1]
    near = (dist < rays.max_t) & (thickness > dist * rays.spacing)
    index = np.flatnonzero(near)
    lo64, hi64 = objects.lo[index].astype(np.float64), objects.hi[index].astype(np.float64)
    # Nearest first, so that objects hidden behind nearer ones are skipped after one max() over their rectangle.
    gap = np.maximum(np.maximum(lo64 - o, o - hi64), 0.0)
    t_min = np.linalg.norm(gap, axis=1) / rays.max_len
    order = np.argsort(t_min, kind="stable")
    index, t_min = index[order], t_min[order]
    rect_lists = rays.rects(lo64[order], hi64[order])
    for k, rects, tk in zip(index, rect_lists, t_min, strict=True):
        for r0, r1, c0, c1 in rects:
            best = hits.t[r0:r1, c0:c1]
            if best.max() < tk:
                continue
            sl = (slice(r0, r1), slice(c0, c1))
            tn = _intersect(objects.kind[k], objects.lo[k], objects.hi[k], rays.origin,
                            [a[sl] for a in rays.inv], [a[sl] for a in rays.d], rays.dd[sl])
            hit = tn < best
            if hit.any():
                best[hit] = tn[hit]
                hits.oid[sl][hit] = k


def _intersect(kind: int, lo: np.ndarray, hi: np.ndarray, origin: np.ndarray, inv: list, d: list,
               dd: np.ndarray) -> np.ndarray:
    """Distance along each ray to a box, vertical cylinder or sphere (inf: missed)."""
    ox, oy, oz = (np.float32(v) for v in origin)
    lo = np.asarray(lo, np.float32)
    hi = np.asarray(hi, np.float32)
    lx, ly, lz = lo[..., 0], lo[..., 1], lo[..., 2]
    hx, hy, hz = hi[..., 0], hi[..., 1], hi[..., 2]
    if kind == W.BOX:
        ix, iy, iz = inv
        a, b = (lx - ox) * ix, (hx - ox) * ix
        tn, tf = np.minimum(a, b), np.maximum(a, b)
        a, b = (ly - oy) * iy, (hy - oy) * iy
        np.maximum(tn, np.minimum(a, b), out=tn)
        np.minimum(tf, np.maximum(a, b), out=tf)
        a, b = (lz - oz) * iz, (hz - oz) * iz
        np.maximum(tn, np.minimum(a, b), out=tn)
        np.minimum(tf, np.maximum(a, b), out=tf)
        hit = (tn <= tf) & (tn > 1e-3)
    else:
        dx, dy, dz = d
        r = 0.5 * (hx - lx)
        px, py = ox - 0.5 * (lx + hx), oy - 0.5 * (ly + hy)
        if kind == W.CYLINDER:
            a = dx * dx + dy * dy
            b = px * dx + py * dy
            c = px * px + py * py - r * r
        else:
            pz = oz - 0.5 * (lz + hz)
            a = dd
            b = px * dx + py * dy + pz * dz
            c = px * px + py * py + pz * pz - r * r
        disc = b * b - a * c
        with np.errstate(invalid="ignore", divide="ignore"):
            tn = (-b - np.sqrt(np.maximum(disc, 0))) / a
        hit = (disc > 0) & (tn > 1e-3)
        if kind == W.CYLINDER:
            z = oz + tn * dz
            hit &= (z >= lz) & (z <= hz)
    return np.where(hit, tn, np.float32(np.inf))


@dataclass
class Surface:
    """Attributes of the hit points (flattened, for the rays listed in `index`); vectors as x, y, z arrays."""

    index: np.ndarray
    t: np.ndarray
    normal: tuple[np.ndarray, np.ndarray, np.ndarray]  # world, unit
    material: np.ndarray  # (n,) base material
    tint_id: np.ndarray  # (n,) row of tint_table: a material's own tint, or an object's (offset by the materials)
    tint_table: np.ndarray  # (3, materials + objects) RGB tints, a row per channel
    u: np.ndarray  # texture coordinates in metres
    v: np.ndarray
    overlay: np.ndarray  # (n,) material drawn over the base (paint, glass)
    coverage: np.ndarray  # (n,) fraction of the overlay in the pixel
    footprint: np.ndarray  # (n,) metres a ray covers at the hit, foreshortening included
    cos: np.ndarray  # (n,) |cos| of the incidence angle
    ray_len: np.ndarray  # (n,) length of the ray direction (t * ray_len = distance)
    dot: np.ndarray  # (n,) normal . direction (< 0: the surface faces the ray's origin)


def _coverage(dist: np.ndarray, half: float | np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Fraction of a pixel of footprint `fp` covered by a stripe of half-width `half` at distance `dist`."""
    return np.clip((half - np.abs(dist)) / fp + 0.5, 0.0, 1.0)


def _periodic(x: np.ndarray, period: float | np.ndarray) -> np.ndarray:
    """Signed distance to the nearest multiple of `period`."""
    return x - np.round(x / period) * period


def _road_marks(grid, x: np.ndarray, y: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Paint coverage on the road: centre, lane and edge lines, dashes, zebra crossings and stop lines."""
    bx, by = grid.bands
    ix, offx, inx = bx.locate(x)
    iy, offy, iny = by.locate(y)
    cov = np.zeros(len(x), np.float32)
    for along_x in (True, False):
        sel = np.flatnonzero((iny & ~inx) if along_x else (inx & ~iny))
        if not len(sel):
            continue
        bands, cross = (by, bx) if along_x else (bx, by)
        k = (iy if along_x else ix)[sel]
        lat = (offy if along_x else offx)[sel]
        along = (x if along_x else y)[sel]
        kc = (ix if along_x else iy)[sel]
        to_cross = np.abs((offx if along_x else offy)[sel]) - cross.half[kc]  # distance to the intersection
        f = fp[sel]
        lanes, lw = bands.lanes[k], bands.lane_w[k].astype(np.float32)
        dash = _coverage(_periodic(along - 1.5, 9.0), 1.5, f)
        centre = _coverage(lat, 0.06, f) * np.where(bands.dashed_centre[k], dash, 1.0)
        lane_dash = _coverage(_periodic(along, 12.0), 3.0, f)
        lane_line = np.where(lanes > 1, _coverage(np.abs(lat) - lw, 0.06, f) * lane_dash, 0.0)
        edge = _coverage(np.abs(lat) - lanes * lw - 0.1, 0.08, f)
        zebra = np.where(bands.crosswalk[k] & (to_cross > 1.0) & (to_cross < 4.0),
                         _coverage(_periodic(lat, 1.0), 0.25, f), 0.0)
        before = along < cross.centre[kc]
        approaching = ((lat < 0) == before) if along_x else ((lat > 0) == before)  # right-hand traffic
        stop = np.where(approaching & (np.abs(lat) < lanes * lw), _coverage(to_cross - 5.0, 0.2, f), 0.0)
        cov[sel] = np.clip(np.maximum.reduce([centre, lane_line, edge, zebra, stop]) * (to_cross > 0.3), 0, 1)
    return cov


def surface(rays: RayGrid, hits: Hits, objects: W.Objects, grid, pixel_m: float | None) -> Surface:
    """Normals, materials, texture coordinates and overlays of all hit points (deferred shading input).

    `pixel_m`: metres a ray's footprint spans per metre of distance (1 / fx for a camera); it sets the level of
    detail and the anti-aliasing of painted lines and windows. None (LiDAR): a fixed 2 cm footprint.
    """
    oid = hits.oid.reshape(-1)
    idx = np.flatnonzero(oid != NOTHING)
    k = oid[idx]
    t = hits.t.reshape(-1)[idx]
    d = [a.reshape(-1)[idx] for a in rays.d]
    p = [np.float32(o) + t * di for o, di in zip(rays.origin, d, strict=True)]
    n = len(idx)
    normal = [np.zeros(n, np.float32) for _ in range(3)]
    material = np.empty(n, np.int16)
    u = np.empty(n, np.float32)
    v = np.empty(n, np.float32)
    overlay = np.full(n, W.PAINT, np.int16)
    coverage = np.zeros(n, np.float32)
    g = np.flatnonzero(k == GROUND)
    road = _ground_surface(g, hits, idx, p, normal, material, u, v, grid)
    ob = np.flatnonzero(k >= 0)
    walls = _object_surface(ob, k[ob], objects, p, normal, material, u, v)
    # Objects keep their own tint, except glass (cabin windows): a tint id per hit, one table for both.
    tint_id = material.astype(np.int32)
    if len(ob):
        own = np.flatnonzero(material[ob] != W.GLASS)
        tint_id[ob[own]] = k[ob[own]] + len(W.MATERIALS)
    tint_table = np.ascontiguousarray(np.concatenate([W.MAT_TINT, objects.tint]).T)
    dot = normal[0] * d[0] + normal[1] * d[1] + normal[2] * d[2]
    ray_len = np.sqrt(rays.dd.reshape(-1)[idx])
    cos = np.abs(dot) / ray_len
    if pixel_m is None:
        fp = np.full(n, 0.02, np.float32)
    else:
        fp = t * ray_len * np.float32(pixel_m) / np.sqrt(np.maximum(cos, np.float32(0.03)))
    if len(road):
        coverage[road] = _road_marks(grid, p[0][road], p[1][road], fp[road])
    if walls is not None:
        rows, along, up, win = walls
        cu = _coverage(_periodic(along - 0.5 * win[:, 0], win[:, 0]), 0.5 * win[:, 2], fp[rows])
        cv = _coverage(_periodic(up - 0.55 * win[:, 1], win[:, 1]), 0.5 * win[:, 3], fp[rows])
        coverage[rows] = cu * cv * (up > 0.6 * win[:, 1])
        overlay[rows] = W.GLASS
    return Surface(idx, t, tuple(normal), material, tint_id, tint_table, u, v, overlay, coverage, fp, cos, ray_len,
                   dot)


def _ground_surface(g: np.ndarray, hits: Hits, idx: np.ndarray, p: list, normal: list, material: np.ndarray,
                    u: np.ndarray, v: np.ndarray, grid) -> np.ndarray:
    """Fill the ground rows `g`: road, block tops (sidewalk or grass) and kerb faces; returns the road rows."""
    if not len(g):
        return g
    code = hits.gcode.reshape(-1)[idx[g]]
    sign = hits.gsign.reshape(-1)[idx[g]].astype(np.float32)
    gx, gy, gz = p[0][g], p[1][g], p[2][g]
    flat = code <= G_TOP
    kx, ky = code == G_KERB_X, code == G_KERB_Y
    normal[0][g] = kx * sign
    normal[1][g] = ky * sign
    normal[2][g] = flat
    u[g] = np.where(kx, gy, gx)
    v[g] = np.where(flat, gy, gz)
    mat = np.where(code == G_ROAD, W.ASPHALT, W.KERB).astype(np.int16)
    top = np.flatnonzero(code == G_TOP)
    if len(top):
        tx, ty = gx[top], gy[top]
        bx, by = grid.bands
        ax, bxx = bx.block_interval(tx)
        ay, byy = by.block_interval(ty)
        ix = np.clip(np.searchsorted(bx.centre, tx), 1, len(bx.centre) - 1)
        iy = np.clip(np.searchsorted(by.centre, ty), 1, len(by.centre) - 1)
        # inside the sidewalk of the nearest kerb (each street has its own sidewalk width)
        on_walk = (((tx - ax) < bx.sidewalk[ix - 1]) | ((bxx - tx) < bx.sidewalk[ix])
                   | ((ty - ay) < by.sidewalk[iy - 1]) | ((byy - ty) < by.sidewalk[iy]))
        mat[top] = np.where(on_walk, W.SIDEWALK, W.GRASS)
    material[g] = mat
    return g[code == G_ROAD]


def _object_surface(ob: np.ndarray, kk: np.ndarray, objects: W.Objects, p: list, normal: list,
                    material: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple | None:
    """Fill the object rows `ob` (objects `kk`); returns (rows, along, up, window layout) of building walls."""
    if not len(ob):
        return None
    kind = objects.kind[kk]
    # per-object columns, then one 1-D gather each (gathering (n, 3) rows is several times slower)
    c_obj = 0.5 * (objects.lo + objects.hi)
    inv_half = 2.0 / np.maximum(objects.hi - objects.lo, 1e-6)
    px, py, pz = p[0][ob], p[1][ob], p[2][ob]
    rx = px - np.ascontiguousarray(c_obj[:, 0])[kk]
    ry = py - np.ascontiguousarray(c_obj[:, 1])[kk]
    rz = pz - np.ascontiguousarray(c_obj[:, 2])[kk]
    # boxes: the face whose slab the point is at the edge of
    qx = np.abs(rx) * np.ascontiguousarray(inv_half[:, 0])[kk]
    qy = np.abs(ry) * np.ascontiguousarray(inv_half[:, 1])[kk]
    qz = np.abs(rz) * np.ascontiguousarray(inv_half[:, 2])[kk]
    axis = np.where(qx >= qy, np.where(qx >= qz, 0, 2), np.where(qy >= qz, 1, 2)).astype(np.int8)
    nx = np.where(axis == 0, np.sign(rx), 0).astype(np.float32)
    ny = np.where(axis == 1, np.sign(ry), 0).astype(np.float32)
    nz = np.where(axis == 2, np.sign(rz), 0).astype(np.float32)
    uu = np.where(axis == 0, py, px)
    vv = np.where(axis == 2, py, pz)
    rnd = np.flatnonzero(kind != W.BOX)
    if len(rnd):
        sph = kind[rnd] == W.SPHERE
        ex, ey, ez = rx[rnd], ry[rnd], np.where(sph, rz[rnd], 0)
        norm = np.maximum(np.sqrt(ex * ex + ey * ey + ez * ez), 1e-6)
        nx[rnd], ny[rnd], nz[rnd] = ex / norm, ey / norm, ez / norm
        uu[rnd] = np.arctan2(ey, ex) / inv_half[kk[rnd], 0]
        vv[rnd] = pz[rnd]
    normal[0][ob], normal[1][ob], normal[2][ob] = nx, ny, nz
    u[ob] = uu + np.ascontiguousarray(objects.uv_off[:, 0])[kk]
    v[ob] = vv + np.ascontiguousarray(objects.uv_off[:, 1])[kk]
    mat = objects.material[kk].copy()
    cabin = mat == W.CABIN
    roof = cabin & (np.abs(nz) > 0.5)
    mat[cabin] = W.GLASS
    mat[roof] = W.CAR_PAINT
    material[ob] = mat
    has_windows = (objects.windows[:, 0] > 0) & (objects.kind == W.BOX)
    wall = np.flatnonzero(has_windows[kk] & (axis != 2))
    if not len(wall):
        return None
    kw = kk[wall]
    lo = objects.lo[kw]
    along = np.where(axis[wall] == 0, py[wall] - lo[:, 1], px[wall] - lo[:, 0])
    return ob[wall], along, pz[wall] - lo[:, 2], objects.windows[kw]


@dataclass
class CameraFrame:
    image: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, 0 = nothing
    normals: np.ndarray  # (H, W, 3) float32 camera frame, towards the camera; 0 where nothing


def render_camera(rays: CameraRays, world: W.World, objects: W.Objects, atlas: TextureAtlas,
                  noise_rng: np.random.Generator | None = None) -> CameraFrame:
    """Colour image, depth and normals of one camera."""
    import cv2

    hits = cast_ground(rays, world.grid)
    cast_objects(rays, objects, hits)
    h, w = rays.shape
    surf = surface(rays, hits, objects, world.grid, rays.pixel_m)
    idx, mat, ov = surf.index, surf.material, surf.overlay
    inv_scale = (1.0 / W.MAT_SCALE)[mat]
    lod = np.log2(surf.footprint) - np.log2(W.MAT_SCALE)[mat]
    s = atlas.sample(W.MAT_TEXTURE[mat], surf.u * inv_scale, surf.v * inv_scale, lod) - np.float32(1.0)
    cov = surf.coverage
    base = (1.0 + W.MAT_CONTRAST[mat] * s) * (1.0 - cov)
    over = (1.0 + W.MAT_CONTRAST[ov] * s) * cov
    nx, ny, nz = surf.normal
    sun = world.sun
    lambert = np.maximum(nx * sun[0] + ny * sun[1] + nz * sun[2], np.float32(0.0))
    sky_light = np.float32(0.75) + np.float32(0.25) * nz
    fog = np.exp(surf.t * surf.ray_len * np.float32(-1.0 / world.haze_m))
    over_tint = np.ascontiguousarray(W.MAT_TINT.T)
    colour = np.empty((len(idx), 3), np.float32)
    for ch in range(3):
        albedo = surf.tint_table[ch].take(surf.tint_id) * base + over_tint[ch].take(ov) * over
        light = world.ambient[ch] * sky_light + world.sun_colour[ch] * lambert
        colour[:, ch] = (albedo * light - world.sky_horizon[ch]) * fog + world.sky_horizon[ch]
    img = np.empty((h * w, 3), np.float32)
    sky = np.flatnonzero(hits.oid.reshape(-1) == NOTHING)
    img[sky] = _sky(rays, world, sky)
    img[idx] = colour
    img = img.reshape(h, w, 3)
    img *= 255.0
    img += 0.5
    np.clip(img, 0, 255, out=img)
    image = cv2.GaussianBlur(img.astype(np.uint8), (3, 3), 0.5)  # the lens: a slight blur hides stair-stepping
    if noise_rng is not None:
        up, down = _noise_crop(h, w, noise_rng)
        image = cv2.subtract(cv2.add(image, up), down)  # saturating, as a sensor clips
    depth = np.zeros(h * w, np.float32)
    depth[idx] = surf.t
    # world -> camera (R^T n) and towards the camera: a hit seen along d has n . d < 0
    Rt = rays.R.T.astype(np.float32)
    toward = np.where(surf.dot > 0, np.float32(-1), np.float32(1))
    n_cam = np.empty((len(idx), 3), np.float32)
    for row in range(3):
        n_cam[:, row] = (Rt[row, 0] * nx + Rt[row, 1] * ny + Rt[row, 2] * nz) * toward
    normals = np.zeros((h * w, 3), np.float32)
    normals[idx] = n_cam
    return CameraFrame(image, depth.reshape(h, w), normals.reshape(h, w, 3))


def _sky(rays: RayGrid, world: W.World, index: np.ndarray) -> np.ndarray:
    """Sky colour of the rays `index` (flat): horizon haze to zenith blue with the ray's elevation."""
    elev = rays.d[2].reshape(-1)[index] / np.sqrt(rays.dd.reshape(-1)[index])
    a = np.clip(elev * 2.5, 0.0, 1.0) ** 0.7
    return world.sky_horizon + a[..., None] * (world.sky_zenith - world.sky_horizon)


_NOISE: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
_NOISE_MARGIN = 64


def _noise_crop(h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Sensor noise (1.2 grey levels) as uint8 (added, subtracted) parts: a random crop of one fixed noise field,
    far cheaper than drawing fresh normals for every pixel."""
    field = _NOISE.get((h, w))
    if field is None:
        noise = np.round(np.random.default_rng(12345).normal(0.0, 1.2, (h + _NOISE_MARGIN, w + _NOISE_MARGIN, 3)))
        field = _NOISE[(h, w)] = (np.clip(noise, 0, 255).astype(np.uint8), np.clip(-noise, 0, 255).astype(np.uint8))
    dy, dx = rng.integers(0, _NOISE_MARGIN, 2)
    flip = rng.integers(0, 2)
    crops = [f[dy:dy + h, dx:dx + w] for f in field]
    return tuple(np.ascontiguousarray(c[:, ::-1] if flip else c) for c in crops)
