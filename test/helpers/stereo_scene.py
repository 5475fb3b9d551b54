"""Render views of a textured plane by ray casting: ground truth for the plane-sweep tests."""
from __future__ import annotations

import cv2
import numpy as np

from depth_perception.geometry import PinholeCamera


def random_texture(seed: int = 0, size: int = 512) -> np.ndarray:
    """uint8 (size, size) texture with detail at several scales (what a matcher needs)."""
    rng = np.random.default_rng(seed)
    t = np.zeros((size, size), np.float32)
    for s in (4, 16, 64):
        n = rng.random((size // s + 2, size // s + 2)).astype(np.float32)
        t += cv2.resize(n, (size, size), interpolation=cv2.INTER_CUBIC)[:size, :size]
    t += rng.random((size, size)).astype(np.float32) * 0.5
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).astype(np.uint8)


def render_plane(
    camera: PinholeCamera,
    T_view_ref: np.ndarray,
    normal: np.ndarray,
    offset: float,
    texture: np.ndarray,
    texels_per_metre: float = 40.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The plane n . X = offset (reference frame, unit n) seen by a camera at T_view_ref.

    Returns the RGB image (H, W, 3) uint8 and the depth (H, W) float32 in that view's frame. The texture is
    pinned to the plane's reference-frame (x, y) coordinates, so every view sees the same surface.
    """
    n = np.asarray(normal, np.float64)
    n = n / np.linalg.norm(n)
    u, v = np.meshgrid(np.arange(camera.width), np.arange(camera.height))
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3).astype(np.float64) @ np.linalg.inv(camera.K).T
    T_ref_view = np.linalg.inv(T_view_ref)
    origin = T_ref_view[:3, 3]
    dirs = rays @ T_ref_view[:3, :3].T
    s = (offset - n @ origin) / (dirs @ n)
    X = origin + s[:, None] * dirs
    mx = (X[:, 0] * texels_per_metre + texture.shape[1] / 2).astype(np.float32).reshape(camera.shape)
    my = (X[:, 1] * texels_per_metre + texture.shape[0] / 2).astype(np.float32).reshape(camera.shape)
    img = cv2.remap(texture, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    depth = s.reshape(camera.shape).astype(np.float32)  # rays have z = 1 in the view's frame
    return np.repeat(img[..., None], 3, 2), depth


def pose(rx: float = 0.0, ry: float = 0.0, rz: float = 0.0, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    """T from small rotations about x, y, z (radians) and a translation."""
    R, _ = cv2.Rodrigues(np.array([rx, ry, rz], np.float64))
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


class _PlaneCalib:
    def __init__(self, camera: PinholeCamera, baseline: float) -> None:
        self._camera = camera
        self.baseline = baseline

    def cam(self, i: int) -> PinholeCamera:
        return self._camera


class PlaneDrive:
    """A drive in the shape of `data.kitti.KittiRawDrive` (the parts the stereo code reads): a camera rig
    moving forward past a textured slanted plane; left = camera 02, right = camera 03."""

    def __init__(self, frames: int = 4, camera: PinholeCamera | None = None, baseline: float = 0.5,
                 sparse: bool = False, seed: int = 0) -> None:
        self.camera = camera or PinholeCamera(128, 48, 90.0, 90.0, 63.5, 23.5)
        self.calib = _PlaneCalib(self.camera, baseline)
        self.num_frames = frames
        self.sparse = sparse
        rng = np.random.default_rng(seed)
        n = np.array([rng.uniform(-0.2, 0.2), rng.uniform(-0.2, 0.2), 1.0])
        self.normal = n / np.linalg.norm(n)
        self.offset = 14.0
        self.texture = random_texture(seed + 11)
        self._poses = np.stack([pose(t=(0.0, 0.0, 0.5 * i)) for i in range(frames)])  # T_world_cam

    def cam_poses(self, cam: int) -> np.ndarray:
        T = self._poses.copy()
        if cam == 3:
            T[:, 0, 3] += self.calib.baseline
        return T

    def _render(self, cam: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        # The plane lives in the world (= camera 02 at frame 0) frame.
        T_view_world = np.linalg.inv(self.cam_poses(cam)[i])
        return render_plane(self.camera, T_view_world, self.normal, self.offset, self.texture, 8.0)

    def image(self, cam: int, i: int) -> np.ndarray:
        return self._render(cam, i)[0]

    def groundtruth_depth(self, cam: int, i: int) -> np.ndarray | None:
        depth = self._render(cam, i)[1]
        if self.sparse:
            keep = np.zeros_like(depth)
            keep[::4, ::3] = 1
            return depth * keep
        return depth

    def sparse_depth(self, cam: int, i: int) -> np.ndarray:
        depth = self._render(cam, i)[1].copy()
        depth[1::2] = 0
        return depth

    def normals(self, cam: int, i: int) -> np.ndarray | None:
        if self.sparse:
            return None
        R = np.linalg.inv(self.cam_poses(cam)[i])[:3, :3]
        n = -(R @ self.normal)  # towards the camera
        return np.broadcast_to(n.astype(np.float32), self.camera.shape + (3,)).copy()


def write_plane_drive(root, frames: int = 3, seed: int = 0, date: str = "2011_09_26", drive: int = 1):
    """Write a PlaneDrive to disk in the KITTI raw layout (KittiDriveWriter); returns the drive folder."""
    from depth_perception.data.kitti import KittiCalib
    from depth_perception.data.kitti_writer import KittiDriveWriter

    src = PlaneDrive(frames=frames, seed=seed)
    calib = KittiCalib.ideal(src.camera, {2: 0.0, 3: src.calib.baseline}, np.eye(4), np.eye(4))
    with KittiDriveWriter(root, date, drive, calib) as w:
        for i in range(frames):
            w.add_frame(
                1_000_000_000 + i * 100_000_000,
                images={2: src.image(2, i), 3: src.image(3, i)},
                groundtruth={2: src.groundtruth_depth(2, i)},
                normals={2: src.normals(2, i)},
                poses={2: src.cam_poses(2)[i], 3: src.cam_poses(3)[i]},
            )
    return w.path
