"""Write a tiny KITTI raw drive with the real writer: random images, a LiDAR ring, OXTS, depth PNGs, poses."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from depth_perception.data.kitti import KittiCalib, oxts_from_poses
from depth_perception.data.kitti_writer import KittiDriveWriter
from depth_perception.geometry import PinholeCamera

DATE = "2011_09_26"
T0_NS = 1_317_042_145_964_389_445  # 2011-09-26 13:02:25.964389445 UTC
PERIOD_NS = 103_456_789
# Velodyne -> cam0 as mounted in KITTI: x forward, y left, z up -> z forward, x right, y down.
T_CAM0_VELO = np.array([[0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, -0.08], [1.0, 0.0, 0.0, -0.27], [0.0, 0.0, 0.0, 1.0]])
T_VELO_IMU = np.array([[1.0, 0.0, 0.0, -0.81], [0.0, 1.0, 0.0, 0.32], [0.0, 0.0, 1.0, -0.80], [0.0, 0.0, 0.0, 1.0]])


def tiny_calib(width: int = 64, height: int = 32) -> KittiCalib:
    cam = PinholeCamera(width, height, 0.8 * width, 0.8 * width, width / 2 - 0.5, height / 2 - 0.5)
    return KittiCalib.ideal(cam, {0: 0.0, 1: 0.54, 2: -0.06, 3: 0.48}, T_CAM0_VELO, T_VELO_IMU)


def imu_poses(n: int) -> np.ndarray:
    """T_world_imu: 1 m a frame forward, turning 2 degrees a frame; the first at the origin."""
    poses = np.tile(np.eye(4), (n, 1, 1))
    for k in range(n):
        a = np.deg2rad(2.0 * k)
        poses[k, :3, :3] = [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]
        poses[k, :3, 3] = [k * 1.0, 0.02 * k * k, 0.0]
    return poses


def write_tiny_drive(root: Path, frames: int = 3, width: int = 64, height: int = 32, grey: bool = True,
                     seed: int = 0, drive: int = 1) -> Path:
    """A drive under root/<DATE>/ with cameras 0-3 (0, 1 grey if `grey`), velodyne, OXTS and depth PNGs."""
    rng = np.random.default_rng(seed)
    calib = tiny_calib(width, height)
    poses = imu_poses(frames)
    packets = oxts_from_poses(poses, stamps_ns=T0_NS + PERIOD_NS * np.arange(frames))
    with KittiDriveWriter(root, DATE, drive, calib) as w:
        for k in range(frames):
            images = {2: rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                      3: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)}
            if grey:
                images[0] = rng.integers(0, 256, (height, width), dtype=np.uint8)
                images[1] = rng.integers(0, 256, (height, width), dtype=np.uint8)
            n_pts = 100 + 10 * k
            velo = np.column_stack([rng.uniform(2, 30, n_pts), rng.uniform(-5, 5, n_pts), rng.uniform(-2, 1, n_pts),
                                    rng.uniform(0, 1, n_pts)]).astype(np.float32)
            gt = {c: rng.uniform(1, 80, (height, width)).astype(np.float32) for c in (2, 3)}
            sparse = {c: np.where(rng.random((height, width)) < 0.1, gt[c], 0).astype(np.float32) for c in (2, 3)}
            normals = {2: np.tile(np.array([0, 0, -1], np.float32), (height, width, 1))}
            cam_poses = {c: poses[k] @ np.linalg.inv(calib.T_cam_imu(c)) for c in (2, 3)}
            w.add_frame(T0_NS + PERIOD_NS * k, images, velo, packets[k], gt, sparse, normals, cam_poses)
    return w.path
