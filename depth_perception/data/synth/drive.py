"""Render a synthetic drive and write it in the KITTI raw layout (plus dense ground truth) with KittiDriveWriter.

Frames are pure functions of (seed, frame index), so they render in any order, in worker processes, and a seed
always gives the same drive.
"""
from __future__ import annotations

import calendar
import datetime
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...geometry.projection import points_to_sparse_depth
from ...geometry.se3 import invert_transform, transform_points
from ..kitti import CALIB_FILES, KittiCalib, oxts_from_poses
from ..kitti_writer import KittiDriveWriter, drive_dir
from . import rig
from .lidar import lidar_rays, sweep
from .render import CameraRays, render_camera
from .textures import TextureAtlas
from .world import World, build_world

PERIOD_NS = 100_000_000  # 10 Hz
CAMERAS = (2, 3)
VIEW_M = 250.0


def drive_name(seed: int) -> tuple[str, int]:
    """(date folder, drive number) of a seed: 2011_09_26 plus seed // 10000 days, drive seed % 10000."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    day = datetime.date(2011, 9, 26) + datetime.timedelta(days=seed // 10000)
    return day.strftime("%Y_%m_%d"), seed % 10000


def frame_stamps(seed: int, frames: int) -> np.ndarray:
    """Capture times in ns: 10 Hz from a seed-dependent time of day, with the sub-millisecond jitter of KITTI's."""
    date, _ = drive_name(seed)
    day = datetime.datetime.strptime(date, "%Y_%m_%d").replace(tzinfo=datetime.timezone.utc)
    rng = np.random.default_rng([seed, 8])
    t0 = calendar.timegm(day.timetuple()) * 1_000_000_000 + int(rng.integers(9 * 3600, 17 * 3600)) * 1_000_000_000
    t0 += int(rng.integers(0, 1_000_000_000))
    jitter = rng.integers(-300_000, 300_000, frames)
    return t0 + PERIOD_NS * np.arange(frames, dtype=np.int64) + jitter


@dataclass(frozen=True)
class SynthConfig:
    """What a drive contains besides its seed: image size, LiDAR, and which cameras get normals."""

    width: int = rig.KITTI_WIDTH
    height: int = rig.KITTI_HEIGHT
    lidar: bool = True
    # An HDL-64E at 10 Hz fires each laser about 2083 times a turn (0.17 deg): ~130k rays, ~120k returns as in KITTI.
    lidar_azimuths: int = 2083
    normals: tuple[int, ...] = (2,)  # the stereo reference camera; (2, 3) for both, () for none

    def __post_init__(self) -> None:
        if self.width < 1 or self.height < 1:
            raise ValueError(f"image size must be positive, got width={self.width} height={self.height}")
        if self.lidar_azimuths < 8:
            raise ValueError(f"lidar_azimuths must be >= 8, got {self.lidar_azimuths}")
        if not set(self.normals) <= set(CAMERAS):
            raise ValueError(f"normals: cameras must be among {CAMERAS}, got {self.normals}")


@dataclass
class SynthScene:
    """Everything one process needs to render frames of a drive."""

    seed: int
    frames: int
    config: SynthConfig
    world: World
    calib: KittiCalib
    atlas: TextureAtlas
    stamps: np.ndarray
    T_world_imu: np.ndarray  # (N, 4, 4) in the render world

    @classmethod
    def build(cls, seed: int, frames: int, config: SynthConfig = SynthConfig()) -> SynthScene:
        if frames <= 0:
            raise ValueError(f"frames must be > 0, got {frames}")
        stamps = frame_stamps(seed, frames)
        times = (stamps - stamps[0]) * 1e-9
        world = build_world(seed, float(times[-1]) + 0.5, VIEW_M)
        x, y, yaw = world.ego.state(times)
        poses = np.stack([rig.imu_pose(a, b, c) for a, b, c in zip(x, y, yaw, strict=True)])
        calib = rig.kitti_calib(config.width, config.height)
        return cls(seed, frames, config, world, calib, TextureAtlas.build(), stamps, poses)

    def times(self) -> np.ndarray:
        return (self.stamps - self.stamps[0]) * 1e-9

    def T_world_cam(self, k: int, cam: int) -> np.ndarray:
        return self.T_world_imu[k] @ invert_transform(self.calib.T_cam_imu(cam))

    def T_world_velo(self, k: int) -> np.ndarray:
        return self.T_world_imu[k] @ invert_transform(self.calib.T_velo_imu)

    def render(self, k: int) -> dict[str, Any]:
        """Frame k: images, ground-truth depth and normals of cameras 2 and 3, the LiDAR sweep and its projections."""
        t = float(self.times()[k])
        x, y = self.T_world_imu[k, 0, 3], self.T_world_imu[k, 1, 3]
        objects = self.world.objects_at(t, (x, y), VIEW_M + 50.0)
        rng = np.random.default_rng([self.seed, 9, k])
        out: dict[str, Any] = {"images": {}, "groundtruth": {}, "normals": {}, "velodyne_raw": {}}
        for cam in CAMERAS:
            frame = render_camera(CameraRays(self.calib.cam(cam), self.T_world_cam(k, cam), VIEW_M + 150.0),
                                  self.world, objects, self.atlas, rng)
            # Normals only where the depth PNG can hold the depth: both ground truths cover the same pixels.
            far = frame.depth * 256.0 >= 65535.5
            frame.depth[far] = 0.0
            frame.normals[far] = 0.0
            out["images"][cam] = frame.image
            out["groundtruth"][cam] = frame.depth
            if cam in self.config.normals:
                out["normals"][cam] = frame.normals
        if self.config.lidar:
            velo = sweep(lidar_rays(self.T_world_velo(k), self.config.lidar_azimuths), self.world, objects, rng)
            out["velodyne"] = velo
            for cam in CAMERAS:
                pts = transform_points(self.calib.T_cam_velo(cam), velo[:, :3])
                out["velodyne_raw"][cam] = points_to_sparse_depth(pts, self.calib.cam(cam))
        return out


_SCENE: SynthScene | None = None


def _init_worker(seed: int, frames: int, config: SynthConfig) -> None:
    global _SCENE
    _SCENE = SynthScene.build(seed, frames, config)


def _render_in_worker(k: int) -> dict[str, Any]:
    assert _SCENE is not None
    return _SCENE.render(k)


@dataclass
class SynthSummary:
    path: Path
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def write_drive(root: str | os.PathLike[str], seed: int, frames: int, config: SynthConfig = SynthConfig(),
                workers: int = 1, progress: Any = None, overwrite: bool = False) -> SynthSummary:
    """Render the drive of `seed` into `root/<date>/<date>_drive_<NNNN>_sync` (see drive_name); returns a summary.

    The drive appears only when complete: it is written beside its final place and renamed. An existing non-empty
    drive folder raises FileExistsError, unless `overwrite`: then it is replaced only once the new drive is
    complete (an error, SIGINT or SIGKILL while rendering leaves the old drive as it was). `progress` wraps the
    frame iterator (e.g. utils.progress); `workers` > 1
    renders frames in that many processes.
    """
    start = time.perf_counter()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    date, number = drive_name(seed)
    final = drive_dir(root, date, number)
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise FileExistsError(f"drive folder {final} exists and is not empty")
    final.parent.mkdir(parents=True, exist_ok=True)
    scene = SynthScene.build(seed, frames, config)
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        _write_frames(scene, tmp_root, date, number, workers, progress)
        for name in CALIB_FILES:  # the date's calibration: identical for every drive of that date and size
            os.replace(tmp_root / date / name, final.parent / name)
        replaced = tmp_root / "replaced"
        if final.exists():  # the old drive moves aside (into the temporary folder) only now that the new one exists
            os.replace(final, replaced)
        try:
            os.replace(drive_dir(tmp_root, date, number), final)
        except BaseException:
            if replaced.exists():
                os.replace(replaced, final)
            raise
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return SynthSummary(final, frames, time.perf_counter() - start)


def _write_frames(scene: SynthScene, root: Path, date: str, number: int, workers: int, progress: Any) -> None:
    # OXTS world frame: the first IMU position is the origin (as oxts_poses makes it), axes as the render world.
    origin = np.eye(4)
    origin[:3, 3] = -scene.T_world_imu[0, :3, 3]
    packets = oxts_from_poses(scene.T_world_imu, stamps_ns=scene.stamps)
    frames = scene.frames
    if workers == 1:
        global _SCENE
        _SCENE = scene
        results = map(_render_in_worker, range(frames))
        pool = None
    else:
        import multiprocessing as mp

        pool = mp.get_context("spawn").Pool(workers, _init_worker, (scene.seed, frames, scene.config))
        results = pool.imap(_render_in_worker, range(frames))
    try:
        iterator = progress(results, total=frames) if progress is not None else results
        with KittiDriveWriter(root, date, number, scene.calib) as writer:
            for k, frame in enumerate(iterator):
                poses = {cam: origin @ scene.T_world_cam(k, cam) for cam in CAMERAS}
                writer.add_frame(int(scene.stamps[k]), frame["images"], frame.get("velodyne"), packets[k],
                                 frame["groundtruth"], frame["velodyne_raw"] or None, frame["normals"] or None, poses)
    finally:
        if pool is not None:
            pool.terminate()
