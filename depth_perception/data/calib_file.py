"""The calibration file every `infer` command reads: a small YAML, a KITTI calib_cam_to_cam.txt, or full matrices.

Accepted forms (YAML keys; matrices as flat lists or nested rows, or a ROS `{rows, cols, data}` mapping):
  1. `fx`, `fy`, `cx`, `cy`, `baseline` (metres, the right camera displaced along +x), optional `width`, `height`.
  2. `K` (3x3) or `P` / `P_left` (3x4), with `P_right` (3x4, the baseline follows from it), or `baseline`,
     or `T_right_left` (4x4, any relative pose); optional `width`, `height`.
  3. ROS camera_info YAML (camera_calibration's output): `image_width`, `image_height`, `camera_matrix`,
     `projection_matrix`, optional `baseline`.
  4. A KITTI raw `calib_cam_to_cam.txt` (left/right = cameras 02/03 by default; `calib_velo_to_cam.txt` beside
     it supplies T_cam_velo). Only the left camera's keys are required; the right one's only for stereo.
  5. A Middlebury 2014 `calib.txt` (`cam0`, `cam1`, `doffs`, `baseline` in millimetres, `width`, `height`).
  6. OpenCV FileStorage YAML (`%YAML:1.0` or `%YAML 1.2`, matrices tagged `!!opencv-matrix`), as OpenCV's
     calibration tools write it: the camera calibration sample's `camera_matrix`, `image_width`,
     `image_height`, or the stereo sample's `M1` / `M2` (intrinsics.yml) and rectified `P1` / `P2`
     (extrinsics.yml; the baseline follows from `P2` in the units the calibration board was measured in:
     metres here). FileStorage XML is refused, naming the YAML form.
Distortion coefficients (ROS `distortion_coefficients`, OpenCV `D1`, ...) are not applied: the images must be
rectified (undistorted) already, as the nodes' `image_rect` topics are.
Any form may add `T_cam_velo` (4x4, LiDAR -> camera) for `infer completion --points`.

Where the file gives the right camera's own matrix (KITTI `P_rect_03`, `P_right`, Middlebury `cam1`), its
intrinsics are kept as `right_camera`: the two rectified cameras of a real rig often differ in principal point
(Middlebury's `doffs`), and every disparity is off by that difference if it is dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera, baseline_from_projections
from ..geometry.plane_sweep import rectified_pose

# how far an image's aspect ratio may differ from its calibration's and still be scaled to it: KITTI's drives
# (1242x375, 1241x376, 1238x374, 1226x370, 1224x370) differ by under 0.5%
ASPECT_TOLERANCE = 0.02


@dataclass(frozen=True)
class CalibFile:
    """A camera, and where known the stereo geometry and the LiDAR extrinsics."""

    camera: PinholeCamera
    baseline: float | None = None
    right_camera: PinholeCamera | None = None  # the right camera's own intrinsics, where the file gives them
    T_right_left: np.ndarray | None = None  # 4x4, right camera <- left (reference) camera
    T_cam_velo: np.ndarray | None = None  # 4x4, camera <- LiDAR
    source: str = ""

    def camera_for(self, width: int, height: int) -> PinholeCamera:
        """The camera at an image's resolution (scaled when the file was written for another size of the same
        aspect ratio; another aspect ratio is a crop or another camera, and is refused)."""
        return self._scaled(self.camera, width, height)

    def right_camera_for(self, width: int, height: int) -> PinholeCamera:
        """The right camera at an image's resolution (the left one where the file gives no right intrinsics)."""
        if self.right_camera is None:
            return self.camera_for(width, height)
        return self._scaled(self.right_camera, width, height)

    def _scaled(self, camera: PinholeCamera, width: int, height: int) -> PinholeCamera:
        if (width, height) == (camera.width, camera.height):
            return camera
        sx, sy = width / camera.width, height / camera.height
        if abs(sx / sy - 1.0) > ASPECT_TOLERANCE:
            raise ValueError(f"calibration {self.source} is for {camera.width}x{camera.height} images, the images are "
                             f"{width}x{height}: another aspect ratio (a crop, or another camera) cannot be scaled")
        return camera.scaled(width, height)

    def require_stereo(self) -> np.ndarray:
        """T_right_left, or a ValueError naming the missing keys."""
        if self.T_right_left is None:
            raise ValueError(
                f"calibration {self.source} has no stereo geometry: give 'baseline', 'P_right' or 'T_right_left'"
            )
        return self.T_right_left


def _matrix(value: Any, shape: tuple[int, int], key: str, source: str) -> np.ndarray:
    if isinstance(value, dict):
        if "data" not in value:
            raise ValueError(f"{source}: '{key}' is a mapping without 'data'")
        if "rows" in value and "cols" in value and (value["rows"], value["cols"]) != shape:
            raise ValueError(f"{source}: '{key}' must be {shape[0]}x{shape[1]}, its mapping says "
                             f"{value['rows']}x{value['cols']}")
        value = value["data"]
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: '{key}' is not a numeric matrix: {value!r}") from exc
    if arr.size != shape[0] * shape[1]:
        n = shape[0] * shape[1]
        raise ValueError(f"{source}: '{key}' must have {shape[0]}x{shape[1]} = {n} numbers, got {arr.size}")
    return arr.reshape(shape)


def _number(data: dict[str, Any], key: str, source: str) -> float:
    try:
        value = float(data[key])
    except KeyError:
        raise ValueError(f"{source}: missing key '{key}'") from None
    except (TypeError, ValueError):
        raise ValueError(f"{source}: '{key}' must be a number, got {data[key]!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"{source}: '{key}' must be finite, got {value}")
    return value


def _size(data: dict[str, Any], image_size: tuple[int, int] | None, source: str) -> tuple[int, int]:
    for wk, hk in (("width", "height"), ("image_width", "image_height")):
        if wk in data and hk in data:
            return int(_number(data, wk, source)), int(_number(data, hk, source))
    if image_size is None:
        raise ValueError(f"{source}: missing keys 'width' and 'height' (and no image to take the size from)")
    return int(image_size[0]), int(image_size[1])


def _right_from_projection(
    P_left: np.ndarray, P_right: np.ndarray, key: str, source: str
) -> tuple[float, np.ndarray]:
    """Baseline and T_right_left of a rectified pair given as two projection matrices (each may have its own K)."""
    b = baseline_from_projections(P_left, P_right)
    if not b > 0:
        raise ValueError(f"{source}: {key} gives a non-positive baseline {b:.4f} m (is the right camera on +x?)")
    return b, rectified_pose(b)


def _stereo_from(
    data: dict[str, Any], K: np.ndarray, P_left: np.ndarray | None, size: tuple[int, int], source: str
) -> tuple[float | None, np.ndarray | None, PinholeCamera | None]:
    right_camera = None
    if "K_right" in data:
        right_camera = PinholeCamera.from_K(_matrix(data["K_right"], (3, 3), "K_right", source), *size)
    if "T_right_left" in data:
        T = _matrix(data["T_right_left"], (4, 4), "T_right_left", source)
        return float(np.linalg.norm(T[:3, 3])), T, right_camera
    if "baseline" in data:
        b = _number(data, "baseline", source)
        if not b > 0:
            raise ValueError(f"{source}: 'baseline' must be > 0 metres, got {b}")
        return b, rectified_pose(b), right_camera
    if "P_right" in data:
        P_right = _matrix(data["P_right"], (3, 4), "P_right", source)
        P_left = P_left if P_left is not None else np.hstack([K, np.zeros((3, 1))])
        b, T = _right_from_projection(P_left, P_right, "P_right", source)
        return b, T, PinholeCamera.from_projection(P_right, *size)
    return None, None, right_camera


def _from_yaml(data: dict[str, Any], image_size: tuple[int, int] | None, source: str) -> CalibFile:
    P_left = None
    if "fx" in data or "fy" in data:
        fx, fy, cx, cy = (_number(data, k, source) for k in ("fx", "fy", "cx", "cy"))
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    elif "K" in data:
        K = _matrix(data["K"], (3, 3), "K", source)
    elif "P" in data or "P_left" in data:
        key = "P_left" if "P_left" in data else "P"
        P_left = _matrix(data[key], (3, 4), key, source)
        K = P_left[:, :3]
    elif "camera_matrix" in data:
        K = _matrix(data["camera_matrix"], (3, 3), "camera_matrix", source)
        if "projection_matrix" in data:
            P_left = _matrix(data["projection_matrix"], (3, 4), "projection_matrix", source)
            K = P_left[:, :3]
    else:
        raise ValueError(f"{source}: missing intrinsics: give 'fx', 'fy', 'cx', 'cy', or 'K', or 'P'")
    width, height = _size(data, image_size, source)
    camera = PinholeCamera.from_K(K, width, height)
    baseline, T_rl, right = _stereo_from(data, K, P_left, (width, height), source)
    T_cv = _matrix(data["T_cam_velo"], (4, 4), "T_cam_velo", source) if "T_cam_velo" in data else None
    return CalibFile(camera, baseline, right, T_rl, T_cv, source)


def _read_kitti_txt(path: Path) -> dict[str, np.ndarray]:
    """The numeric entries of a KITTI calib_*.txt (parsed by data.kitti, the one KITTI reader); calib_time and
    other text entries are left out."""
    from .kitti import parse_key_values

    out: dict[str, np.ndarray] = {}
    for key, value in parse_key_values(path, _read_text(path)).items():
        try:
            out[key] = np.array([float(x) for x in value.split()])
        except ValueError:
            continue
        if out[key].size == 0:
            del out[key]
    return out


def _kitti_matrix(raw: dict[str, np.ndarray], key: str, n: int, source: str) -> np.ndarray:
    if raw[key].size != n:
        raise ValueError(f"{source}: '{key}' must have {n} numbers, got {raw[key].size}")
    return raw[key]


def _from_kitti(path: Path, cameras: tuple[int, int], image_size: tuple[int, int] | None) -> CalibFile:
    source = str(path)
    raw = _read_kitti_txt(path)
    left, right = cameras
    p_left, p_right, s_left = f"P_rect_0{left}", f"P_rect_0{right}", f"S_rect_0{left}"
    needed = [p_left] + ([s_left] if image_size is None else [])
    missing = [k for k in needed if k not in raw]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}")
    P_left = _kitti_matrix(raw, p_left, 12, source).reshape(3, 4)
    if s_left in raw:
        width, height = (int(round(v)) for v in _kitti_matrix(raw, s_left, 2, source))
    else:
        width, height = image_size
    camera = PinholeCamera.from_projection(P_left, width, height)
    baseline = T_right_left = right_camera = None
    if p_right in raw:  # only stereo needs the right camera: require_stereo() names it when it is missing
        P_right = _kitti_matrix(raw, p_right, 12, source).reshape(3, 4)
        baseline, T_right_left = _right_from_projection(P_left, P_right, p_right, source)
        right_camera = PinholeCamera.from_projection(P_right, width, height)
    T_cam_velo = None
    velo = path.parent / "calib_velo_to_cam.txt"
    if velo.exists() and "R_rect_00" in raw:
        v = _read_kitti_txt(velo)
        if "R" in v and "T" in v:
            T_velo = np.eye(4)
            T_velo[:3, :3] = v["R"].reshape(3, 3)
            T_velo[:3, 3] = v["T"]
            R_rect = np.eye(4)
            R_rect[:3, :3] = raw["R_rect_00"].reshape(3, 3)
            # Rectified cam0 -> rectified cam i: P_rect_0i = K [I | t_i] (as data.kitti.KittiCalib.T_cami_cam0).
            T_i0 = np.eye(4)
            T_i0[:3, 3] = np.linalg.solve(P_left[:, :3], P_left[:, 3])
            T_cam_velo = T_i0 @ R_rect @ T_velo
    return CalibFile(camera, baseline, right_camera, T_right_left, T_cam_velo, source)


_MIDDLEBURY_MATRIX = re.compile(r"^\[(.*)\]$")


def is_middlebury_calib(text: str) -> bool:
    """Whether a calibration file's text is in Middlebury's calib.txt form (a `cam0=` line)."""
    return re.search(r"^\s*cam0\s*=", text, re.MULTILINE) is not None


def _from_middlebury(path: Path, text: str) -> CalibFile:
    """Middlebury 2014 `calib.txt`: `cam0=[f 0 cx0; 0 f cy; 0 0 1]`, `cam1=[...]`, `doffs=cx1-cx0`,
    `baseline` in millimetres, `width`, `height` (and ndisp, isint, vmin, vmax, dyavg, dymax, unused here)."""
    source = str(path)
    data: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            data[key.strip()] = value.strip()
    missing = [k for k in ("cam0", "cam1", "baseline", "width", "height") if k not in data]
    if missing:
        raise ValueError(f"{source}: Middlebury calib.txt is missing keys {missing}")

    def matrix(key: str) -> np.ndarray:
        m = _MIDDLEBURY_MATRIX.match(data[key])
        rows = m.group(1).split(";") if m else []
        try:
            values = [float(x) for row in rows for x in row.split()]
        except ValueError:
            values = []
        if len(values) != 9:
            raise ValueError(f"{source}: '{key}' must be a 3x3 matrix like [f 0 cx; 0 f cy; 0 0 1], got {data[key]!r}")
        return np.array(values).reshape(3, 3)

    K0, K1 = matrix("cam0"), matrix("cam1")
    baseline_mm = _number(data, "baseline", source)
    if not baseline_mm > 0:
        raise ValueError(f"{source}: 'baseline' must be > 0 millimetres, got {baseline_mm}")
    width, height = int(_number(data, "width", source)), int(_number(data, "height", source))
    if "doffs" in data:
        doffs = _number(data, "doffs", source)
        if abs((K1[0, 2] - K0[0, 2]) - doffs) > 0.01:
            raise ValueError(f"{source}: doffs {doffs} disagrees with cam1's cx - cam0's cx = {K1[0, 2] - K0[0, 2]}")
    b = baseline_mm / 1000.0
    return CalibFile(PinholeCamera.from_K(K0, width, height), b, PinholeCamera.from_K(K1, width, height),
                     rectified_pose(b), None, source)


MAX_CALIB_BYTES = 1 << 20  # a calibration is a few kB; anything this large is not one


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CALIB_BYTES:
            raise ValueError(f"calibration file {path} is {size / 2**20:.1f} MiB: too large for a calibration "
                             f"(at most {MAX_CALIB_BYTES // 1024} kB)")
        return path.read_text().lstrip("\ufeff")
    except UnicodeDecodeError:
        raise ValueError(f"calibration file {path} is not a text file (not UTF-8)") from None
    except OSError as exc:
        raise ValueError(f"cannot read calibration file {path}: {exc.strerror or exc}") from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# OpenCV's stereo calibration sample's names -> ours (used where ours are absent): raw intrinsics M1 / M2,
# rectified projections P1 / P2. Where a file holds both, the rectified ones describe the (rectified) images and
# the raw M1 / M2 are left out: mixing them gives each camera another principal point.
_OPENCV_KEYS = {"M1": "K", "M2": "K_right", "P1": "P_left", "P2": "P_right"}
_OPENCV_RAW = ("M1", "M2")


def _opencv_yaml(text: str) -> str | None:
    """OpenCV FileStorage YAML as plain YAML (its `%YAML:1.0` directive, or OpenCV 4's `%YAML 1.2`, dropped;
    `!!opencv-matrix` tags removed: each matrix is then a `{rows, cols, dt, data}` mapping), or None if the text
    is not in that form."""
    if not (text.lstrip().startswith("%YAML:1.") or "!!opencv-" in text):
        return None
    lines = text.lstrip().splitlines()
    if lines and lines[0].startswith("%YAML"):
        lines = lines[1:]
    return re.sub(r"!!opencv-(?:nd-)?matrix", "", "\n".join(lines))


def load_calib_file(
    path: str | Path, image_size: tuple[int, int] | None = None, kitti_cameras: tuple[int, int] = (2, 3)
) -> CalibFile:
    """Read a calibration file in any accepted form; `image_size` (width, height) fills a missing size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"calibration file not found: {path}")
    if path.is_dir():
        raise ValueError(f"calibration path {path} is a folder, not a file")
    text = _read_text(path)
    if "\x00" in text:
        raise ValueError(f"calibration file {path} is not a text file (it holds NUL bytes)")
    if is_middlebury_calib(text):
        return _from_middlebury(path, text)
    if path.suffix == ".txt" or "P_rect_0" in text:
        return _from_kitti(path, kitti_cameras, image_size)
    if text.lstrip().startswith("<?xml") or "<opencv_storage>" in text[:512]:
        raise ValueError(f"{path}: OpenCV FileStorage XML is not read here; write the calibration as FileStorage "
                         "YAML (a .yml name) or as a plain YAML")
    import yaml

    opencv = _opencv_yaml(text)
    try:
        data = yaml.safe_load(text if opencv is None else opencv)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of calibration keys, got {type(data).__name__}")
    if opencv is not None:
        rectified = "P1" in data or "P2" in data
        if rectified and "P1" not in data:
            raise ValueError(f"{path}: P2 without P1: the rectified left projection is needed beside the right one")
        data = {**{ours: data[theirs] for theirs, ours in _OPENCV_KEYS.items()
                   if theirs in data and ours not in data and not (rectified and theirs in _OPENCV_RAW)},
                **{k: v for k, v in data.items() if not (rectified and k in _OPENCV_RAW)}}
    return _from_yaml(data, image_size, str(path))
