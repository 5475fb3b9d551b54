"""The KITTI recording rig: camera intrinsics, camera offsets, Velodyne and OXTS mounting (2011_09_26 calibration)."""
from __future__ import annotations

import numpy as np

from ...geometry.camera import PinholeCamera
from ..kitti import KittiCalib

KITTI_WIDTH, KITTI_HEIGHT = 1242, 375
KITTI_CAMERA = PinholeCamera(KITTI_WIDTH, KITTI_HEIGHT, 721.5377, 721.5377, 609.5593, 172.854)
# Camera centres along cam0's x axis (m): cam2 and cam3 are 0.54 m apart.
CAM_X = {0: 0.0, 1: 0.537150, 2: -0.059864, 3: 0.473165}
# calib_velo_to_cam.txt and calib_imu_to_velo.txt of KITTI's 2011_09_26 recordings.
T_CAM0_VELO = np.array([
    [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
    [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
    [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01],
    [0.0, 0.0, 0.0, 1.0]])
T_VELO_IMU = np.array([
    [9.999976e-01, 7.553071e-04, -2.035826e-03, -8.086759e-01],
    [-7.854027e-04, 9.998898e-01, -1.482298e-02, 3.195559e-01],
    [2.024406e-03, 1.482454e-02, 9.998881e-01, -7.997231e-01],
    [0.0, 0.0, 0.0, 1.0]])
VELO_HEIGHT = 1.73  # m above the road
IMU_HEIGHT = VELO_HEIGHT + T_VELO_IMU[2, 3]  # the OXTS unit sits 0.8 m below the scanner


def kitti_calib(width: int = KITTI_WIDTH, height: int = KITTI_HEIGHT) -> KittiCalib:
    """KITTI's rig with ideal (rectified, distortion-free) cameras, resized to width x height."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got width={width} height={height}")
    camera = KITTI_CAMERA.scaled(width, height) if (width, height) != (KITTI_WIDTH, KITTI_HEIGHT) else KITTI_CAMERA
    return KittiCalib.ideal(camera, CAM_X, T_CAM0_VELO, T_VELO_IMU)


def imu_pose(x: float, y: float, yaw: float) -> np.ndarray:
    """T_world_imu of the vehicle at ground position (x, y) heading `yaw` (level road, no roll or pitch)."""
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    T[:3, 3] = (x, y, IMU_HEIGHT)
    return T
