"""The calibration file every `infer` command reads: a small YAML, a KITTI calib_cam_to_cam.txt, or full matrices.

Accepted forms (YAML keys; matrices as flat lists or nested rows, or a ROS `{rows, cols, data}` mapping):
  1. `fx`, `fy`, `cx`, `cy`, `baseline` (metres, the right camera displaced along +x), optional `width`, `height`.
  2. `K` (3x3) or `P` / `P_left` (3x4), with `P_right` (3x4, the baseline follows from it), or `baseline`,
     or `T_right_left` (4x4, any relative pose); optional `width`, `height`.
  3. ROS camera_info YAML (camera_calibration's output): `image_width`, `image_height`, `camera_matrix`,
     `projection_matrix`, optional `baseline`.
  4. A KITTI raw `calib_cam_to_cam.txt` (left/right = cameras 02/03 by default; `calib_velo_to_cam.txt` beside
     it supplies T_cam_velo).
Any form may add `T_cam_velo` (4x4, LiDAR -> camera) for `infer completion --points`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera, baseline_from_projections
from ..geometry.plane_sweep import rectified_pose


@dataclass(frozen=True)
class CalibFile:
    """A camera, and where known the stereo geometry and the LiDAR extrinsics."""

    camera: PinholeCamera
    baseline: float | None = None
    T_right_left: np.ndarray | None = None  # 4x4, right camera <- left (reference) camera
    T_cam_velo: np.ndarray | None = None  # 4x4, camera <- LiDAR
    source: str = ""

    def camera_for(self, width: int, height: int) -> PinholeCamera:
        """The camera at an image's resolution (scaled when the file was written for another size)."""
        if (width, height) == (self.camera.width, self.camera.height):
            return self.camera
        return self.camera.scaled(width, height)

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


def _stereo_from(
    data: dict[str, Any], K: np.ndarray, P_left: np.ndarray | None, source: str  # noqa: N803
) -> tuple[float | None, np.ndarray | None]:
    if "T_right_left" in data:
        T = _matrix(data["T_right_left"], (4, 4), "T_right_left", source)
        return float(np.linalg.norm(T[:3, 3])), T
    if "baseline" in data:
        b = _number(data, "baseline", source)
        if not b > 0:
            raise ValueError(f"{source}: 'baseline' must be > 0 metres, got {b}")
        return b, rectified_pose(b)
    if "P_right" in data:
        P_right = _matrix(data["P_right"], (3, 4), "P_right", source)
        P_left = P_left if P_left is not None else np.hstack([K, np.zeros((3, 1))])
        b = baseline_from_projections(P_left, P_right)
        if not b > 0:
            raise ValueError(f"{source}: P_right gives a non-positive baseline {b:.4f} m (is the right camera on +x?)")
        return b, rectified_pose(b)
    return None, None


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
    baseline, T_rl = _stereo_from(data, K, P_left, source)
    T_cv = _matrix(data["T_cam_velo"], (4, 4), "T_cam_velo", source) if "T_cam_velo" in data else None
    return CalibFile(camera, baseline, T_rl, T_cv, source)


def _read_kitti_txt(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition(":")
        if not sep or not value.strip():
            continue
        try:
            out[key.strip()] = np.array([float(x) for x in value.split()])
        except ValueError:
            continue  # calib_time and other non-numeric entries
    return out


def _from_kitti(path: Path, cameras: tuple[int, int]) -> CalibFile:
    source = str(path)
    raw = _read_kitti_txt(path)
    left, right = cameras
    keys = [f"P_rect_0{left}", f"P_rect_0{right}", f"S_rect_0{left}"]
    missing = [k for k in keys if k not in raw]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}")
    P_left = raw[keys[0]].reshape(3, 4)
    P_right = raw[keys[1]].reshape(3, 4)
    width, height = (int(round(v)) for v in raw[keys[2]][:2])
    baseline = baseline_from_projections(P_left, P_right)
    camera = PinholeCamera.from_projection(P_left, width, height)
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
    return CalibFile(camera, baseline, rectified_pose(baseline), T_cam_velo, source)


def load_calib_file(
    path: str | Path, image_size: tuple[int, int] | None = None, kitti_cameras: tuple[int, int] = (2, 3)
) -> CalibFile:
    """Read a calibration file in any accepted form; `image_size` (width, height) fills a missing size."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"calibration file not found: {path}")
    text = path.read_text()
    if path.suffix == ".txt" or "P_rect_0" in text:
        return _from_kitti(path, kitti_cameras)
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a YAML mapping of calibration keys, got {type(data).__name__}")
    return _from_yaml(data, image_size, str(path))
