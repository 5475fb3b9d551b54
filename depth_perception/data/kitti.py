"""Readers for the KITTI raw and depth-completion layouts; they read real KITTI downloads unchanged.

KITTI raw (Geiger et al., "Vision meets Robotics: The KITTI Dataset", IJRR 2013):
  <date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt, calib_imu_to_velo.txt
  <date>/<date>_drive_<NNNN>_sync/image_0{0..3}/data/%010d.png, image_0X/timestamps.txt,
      velodyne_points/data/%010d.bin (float32 x, y, z, reflectance), velodyne_points/timestamps{,_start,_end}.txt,
      oxts/data/%010d.txt (30 fields), oxts/timestamps.txt, oxts/dataformat.txt
KITTI depth completion: <drive>/proj_depth/{groundtruth,velodyne_raw}/image_0{2,3}/%010d.png (uint16, depth x 256).
Our synthetic drives add <drive>/synthetic/poses_cam0X.txt (3x4 T_world_cam a line) and normals_0X/%010d.npy.
"""
from __future__ import annotations

import calendar
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..geometry.camera import PinholeCamera, baseline_from_projections
from ..geometry.depth_units import kitti_to_metres, metres_to_kitti
from ..geometry.se3 import euler_to_matrix, invert_transform, make_transform

CAMERAS = (0, 1, 2, 3)
COLOR_CAMERAS = (2, 3)
EARTH_RADIUS_M = 6378137.0  # WGS84 equatorial radius, as in the KITTI devkit and pykitti
CALIB_FILES = ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt")
DEFAULT_CALIB_TIME = "09-Jan-2012 13:57:47"


# ---------------------------------------------------------------------------------------------------------------
# calibration

def parse_key_values(path: Path, text: str | None = None) -> dict[str, str]:
    """KITTI's `key: values` lines (every calib_*.txt); values keep their own colons (calib_time: 09-Jan-2012
    13:58:50). `text`: the file's content where the caller has read it already."""
    if text is None:
        if not path.is_file():
            raise FileNotFoundError(f"missing calibration file {path}")
        text = path.read_text()
    out: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"{path}:{lineno}: expected 'key: value', got {raw!r}")
        out[key.strip()] = value.strip()
    return out


def _floats(values: dict[str, str], key: str, count: int, path: Path) -> np.ndarray:
    if key not in values:
        raise ValueError(f"{path}: missing key '{key}'")
    try:
        arr = np.array([float(v) for v in values[key].split()], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: '{key}' is not a list of numbers: {values[key]!r}") from None
    if arr.size != count:
        raise ValueError(f"{path}: '{key}' must have {count} numbers, got {arr.size}")
    return arr


def _fmt(values: np.ndarray | list[float] | tuple[float, ...]) -> str:
    return " ".join(f"{float(v):.6e}" for v in np.asarray(values, dtype=np.float64).ravel())


@dataclass
class KittiCalib:
    """The three KITTI raw calibration files of one recording day.

    cam_to_cam: per camera i, unrectified S (w, h), K, D (5), R, T (x_cam_i = R x_cam0 + T) and rectified
    S_rect, R_rect, P_rect. velo_to_cam: T_cam0_velo (velodyne -> unrectified cam0). imu_to_velo: T_velo_imu.
    """

    P_rect: dict[int, np.ndarray]
    R_rect: dict[int, np.ndarray]
    S_rect: dict[int, tuple[int, int]]
    K: dict[int, np.ndarray] = field(default_factory=dict)
    D: dict[int, np.ndarray] = field(default_factory=dict)
    S: dict[int, tuple[int, int]] = field(default_factory=dict)
    R: dict[int, np.ndarray] = field(default_factory=dict)
    T: dict[int, np.ndarray] = field(default_factory=dict)
    T_cam0_velo: np.ndarray = field(default_factory=lambda: np.eye(4))
    T_velo_imu: np.ndarray = field(default_factory=lambda: np.eye(4))
    calib_time: dict[str, str] | str = field(default_factory=dict)  # file name -> its calib_time value (or one for all)
    corner_dist: float = 9.95e-2
    delta_f: tuple[float, float] = (0.0, 0.0)
    delta_c: tuple[float, float] = (0.0, 0.0)

    @property
    def cameras(self) -> tuple[int, ...]:
        return tuple(sorted(self.P_rect))

    @property
    def R_rect_00(self) -> np.ndarray:
        return self.R_rect[0] if 0 in self.R_rect else np.eye(3)

    def _check_cam(self, i: int) -> None:
        if i not in self.P_rect:
            raise ValueError(f"camera {i} is not in the calibration (cameras: {list(self.cameras)})")

    def cam(self, i: int) -> PinholeCamera:
        """The rectified pinhole camera i (from P_rect_0i and S_rect_0i)."""
        self._check_cam(i)
        w, h = self.S_rect[i]
        return PinholeCamera.from_projection(self.P_rect[i], w, h)

    def T_cami_cam0(self, i: int) -> np.ndarray:
        """Rectified cam0 -> rectified cam i: P_rect_0i = K_i [I | t_i], so t_i = K_i^-1 P_rect_0i[:, 3].

        pykitti keeps only t_x = P[0, 3] / fx; the full inverse also keeps KITTI's small y and z offsets, so that
        K_i @ T_cam_velo(i) reproduces the devkit's projection P_rect_0i @ R_rect_00 @ Tr_velo_to_cam exactly.
        """
        self._check_cam(i)
        P = self.P_rect[i]
        return make_transform(np.eye(3), np.linalg.solve(P[:, :3], P[:, 3]))

    def T_cam_velo(self, i: int) -> np.ndarray:
        """Velodyne -> rectified camera i: T_i0 @ R_rect_00 @ T_cam0_velo (the KITTI chain)."""
        R_rect = make_transform(self.R_rect_00, np.zeros(3))
        return self.T_cami_cam0(i) @ R_rect @ self.T_cam0_velo

    def T_cam_imu(self, i: int) -> np.ndarray:
        """IMU (OXTS) -> rectified camera i."""
        return self.T_cam_velo(i) @ self.T_velo_imu

    def baseline(self, a: int = 2, b: int = 3) -> float:
        """Distance in metres along x between rectified cameras a (left) and b (right)."""
        self._check_cam(a)
        self._check_cam(b)
        return baseline_from_projections(self.P_rect[a], self.P_rect[b])

    @classmethod
    def ideal(
        cls,
        camera: PinholeCamera,
        cam_x: dict[int, float],
        T_cam0_velo: np.ndarray,
        T_velo_imu: np.ndarray,
        calib_time: str = DEFAULT_CALIB_TIME,
    ) -> KittiCalib:
        """A distortion-free, already rectified rig (synthetic drives): every camera has `camera`'s intrinsics,
        the orientation of cam0, and its centre at x = cam_x[i] metres in cam0's frame (KITTI: cam1 +0.54,
        cam2 -0.06, cam3 +0.48). T_cam0_velo maps velodyne points into cam0."""
        calib = cls(P_rect={}, R_rect={}, S_rect={}, T_cam0_velo=np.asarray(T_cam0_velo, dtype=np.float64),
                    T_velo_imu=np.asarray(T_velo_imu, dtype=np.float64),
                    calib_time={name: calib_time for name in CALIB_FILES})
        size = (camera.width, camera.height)
        for i, x in sorted(cam_x.items()):
            P = np.zeros((3, 4))
            P[:, :3] = camera.K
            P[0, 3] = -camera.fx * float(x)
            calib.P_rect[i], calib.R_rect[i], calib.S_rect[i] = P, np.eye(3), size
            calib.K[i], calib.D[i], calib.S[i] = camera.K.copy(), np.zeros(5), size
            calib.R[i], calib.T[i] = np.eye(3), np.array([-float(x), 0.0, 0.0])
        return calib


def read_calib(date_dir: str | os.PathLike[str]) -> KittiCalib:
    """Read calib_cam_to_cam.txt, calib_velo_to_cam.txt and calib_imu_to_velo.txt from a KITTI date folder."""
    date_dir = Path(date_dir)
    cc_path, vc_path, iv_path = (date_dir / name for name in CALIB_FILES)
    cc = parse_key_values(cc_path)
    vc = parse_key_values(vc_path)
    iv = parse_key_values(iv_path)
    calib = KittiCalib(P_rect={}, R_rect={}, S_rect={})
    cams = sorted(int(m.group(1)) for k in cc if (m := re.fullmatch(r"P_rect_(\d\d)", k)))
    if not cams:
        raise ValueError(f"{cc_path}: no P_rect_0X keys")
    for i in cams:
        s = f"{i:02d}"
        calib.P_rect[i] = _floats(cc, f"P_rect_{s}", 12, cc_path).reshape(3, 4)
        calib.R_rect[i] = _floats(cc, f"R_rect_{s}", 9, cc_path).reshape(3, 3) if f"R_rect_{s}" in cc else np.eye(3)
        sr = _floats(cc, f"S_rect_{s}", 2, cc_path)
        calib.S_rect[i] = (int(round(sr[0])), int(round(sr[1])))
        if f"K_{s}" in cc:
            calib.K[i] = _floats(cc, f"K_{s}", 9, cc_path).reshape(3, 3)
            calib.D[i] = _floats(cc, f"D_{s}", 5, cc_path)
            su = _floats(cc, f"S_{s}", 2, cc_path)
            calib.S[i] = (int(round(su[0])), int(round(su[1])))
            calib.R[i] = _floats(cc, f"R_{s}", 9, cc_path).reshape(3, 3)
            calib.T[i] = _floats(cc, f"T_{s}", 3, cc_path)
    if "corner_dist" in cc:
        calib.corner_dist = float(_floats(cc, "corner_dist", 1, cc_path)[0])
    calib.T_cam0_velo = make_transform(_floats(vc, "R", 9, vc_path).reshape(3, 3), _floats(vc, "T", 3, vc_path))
    if "delta_f" in vc:
        calib.delta_f = tuple(_floats(vc, "delta_f", 2, vc_path))
    if "delta_c" in vc:
        calib.delta_c = tuple(_floats(vc, "delta_c", 2, vc_path))
    calib.T_velo_imu = make_transform(_floats(iv, "R", 9, iv_path).reshape(3, 3), _floats(iv, "T", 3, iv_path))
    for name, values in zip(CALIB_FILES, (cc, vc, iv), strict=True):
        calib.calib_time[name] = values.get("calib_time", DEFAULT_CALIB_TIME)
    return calib


def write_calib(date_dir: str | os.PathLike[str], calib: KittiCalib) -> None:
    """Write the three calibration files in KITTI's own format (the reader reads them back exactly to 7 digits)."""
    date_dir = Path(date_dir)
    date_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(calib.calib_time, str):
        times = {name: calib.calib_time for name in CALIB_FILES}
    else:
        times = {name: calib.calib_time.get(name, DEFAULT_CALIB_TIME) for name in CALIB_FILES}
    lines = [f"calib_time: {times[CALIB_FILES[0]]}", f"corner_dist: {_fmt([calib.corner_dist])}"]
    for i in calib.cameras:
        s = f"{i:02d}"
        # Every block complete, as KITTI writes it: an already rectified camera has K = P[:, :3], no distortion,
        # R = R_rect and T = its offset from cam0.
        K = calib.K.get(i, calib.P_rect[i][:, :3])
        T = calib.T.get(i, calib.T_cami_cam0(i)[:3, 3])
        lines += [f"S_{s}: {_fmt(calib.S.get(i, calib.S_rect[i]))}", f"K_{s}: {_fmt(K)}",
                  f"D_{s}: {_fmt(calib.D.get(i, np.zeros(5)))}", f"R_{s}: {_fmt(calib.R.get(i, calib.R_rect[i]))}",
                  f"T_{s}: {_fmt(T)}"]
        lines += [f"S_rect_{s}: {_fmt(calib.S_rect[i])}", f"R_rect_{s}: {_fmt(calib.R_rect.get(i, np.eye(3)))}",
                  f"P_rect_{s}: {_fmt(calib.P_rect[i])}"]
    (date_dir / CALIB_FILES[0]).write_text("\n".join(lines) + "\n")
    Tv = np.asarray(calib.T_cam0_velo)
    (date_dir / CALIB_FILES[1]).write_text(
        f"calib_time: {times[CALIB_FILES[1]]}\nR: {_fmt(Tv[:3, :3])}\nT: {_fmt(Tv[:3, 3])}\n"
        f"delta_f: {_fmt(calib.delta_f)}\ndelta_c: {_fmt(calib.delta_c)}\n"
    )
    Ti = np.asarray(calib.T_velo_imu)
    (date_dir / CALIB_FILES[2]).write_text(
        f"calib_time: {times[CALIB_FILES[2]]}\nR: {_fmt(Ti[:3, :3])}\nT: {_fmt(Ti[:3, 3])}\n"
    )


# ---------------------------------------------------------------------------------------------------------------
# timestamps

_STAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")


def parse_timestamp(text: str) -> int:
    """`2011-09-26 13:02:25.964389445` -> nanoseconds since the epoch (read as UTC), exactly: no float rounding."""
    m = _STAMP.match(text.strip())
    if m is None:
        raise ValueError(f"not a KITTI timestamp: {text!r} (expected 'YYYY-MM-DD HH:MM:SS.fffffffff')")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


def format_timestamp(ns: int) -> str:
    """Nanoseconds since the epoch -> `YYYY-MM-DD HH:MM:SS.fffffffff` (UTC), the inverse of parse_timestamp."""
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"timestamp must be >= 0 ns, got {ns}")
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}"


def read_timestamps(path: str | os.PathLike[str]) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing timestamp file {path}")
    stamps = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                stamps.append(parse_timestamp(line))
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: {exc}") from None
    return np.array(stamps, dtype=np.int64)


def write_timestamps(path: str | os.PathLike[str], stamps_ns: np.ndarray | list[int]) -> None:
    Path(path).write_text("".join(format_timestamp(int(s)) + "\n" for s in stamps_ns))


# ---------------------------------------------------------------------------------------------------------------
# OXTS

OXTS_FIELDS = (
    "lat", "lon", "alt", "roll", "pitch", "yaw", "vn", "ve", "vf", "vl", "vu", "ax", "ay", "az", "af", "al", "au",
    "wx", "wy", "wz", "wf", "wl", "wu", "pos_accuracy", "vel_accuracy", "navstat", "numsats", "posmode",
    "velmode", "orimode",
)
_OXTS_INT_FIELDS = OXTS_FIELDS[-5:]

# oxts/dataformat.txt as KITTI ships it (its third acceleration line really says "ay:").
OXTS_DATAFORMAT = """lat:   latitude of the oxts-unit (deg)
lon:   longitude of the oxts-unit (deg)
alt:   altitude of the oxts-unit (m)
roll:  roll angle (rad),    0 = level, positive = left side up,      range: -pi   .. +pi
pitch: pitch angle (rad),   0 = level, positive = front down,        range: -pi/2 .. +pi/2
yaw:   heading (rad),       0 = east,  positive = counter clockwise, range: -pi   .. +pi
vn:    velocity towards north (m/s)
ve:    velocity towards east (m/s)
vf:    forward velocity, i.e. parallel to earth-surface (m/s)
vl:    leftward velocity, i.e. parallel to earth-surface (m/s)
vu:    upward velocity, i.e. perpendicular to earth-surface (m/s)
ax:    acceleration in x, i.e. in direction of vehicle front (m/s^2)
ay:    acceleration in y, i.e. in direction of vehicle left (m/s^2)
ay:    acceleration in z, i.e. in direction of vehicle top (m/s^2)
af:    forward acceleration (m/s^2)
al:    leftward acceleration (m/s^2)
au:    upward acceleration (m/s^2)
wx:    angular rate around x (rad/s)
wy:    angular rate around y (rad/s)
wz:    angular rate around z (rad/s)
wf:    angular rate around forward axis (rad/s)
wl:    angular rate around leftward axis (rad/s)
wu:    angular rate around upward axis (rad/s)
pos_accuracy:  velocity accuracy (north/east in m)
vel_accuracy:  velocity accuracy (north/east in m/s)
navstat:       navigation status (see navstat_to_string)
numsats:       number of satellites tracked by primary GPS receiver
posmode:       position mode of primary GPS receiver (see gps_mode_to_string)
velmode:       velocity mode of primary GPS receiver (see gps_mode_to_string)
orimode:       orientation mode of primary GPS receiver (see gps_mode_to_string)
"""


class OxtsPacket(NamedTuple):
    """One OXTS RT3003 record: the 30 fields of oxts/data/*.txt, named as in oxts/dataformat.txt."""

    lat: float
    lon: float
    alt: float
    roll: float
    pitch: float
    yaw: float
    vn: float
    ve: float
    vf: float
    vl: float
    vu: float
    ax: float
    ay: float
    az: float
    af: float
    al: float
    au: float
    wx: float
    wy: float
    wz: float
    wf: float
    wl: float
    wu: float
    pos_accuracy: float
    vel_accuracy: float
    navstat: int
    numsats: int
    posmode: int
    velmode: int
    orimode: int

    @classmethod
    def from_values(cls, values: list[float] | tuple[float, ...] | np.ndarray, source: str = "oxts") -> OxtsPacket:
        values = list(values)
        if len(values) != len(OXTS_FIELDS):
            raise ValueError(f"{source}: an OXTS record has {len(OXTS_FIELDS)} values, got {len(values)}")
        return cls(*[int(v) if k in _OXTS_INT_FIELDS else float(v) for k, v in zip(OXTS_FIELDS, values, strict=True)])


def read_oxts(path: str | os.PathLike[str]) -> OxtsPacket:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing OXTS file {path}")
    try:
        values = [float(v) for v in path.read_text().split()]
    except ValueError:
        raise ValueError(f"{path}: OXTS values must be numbers") from None
    return OxtsPacket.from_values(values, str(path))


def format_oxts(packet: OxtsPacket | list[float] | tuple[float, ...] | np.ndarray) -> str:
    """One line as KITTI writes it: floats with full precision, the last five as integers."""
    p = packet if isinstance(packet, OxtsPacket) else OxtsPacket.from_values(packet)
    return " ".join(
        str(int(v)) if k in _OXTS_INT_FIELDS else repr(float(v)) for k, v in zip(OXTS_FIELDS, p, strict=True)
    )


def oxts_poses(packets: list[OxtsPacket]) -> np.ndarray:
    """(N, 4, 4) T_world_imu from OXTS as pykitti does (after the devkit's convertOxtsToPose): Mercator x/y with
    the scale cos(lat) of the first packet, altitude as z, R = Rz(yaw) Ry(pitch) Rx(roll); the world origin is
    the first packet's position (its orientation is kept, so world x = east, y = north, z = up)."""
    if not packets:
        return np.zeros((0, 4, 4))
    scale = np.cos(packets[0].lat * np.pi / 180.0)
    poses = []
    for p in packets:
        tx = scale * p.lon * np.pi * EARTH_RADIUS_M / 180.0
        ty = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + p.lat) * np.pi / 360.0))
        poses.append(make_transform(euler_to_matrix(p.roll, p.pitch, p.yaw), [tx, ty, p.alt]))
    out = np.stack(poses)
    out[:, :3, 3] -= out[0, :3, 3].copy()
    return out


def oxts_from_poses(
    T_world_imu: np.ndarray,
    lat0: float = 49.011,
    lon0: float = 8.4236,
    alt0: float = 112.0,
    stamps_ns: np.ndarray | None = None,
) -> list[OxtsPacket]:
    """OXTS packets whose `oxts_poses` give back T_world_imu up to the first pose's translation (the origin).

    The first pose sits at (lat0, lon0, alt0) (default: Karlsruhe). Velocities, accelerations and angular rates
    are finite differences over `stamps_ns` (10 Hz when omitted), in the vehicle frame as the OXTS unit reports.
    """
    T = np.asarray(T_world_imu, dtype=np.float64)
    n = len(T)
    scale = np.cos(lat0 * np.pi / 180.0)
    mx0 = scale * lon0 * np.pi * EARTH_RADIUS_M / 180.0
    my0 = scale * EARTH_RADIUS_M * np.log(np.tan((90.0 + lat0) * np.pi / 360.0))
    t = T[:, :3, 3] - T[0, :3, 3]
    lon = (mx0 + t[:, 0]) * 180.0 / (scale * np.pi * EARTH_RADIUS_M)
    lat = np.arctan(np.exp((my0 + t[:, 1]) / (scale * EARTH_RADIUS_M))) * 360.0 / np.pi - 90.0
    alt = alt0 + t[:, 2]
    dt = np.full(max(n - 1, 1), 0.1) if stamps_ns is None else np.diff(np.asarray(stamps_ns, np.int64)) * 1e-9
    v_world = np.gradient(t, axis=0) / np.r_[dt, dt[-1:]][:, None] if n > 1 else np.zeros((n, 3))
    a_world = np.gradient(v_world, axis=0) / np.r_[dt, dt[-1:]][:, None] if n > 1 else np.zeros((n, 3))
    packets = []
    for k in range(n):
        R = T[k, :3, :3]
        roll = np.arctan2(R[2, 1], R[2, 2])
        pitch = np.arcsin(-np.clip(R[2, 0], -1.0, 1.0))
        yaw = np.arctan2(R[1, 0], R[0, 0])
        v_body = R.T @ v_world[k]
        a_body = R.T @ (a_world[k] + np.array([0.0, 0.0, 9.81]))
        if n > 1:
            k0, k1 = max(k - 1, 0), min(k + 1, n - 1)
            dR = T[k0, :3, :3].T @ T[k1, :3, :3]
            angle = np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0))
            axis = np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0], dR[1, 0] - dR[0, 1]])
            norm = np.linalg.norm(axis)
            span = (k1 - k0) * float(dt[min(k0, len(dt) - 1)])
            w_body = axis / norm * angle / span if norm > 1e-12 else np.zeros(3)
        else:
            w_body = np.zeros(3)
        values = [lat[k], lon[k], alt[k], roll, pitch, yaw, v_world[k, 1], v_world[k, 0],
                  v_body[0], v_body[1], v_body[2], *a_body, *a_body, *w_body, *w_body,
                  0.05, 0.05, 4, 10, 5, 5, 6]
        packets.append(OxtsPacket.from_values(values))
    return packets


# ---------------------------------------------------------------------------------------------------------------
# images, point clouds, depth PNGs

def read_image(path: str | os.PathLike[str], color: bool | None = None) -> np.ndarray:
    """A PNG as uint8: (H, W, 3) RGB for colour images, (H, W) for grey ones; ValueError naming an unreadable file."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing image {path}")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"unreadable image {path}")
    if img.dtype != np.uint8:
        raise ValueError(f"image {path} is {img.dtype}, expected 8-bit")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if color is True and img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim == 3:
        img = img[:, :, ::-1]  # BGR -> RGB
        if color is False:
            return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY))
    return np.ascontiguousarray(img)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    import cv2

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"images must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}")
    out = image[:, :, ::-1] if image.ndim == 3 else image
    if not cv2.imwrite(str(path), np.ascontiguousarray(out)):
        raise OSError(f"could not write image {path}")


def read_velodyne(path: str | os.PathLike[str]) -> np.ndarray:
    """A velodyne_points .bin: float32 (N, 4) x, y, z, reflectance; ValueError for a truncated file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing point cloud {path}")
    size = path.stat().st_size
    if size % 16:
        raise ValueError(f"truncated point cloud {path}: {size} bytes is not a multiple of 16 (4 float32 a point)")
    return np.fromfile(path, dtype="<f4").reshape(-1, 4)


def write_velodyne(path: str | os.PathLike[str], points: np.ndarray) -> None:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 4:
        raise ValueError(f"velodyne points must be (N, 4) x, y, z, reflectance, got {points.shape}")
    points.astype("<f4").tofile(path)


def read_depth_png(path: str | os.PathLike[str]) -> np.ndarray:
    """A KITTI depth PNG (uint16, depth x 256) as float32 metres, 0 = no measurement."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing depth PNG {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if raw is None:
        raise ValueError(f"unreadable depth PNG {path}")
    if raw.dtype != np.uint16:
        raise ValueError(f"depth PNG {path} is {raw.dtype}, expected uint16 (depth x 256)")
    return kitti_to_metres(raw)


def write_depth_png(path: str | os.PathLike[str], depth: np.ndarray) -> None:
    """float metres -> uint16 PNG of round(depth x 256); NaN, inf, <= 0 and beyond 255.99 m are written as 0."""
    import cv2

    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {d.shape}")
    if not cv2.imwrite(str(path), metres_to_kitti(d)):
        raise OSError(f"could not write depth PNG {path}")


def read_poses_file(path: str | os.PathLike[str]) -> np.ndarray:
    """12 numbers a line, a row-major 3x4 [R | t] (KITTI odometry's poses format) -> (N, 4, 4)."""
    path = Path(path)
    rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if rows.shape[1] != 12:
        raise ValueError(f"{path}: pose lines must have 12 numbers, got {rows.shape[1]}")
    poses = np.tile(np.eye(4), (len(rows), 1, 1))
    poses[:, :3, :] = rows.reshape(-1, 3, 4)
    return poses


def write_poses_file(path: str | os.PathLike[str], poses: np.ndarray) -> None:
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    Path(path).write_text("".join(" ".join(f"{v:.9e}" for v in T[:3, :].ravel()) + "\n" for T in poses))


# ---------------------------------------------------------------------------------------------------------------
# a raw drive

SENSOR_DIRS = {"image_00": 0, "image_01": 1, "image_02": 2, "image_03": 3}


class KittiRawDrive:
    """One `<date>/<date>_drive_<NNNN>_sync` folder; calibration from the parent date folder.

    Depth maps are read from `<depth_dir>/proj_depth/...`; depth_dir defaults to the drive folder (our layout).
    For a real KITTI download pass the depth-completion folder of the same drive, e.g.
    `data_depth_annotated/train/2011_09_26_drive_0001_sync`.
    """

    def __init__(self, drive_dir: str | os.PathLike[str], depth_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(drive_dir)
        if not self.path.is_dir():
            raise FileNotFoundError(f"not a drive folder: {self.path}")
        self.depth_dir = self.path if depth_dir is None else Path(depth_dir)
        self.date_dir = self.path.parent
        self._calib: KittiCalib | None = None
        self._stamps: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def calib(self) -> KittiCalib:
        if self._calib is None:
            self._calib = read_calib(self.date_dir)
        return self._calib

    # layout
    def _data_files(self, sensor: str, suffix: str) -> list[Path]:
        folder = self.path / sensor / "data"
        return sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []

    @property
    def cameras(self) -> tuple[int, ...]:
        return tuple(i for s, i in SENSOR_DIRS.items() if (self.path / s / "data").is_dir())

    @property
    def has_velodyne(self) -> bool:
        return (self.path / "velodyne_points" / "data").is_dir()

    @property
    def has_oxts(self) -> bool:
        return (self.path / "oxts" / "data").is_dir()

    def frame_counts(self) -> dict[str, int]:
        """Files per sensor folder that exists: {"image_02": 3, "velodyne_points": 3, "oxts": 3, ...}."""
        counts = {f"image_{i:02d}": len(self._data_files(f"image_{i:02d}", ".png")) for i in self.cameras}
        if self.has_velodyne:
            counts["velodyne_points"] = len(self._data_files("velodyne_points", ".bin"))
        if self.has_oxts:
            counts["oxts"] = len(self._data_files("oxts", ".txt"))
        return counts

    @property
    def num_frames(self) -> int:
        counts = self.frame_counts()
        if not counts:
            raise ValueError(f"{self.path}: no image_0X, velodyne_points or oxts data folder")
        return max(counts.values())

    def validate(self) -> None:
        """Raise a ValueError naming the folder whose frame or timestamp count differs from the others."""
        counts = self.frame_counts()
        if not counts:
            raise ValueError(f"{self.path}: no image_0X, velodyne_points or oxts data folder")
        n = max(counts.values())
        for sensor, c in counts.items():
            if c != n:
                raise ValueError(f"unequal frame counts: {self.path / sensor / 'data'} has {c} files, expected {n}")
            stamps = self.timestamps(sensor)
            if len(stamps) != n:
                raise ValueError(f"{self._stamp_path(sensor)} has {len(stamps)} timestamps for {n} frames")

    # data
    def _frame_path(self, sensor: str, i: int, suffix: str) -> Path:
        if i < 0:
            raise IndexError(f"frame index must be >= 0, got {i}")
        return self.path / sensor / "data" / f"{i:010d}{suffix}"

    def image(self, cam: int, i: int) -> np.ndarray:
        """uint8 (H, W, 3) RGB for cameras 2 and 3, (H, W) grey for cameras 0 and 1."""
        if cam not in SENSOR_DIRS.values():
            raise ValueError(f"camera must be 0..3, got {cam}")
        return read_image(self._frame_path(f"image_{cam:02d}", i, ".png"), color=cam in COLOR_CAMERAS)

    def velodyne(self, i: int) -> np.ndarray:
        return read_velodyne(self._frame_path("velodyne_points", i, ".bin"))

    def oxts(self, i: int) -> OxtsPacket:
        return read_oxts(self._frame_path("oxts", i, ".txt"))

    def _stamp_path(self, sensor: str) -> Path:
        if sensor in ("velodyne_points_start", "velodyne_points_end"):
            return self.path / "velodyne_points" / f"timestamps_{sensor.rsplit('_', 1)[1]}.txt"
        return self.path / sensor / "timestamps.txt"

    def timestamps(self, sensor: str | int) -> np.ndarray:
        """int64 ns: sensor "image_02" (or 2), "velodyne_points", "velodyne_points_start"/"_end", "oxts"."""
        if isinstance(sensor, (int, np.integer)):
            sensor = f"image_{int(sensor):02d}"
        if sensor not in self._stamps:
            self._stamps[sensor] = read_timestamps(self._stamp_path(sensor))
        return self._stamps[sensor]

    def cam_poses(self, cam: int) -> np.ndarray:
        """(N, 4, 4) T_world_cam: from synthetic/poses_cam0X.txt where present, else from OXTS (see oxts_poses)."""
        path = self.path / "synthetic" / f"poses_cam{cam:02d}.txt"
        if path.is_file():
            return read_poses_file(path)
        if not self.has_oxts:
            raise FileNotFoundError(f"{self.path}: no {path.name} and no oxts data to derive camera poses from")
        packets = [self.oxts(i) for i in range(self.num_frames)]
        T_imu_cam = invert_transform(self.calib.T_cam_imu(cam))
        return oxts_poses(packets) @ T_imu_cam

    def _depth(self, kind: str, cam: int, i: int) -> np.ndarray | None:
        path = self.depth_dir / "proj_depth" / kind / f"image_{cam:02d}" / f"{i:010d}.png"
        return read_depth_png(path) if path.is_file() else None

    def groundtruth_depth(self, cam: int, i: int) -> np.ndarray | None:
        """float32 metres, 0 = none; None where the file is absent (real KITTI lacks the first and last 5)."""
        return self._depth("groundtruth", cam, i)

    def sparse_depth(self, cam: int, i: int) -> np.ndarray | None:
        """Projected LiDAR (proj_depth/velodyne_raw) as float32 metres, 0 = none; None where absent."""
        return self._depth("velodyne_raw", cam, i)

    def normals(self, cam: int, i: int) -> np.ndarray | None:
        """float32 (H, W, 3) unit normals in the camera frame (synthetic drives only), else None."""
        path = self.path / "synthetic" / f"normals_{cam:02d}" / f"{i:010d}.npy"
        if not path.is_file():
            return None
        return np.load(path, allow_pickle=False).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# monodepth2 split files

class SplitEntry(NamedTuple):
    """One line of a monodepth2 split file: `2011_09_26/2011_09_26_drive_0001_sync 5 l`."""

    folder: str
    frame: int
    side: str  # "l" (camera 2) or "r" (camera 3)

    @property
    def cam(self) -> int:
        return 2 if self.side == "l" else 3


def read_split(path: str | os.PathLike[str]) -> list[SplitEntry]:
    path = Path(path)
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("l", "r") or not parts[1].lstrip("-").isdigit():
            raise ValueError(f"{path}:{lineno}: expected '<date>/<drive> <frame> l|r', got {line!r}")
        entries.append(SplitEntry(parts[0], int(parts[1]), parts[2]))
    return entries


def write_split(path: str | os.PathLike[str], entries: list[SplitEntry] | list[tuple[str, int, str]]) -> None:
    Path(path).write_text("".join(f"{f} {int(i)} {s}\n" for f, i, s in entries))
