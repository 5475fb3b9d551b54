"""A scene mode built for generalization, as FlyingThings3D is for stereo networks: random textured objects floating
in front of a textured background, seen by a stereo rig whose focal length, principal point and baseline change
from drive to drive, near (0.5-10 m: a room, a bench) or far (2-60 m: a yard, a street).

Each frame is a new scene (frames are not a video: monocular training must not read these drives). Objects are
planar cards (rectangles, discs, triangles), spheres and boxes with random poses and sizes, each wearing a random
photograph from scikit-image (the Middlebury stereo pair it also ships is never used: it is our evaluation
scene). Every camera is ray cast exactly, so both views, their depth, occlusions and normals agree. Each frame then
gets its own lighting (sun direction and colour, ambient), exposure, white balance, vignetting, blur, sensor noise
and JPEG compression. Drives are written in the KITTI layout (image_02/03, proj_depth/groundtruth, a 64-beam
scanner's velodyne_raw drawn from the ground truth, synthetic/normals_02), one date folder per drive because the
calibration differs.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ...geometry.camera import PinholeCamera
from ..sparse_patterns import scanner_pattern

CARD, SPHERE, BOX = 0, 1, 2
RECT, DISC, TRIANGLE = 0, 1, 2
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text", "cell")
MARKER = "objects_scene.txt"  # under synthetic/: tells readers these frames are independent scenes
TEXTURE_SIZE = 256


def is_objects_drive(path: str | os.PathLike[str] | None) -> bool:
    """Whether a drive folder was written by this scene mode (its frames are not a video)."""
    return path is not None and (Path(path) / "synthetic" / MARKER).is_file()


@functools.lru_cache(maxsize=1)
def photo_textures() -> tuple[np.ndarray, ...]:
    """The photographs as float32 RGB textures in [0, 1], TEXTURE_SIZE square (grey ones repeated to RGB)."""
    import skimage.data

    out = []
    for name in PHOTOS:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        img = img[..., :3].astype(np.float32)
        if img.max() > 1.5:
            img = img / 255.0
        h, w = img.shape[:2]
        s = min(h, w)
        img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
        out.append(cv2.resize(img, (TEXTURE_SIZE, TEXTURE_SIZE), interpolation=cv2.INTER_AREA))
    return tuple(out)


@dataclass(frozen=True)
class Rig:
    """One drive's stereo rig: the left camera and the baseline to the right one (x right, REP 103)."""

    camera: PinholeCamera
    baseline: float
    near: float
    far: float

    @classmethod
    def random(cls, rng: np.random.Generator, width: int, height: int) -> Rig:
        f = width * rng.uniform(0.45, 1.4)
        cx = (width - 1) / 2 + rng.uniform(-0.05, 0.05) * width
        cy = (height - 1) / 2 + rng.uniform(-0.1, 0.1) * height
        if rng.random() < 0.5:  # near: a room or a bench; a short baseline, as an indoor rig has
            near, far, baseline = 0.5, rng.uniform(4.0, 10.0), rng.uniform(0.05, 0.25)
        else:
            near, far, baseline = rng.uniform(1.5, 3.0), rng.uniform(25.0, 60.0), rng.uniform(0.2, 0.6)
        return cls(PinholeCamera(width, height, f, f, cx, cy), float(baseline), float(near), float(far))


@dataclass
class Thing:
    """One object: kind, centre (m, left camera frame), rotation (columns: local axes), half sizes, shape (cards),
    texture index, metres per texel, texture offset, tint."""

    kind: int
    centre: np.ndarray
    R: np.ndarray
    half: np.ndarray
    shape: int
    texture: int
    texel_m: float
    offset: np.ndarray
    tint: np.ndarray


def _random_rotation(rng: np.random.Generator, max_tilt_deg: float) -> np.ndarray:
    """A rotation whose third axis (the card's normal) is within max_tilt of facing the camera (-z)."""
    tilt = np.radians(rng.uniform(0, max_tilt_deg))
    az = rng.uniform(0, 2 * np.pi)
    n = np.array([np.sin(tilt) * np.cos(az), np.sin(tilt) * np.sin(az), -np.cos(tilt)])
    a = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(a, n)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    spin = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(spin), np.sin(spin)
    e1, e2 = c * e1 + s * e2, -s * e1 + c * e2
    return np.stack([e1, e2, n], 1)


def random_things(rng: np.random.Generator, rig: Rig) -> list[Thing]:
    """A background plane, maybe a floor, and 6-30 objects between the rig's near and far depth."""
    cam, textures = rig.camera, len(photo_textures())
    things: list[Thing] = []

    def texture_args(z: float) -> dict[str, Any]:
        return dict(texture=int(rng.integers(textures)), texel_m=float(z / cam.fx * rng.uniform(0.6, 3.0)),
                    offset=rng.uniform(0, TEXTURE_SIZE, 2), tint=rng.uniform(0.6, 1.25, 3))

    zb = rig.far * rng.uniform(0.6, 1.0)
    things.append(Thing(CARD, np.array([0.0, 0.0, zb]), _random_rotation(rng, 35.0), np.array([1e4, 1e4, 0.0]),
                        RECT, **texture_args(zb)))
    if rng.random() < 0.6:  # a floor below the camera (normal up: -y in the optical frame)
        h = rng.uniform(0.3, 1.8) * (1.0 if rig.near > 1.0 else 0.5)
        R = np.stack([np.array([1.0, 0, 0]), np.array([0, 0, 1.0]), np.array([0, -1.0, 0])], 1)
        things.append(Thing(CARD, np.array([0.0, h, 0.0]), R, np.array([1e4, 1e4, 0.0]), RECT,
                            **texture_args(rig.far * 0.3)))
    for _ in range(int(rng.integers(6, 31))):
        z = float(np.exp(rng.uniform(np.log(rig.near), np.log(rig.far * 0.85))))
        u, v = rng.uniform(-0.1, 1.1) * cam.width, rng.uniform(-0.1, 1.1) * cam.height
        centre = np.array([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z])
        size = z * cam.width / cam.fx * float(np.exp(rng.uniform(np.log(0.03), np.log(0.3))))
        kind = int(rng.choice([CARD, SPHERE, BOX], p=[0.55, 0.25, 0.2]))
        half = size * rng.uniform(0.4, 1.0, 3)
        if kind == SPHERE:
            half[:] = half[0]
        things.append(Thing(kind, centre, _random_rotation(rng, 70.0 if kind == CARD else 180.0), half,
                            int(rng.integers(3)), **texture_args(z)))
    return things


def _hit_card(thing: Thing, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t, uv metres, normal) of rays o + t d (d: (N, 3)) on a card; t = inf where missed."""
    n = thing.R[:, 2]
    denom = d @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        t = ((thing.centre - o) @ n) / denom
    p = o + t[:, None] * d - thing.centre
    s1, s2 = p @ thing.R[:, 0], p @ thing.R[:, 1]
    a, b = thing.half[0], thing.half[1]
    if thing.shape == DISC:
        inside = (s1 / a) ** 2 + (s2 / b) ** 2 <= 1.0
    elif thing.shape == TRIANGLE:
        inside = (s2 >= -b) & (np.abs(s1) <= a * (b - s2) / (2 * b))
    else:
        inside = (np.abs(s1) <= a) & (np.abs(s2) <= b)
    t = np.where(inside & (t > 1e-6) & np.isfinite(t), t, np.inf)
    normal = np.where((denom > 0)[:, None], -n, n)  # facing the ray
    return t, np.stack([s1, s2], 1), np.broadcast_to(normal, d.shape)


def _hit_sphere(thing: Thing, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = thing.half[0]
    oc = o - thing.centre
    b = d @ oc
    c = oc @ oc - r * r
    dd = np.einsum("ij,ij->i", d, d)
    disc = b * b - dd * c
    with np.errstate(invalid="ignore"):
        t = (-b - np.sqrt(disc)) / dd
    t = np.where((disc > 0) & (t > 1e-6), t, np.inf)
    p = o + np.where(np.isfinite(t), t, 0.0)[:, None] * d - thing.centre
    normal = p / r
    local = normal @ thing.R
    uv = np.stack([np.arctan2(local[:, 1], local[:, 0]) * r, np.arcsin(np.clip(local[:, 2], -1, 1)) * r], 1)
    return t, uv, normal


def _hit_box(thing: Thing, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ol = (o - thing.centre) @ thing.R
    dl = d @ thing.R
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dl
        t0, t1 = (-thing.half - ol) * inv, (thing.half - ol) * inv
    tmin, tmax = np.minimum(t0, t1), np.maximum(t0, t1)
    tmin = np.nan_to_num(tmin, nan=-np.inf)
    tmax = np.nan_to_num(tmax, nan=np.inf)
    near, far = tmin.max(1), tmax.min(1)
    axis = tmin.argmax(1)
    t = np.where((near <= far) & (near > 1e-6), near, np.inf)
    p = ol + np.where(np.isfinite(t), t, 0.0)[:, None] * dl
    rows = np.arange(len(d))
    n_local = np.zeros_like(dl)
    n_local[rows, axis] = -np.sign(dl[rows, axis])
    others = np.array([[1, 2], [0, 2], [0, 1]])[axis]
    uv = np.stack([p[rows, others[:, 0]], p[rows, others[:, 1]]], 1)
    return t, uv, n_local @ thing.R.T


HITS = {CARD: _hit_card, SPHERE: _hit_sphere, BOX: _hit_box}


def ray_cast(things: list[Thing], camera: PinholeCamera, origin: np.ndarray) -> dict[str, np.ndarray]:
    """Depth (z, m; 0 = nothing hit), object index (-1 = none), surface uv (m) and normal per pixel."""
    v, u = np.mgrid[0:camera.height, 0:camera.width]
    d = np.stack([(u - camera.cx) / camera.fx, (v - camera.cy) / camera.fy, np.ones(u.shape)], -1).reshape(-1, 3)
    n = len(d)
    best = np.full(n, np.inf)
    index = np.full(n, -1, np.int32)
    uv = np.zeros((n, 2))
    normal = np.zeros((n, 3))
    for k, thing in enumerate(things):
        t, tuv, tn = HITS[thing.kind](thing, origin, d)
        closer = t < best
        best[closer], index[closer] = t[closer], k
        uv[closer], normal[closer] = tuv[closer], tn[closer]
    depth = np.where(np.isfinite(best), best, 0.0)  # d has z = 1: t is the depth
    shape = camera.shape
    return {"depth": depth.reshape(shape).astype(np.float32), "index": index.reshape(shape),
            "uv": uv.reshape(*shape, 2), "normal": normal.reshape(*shape, 3)}


@dataclass(frozen=True)
class Look:
    """One frame's lighting and camera response, shared by both views."""

    sun: np.ndarray
    sun_colour: np.ndarray
    ambient: float
    gain: np.ndarray
    vignette: float
    blur: float
    noise: float
    jpeg: int

    @classmethod
    def random(cls, rng: np.random.Generator) -> Look:
        sun = rng.normal(size=3)
        sun[1] = -abs(sun[1]) - 0.3  # from above (y down)
        gain = rng.uniform(0.6, 1.4) * rng.uniform(0.85, 1.15, 3)  # exposure and white balance
        return cls(sun / np.linalg.norm(sun), rng.uniform(0.8, 1.2, 3), float(rng.uniform(0.15, 0.6)),
                   gain, float(rng.uniform(0, 0.5) * (rng.random() < 0.5)),
                   float(rng.uniform(0.3, 1.2) * (rng.random() < 0.3)), float(rng.uniform(0.0, 0.03)),
                   int(rng.integers(40, 95)) if rng.random() < 0.3 else 0)


def _sample(texture: np.ndarray, uv: np.ndarray, cols: int = 1024) -> np.ndarray:
    """Bilinear, wrapped texture reads at (N, 2) texel coordinates (cv2.remap wants maps under 32767 rows)."""
    n = len(uv)
    rows = -(-n // cols)
    pad = np.zeros((rows * cols, 2), np.float32)
    pad[:n] = uv
    maps = pad.reshape(rows, cols, 2)
    out = cv2.remap(texture, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return out.reshape(-1, 3)[:n]


def shade(cast: dict[str, np.ndarray], things: list[Thing], look: Look, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB image of a ray cast: textured albedo, Lambert shading, then the camera's response."""
    textures = photo_textures()
    h, w = cast["depth"].shape
    img = np.zeros((h, w, 3), np.float32)
    sky = cast["index"] < 0
    img[sky] = np.array([0.55, 0.65, 0.8], np.float32) * look.gain.astype(np.float32)
    for k, thing in enumerate(things):
        sel = cast["index"] == k
        if not sel.any():
            continue
        uv = cast["uv"][sel] / thing.texel_m + thing.offset
        albedo = _sample(textures[thing.texture], np.mod(uv, TEXTURE_SIZE).astype(np.float32))
        lambert = np.clip(cast["normal"][sel] @ -look.sun, 0.0, 1.0)[:, None]
        light = look.ambient + (1 - look.ambient) * lambert * look.sun_colour
        img[sel] = albedo * thing.tint * light * look.gain
    if look.vignette > 0:
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
        img *= (1 - look.vignette * r2)[..., None]
    if look.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), look.blur)
    img = img + rng.normal(0, look.noise, img.shape).astype(np.float32)
    out = (np.clip(img, 0, 1) ** (1 / 1.1) * 255 + 0.5).astype(np.uint8)
    if look.jpeg:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, look.jpeg])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy() if ok else out
    return out


def render_frame(seed: int, frame: int, rig: Rig) -> dict[str, Any]:
    """One scene seen by both cameras: images, depth (0 = sky) and left normals."""
    rng = np.random.default_rng([seed, frame])
    things = random_things(rng, rig)
    look = Look.random(rng)
    left = ray_cast(things, rig.camera, np.zeros(3))
    right = ray_cast(things, rig.camera, np.array([rig.baseline, 0.0, 0.0]))
    return {"left": shade(left, things, look, rng), "right": shade(right, things, look, rng),
            "depth_left": left["depth"], "depth_right": right["depth"],
            "normals_left": left["normal"].astype(np.float32)}


def write_objects_drive(root: str | os.PathLike[str], seed: int, frames: int, width: int = 640,
                        height: int = 192, progress: Any = None, overwrite: bool = False) -> Path:
    """Render `frames` scenes of drive `seed` into `root/objects_<seed>/<date>/<date>_drive_<NNNN>_sync` (its own
    date folder: the calibration is the drive's). As synth's street drives, it appears only when complete, and
    replaces an existing one (`overwrite`) only then. `progress(iterable, total)` wraps the frame loop."""
    from ..kitti import KittiCalib
    from ..kitti_writer import KittiDriveWriter
    from .drive import drive_name, frame_stamps

    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    final = Path(root) / f"objects_{seed:04d}"
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise FileExistsError(f"drive folder {final} exists and is not empty")
    rig = Rig.random(np.random.default_rng([seed, 2**20]), width, height)
    # LiDAR -> cam0 as KITTI mounts it; only the scanner pattern below is written, never a scan
    T_cam0_velo = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27], [0, 0, 0, 1.0]])
    calib = KittiCalib.ideal(rig.camera, {0: 0.0, 1: rig.baseline, 2: 0.0, 3: rig.baseline}, T_cam0_velo, np.eye(4))
    date, number = drive_name(seed)
    stamps = frame_stamps(seed, frames)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        with KittiDriveWriter(tmp / "new", date, number, calib) as writer:
            for k in (range(frames) if progress is None else progress(range(frames), frames)):
                f = render_frame(seed, k, rig)
                lidar = {2: scanner_pattern(f["depth_left"], rig.camera, seed=k),
                         3: scanner_pattern(f["depth_right"], rig.camera, seed=k)}
                writer.add_frame(int(stamps[k]), {2: f["left"], 3: f["right"]},
                                 groundtruth={2: f["depth_left"], 3: f["depth_right"]}, velodyne_raw=lidar,
                                 normals={2: f["normals_left"]})
        (writer.path / "synthetic").mkdir(exist_ok=True)
        (writer.path / "synthetic" / MARKER).write_text(
            f"objects scene mode, seed {seed}: every frame is an independent scene (not a video)\n"
            f"f {rig.camera.fx:.3f} px, baseline {rig.baseline:.4f} m, depth {rig.near:.2f}-{rig.far:.2f} m\n")
        if final.exists():  # the old drive moves aside only now that the new one is complete
            os.replace(final, tmp / "replaced")
        os.replace(tmp / "new", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / date / writer.path.name
