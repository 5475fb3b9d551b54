"""Ray-cast a textured corridor (road, two walls, an end wall) for the monocular tests, and write it as a drive."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from depth_perception.data.kitti import KittiCalib
from depth_perception.data.kitti_writer import KittiDriveWriter
from depth_perception.geometry import PinholeCamera

CAMERA_HEIGHT = 1.65
DATE = "2011_09_26"
T0_NS = 1_317_042_145_964_389_445


def texture(seed: int = 0, size: int = 256) -> np.ndarray:
    """uint8 (size, size, 3) texture with detail at several scales."""
    rng = np.random.default_rng(seed)
    t = np.zeros((size, size, 3), np.float32)
    for s in (16, 32, 64):  # coarse enough not to alias at 60 m in a 128-pixel-wide image
        n = rng.random((size // s + 2, size // s + 2, 3)).astype(np.float32)
        t += cv2.resize(n, (size, size), interpolation=cv2.INTER_CUBIC)[:size, :size]
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).astype(np.uint8)


def render_corridor(
    camera: PinholeCamera, T_world_cam: np.ndarray, tex: np.ndarray,
    half_width: float = 6.0, end: float = 60.0, texels_per_metre: float = 8.0,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB (H, W, 3) uint8 and depth (H, W) float32 of the corridor seen from T_world_cam (optical frame, y down).

    World: road y = CAMERA_HEIGHT, walls x = +-half_width, end wall z = end; each surface textured by its two
    in-plane world coordinates.
    """
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3).astype(np.float64) @ np.linalg.inv(camera.K).T
    R, o = T_world_cam[:3, :3], T_world_cam[:3, 3]
    d = rays @ R.T
    planes = [(1, CAMERA_HEIGHT, (0, 2)), (0, half_width, (1, 2)), (0, -half_width, (1, 2)), (2, end, (0, 1))]
    best_t = np.full(len(d), np.inf)
    coords = np.zeros((len(d), 2))
    for axis, value, (a, b) in planes:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (value - o[axis]) / d[:, axis]
        hit = (t > 1e-6) & (t < best_t)
        best_t = np.where(hit, t, best_t)
        X = o + t[:, None] * d
        coords[hit] = np.stack([X[hit, a], X[hit, b] + 3.0 * axis], 1)  # offset keeps surfaces distinct
    size = tex.shape[0]
    mx = ((coords[:, 0] * texels_per_metre) % size).astype(np.float32).reshape(camera.shape)
    my = ((coords[:, 1] * texels_per_metre) % size).astype(np.float32).reshape(camera.shape)
    img = cv2.remap(tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    depth = best_t.reshape(camera.shape).astype(np.float32)  # rays have z = 1 in the camera frame
    return img, depth


def corridor_calib(width: int, height: int, baseline: float = 0.54) -> KittiCalib:
    cam = PinholeCamera(width, height, 0.58 * width, 0.58 * width, width / 2 - 0.5, height / 2 - 0.5)
    T_cam0_velo = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0, 0, 0, 1.0]])
    return KittiCalib.ideal(cam, {0: 0.0, 1: baseline, 2: 0.0, 3: baseline}, T_cam0_velo, np.eye(4))


def write_corridor_drive(root: Path, frames: int = 5, width: int = 64, height: int = 32, step: float = 0.5,
                         seed: int = 0, drive: int = 1) -> Path:
    """Cameras 02 / 03 driving `step` m a frame down the corridor, with dense ground truth and 10 % sparse depth."""
    calib = corridor_calib(width, height)
    cam = calib.cam(2)
    tex = texture(seed)
    rng = np.random.default_rng(seed)
    with KittiDriveWriter(root, DATE, drive, calib) as w:
        for k in range(frames):
            images, gt, sparse, poses = {}, {}, {}, {}
            for c, x in ((2, 0.0), (3, 0.54)):
                T = np.eye(4)
                T[:3, 3] = [x, 0.0, k * step]
                images[c], gt[c] = render_corridor(cam, T, tex)
                sparse[c] = np.where(rng.random(gt[c].shape) < 0.1, gt[c], 0).astype(np.float32)
                poses[c] = T
            w.add_frame(T0_NS + 100_000_000 * k, images, groundtruth=gt, velodyne_raw=sparse, poses=poses)
    return w.path
