"""Write a drive in the exact KITTI raw layout (plus depth-completion PNGs and our synthetic extras), frame by frame."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .kitti import (
    OXTS_DATAFORMAT,
    KittiCalib,
    OxtsPacket,
    format_oxts,
    write_calib,
    write_depth_png,
    write_image,
    write_poses_file,
    write_timestamps,
    write_velodyne,
)


def drive_dir(root: str | os.PathLike[str], date: str, drive: int) -> Path:
    """`<root>/<date>/<date>_drive_<NNNN>_sync`."""
    return Path(root) / date / f"{date}_drive_{int(drive):04d}_sync"


class KittiDriveWriter:
    """Writes `<root>/<date>/<date>_drive_<NNNN>_sync/...` and the date's calibration files.

    Data files are written as frames arrive; timestamps, poses and the calibration on `close()` (or leaving a
    `with` block). Every frame must give the same sensors as the first.
    """

    def __init__(self, root: str | os.PathLike[str], date: str, drive: int, calib: KittiCalib) -> None:
        self.date_dir = Path(root) / date
        self.path = drive_dir(root, date, drive)
        self.calib = calib
        self.frame = 0
        self._stamps: list[int] = []
        self._sensors: tuple | None = None
        self._poses: dict[int, list[np.ndarray]] = {}
        self._closed = False
        self.path.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> KittiDriveWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def _dir(self, *parts: str) -> Path:
        d = self.path.joinpath(*parts)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def add_frame(
        self,
        timestamp_ns: int,
        images: dict[int, np.ndarray],
        velodyne: np.ndarray | None = None,
        oxts: OxtsPacket | Sequence[float] | None = None,
        groundtruth: dict[int, np.ndarray] | None = None,
        velodyne_raw: dict[int, np.ndarray] | None = None,
        normals: dict[int, np.ndarray] | None = None,
        poses: dict[int, np.ndarray] | None = None,
    ) -> int:
        """Write one frame (all sensors share `timestamp_ns`); returns its index."""
        if self._closed:
            raise RuntimeError(f"writer for {self.path} is closed")
        sensors = (tuple(sorted(images)), velodyne is not None, oxts is not None,
                   tuple(sorted(groundtruth or {})), tuple(sorted(velodyne_raw or {})),
                   tuple(sorted(normals or {})), tuple(sorted(poses or {})))
        if self._sensors is None:
            self._sensors = sensors
        elif sensors != self._sensors:
            raise ValueError(f"frame {self.frame} gives other sensors than frame 0: {sensors} vs {self._sensors}")
        if self._stamps and int(timestamp_ns) <= self._stamps[-1]:
            raise ValueError(f"timestamps must increase: {timestamp_ns} after {self._stamps[-1]}")
        name = f"{self.frame:010d}"
        for cam, img in images.items():
            if cam not in (0, 1, 2, 3):
                raise ValueError(f"camera must be 0..3, got {cam}")
            write_image(self._dir(f"image_{cam:02d}", "data") / f"{name}.png", img)
        if velodyne is not None:
            write_velodyne(self._dir("velodyne_points", "data") / f"{name}.bin", velodyne)
        if oxts is not None:
            (self._dir("oxts", "data") / f"{name}.txt").write_text(format_oxts(oxts) + "\n")
        for kind, maps in (("groundtruth", groundtruth), ("velodyne_raw", velodyne_raw)):
            for cam, depth in (maps or {}).items():
                write_depth_png(self._dir("proj_depth", kind, f"image_{cam:02d}") / f"{name}.png", depth)
        for cam, n in (normals or {}).items():
            n = np.asarray(n)
            if n.ndim != 3 or n.shape[2] != 3:
                raise ValueError(f"normals must be (H, W, 3), got {n.shape} for camera {cam}")
            np.save(self._dir("synthetic", f"normals_{cam:02d}") / f"{name}.npy", n.astype(np.float16))
        for cam, T in (poses or {}).items():
            T = np.asarray(T, dtype=np.float64)
            if T.shape != (4, 4):
                raise ValueError(f"pose of camera {cam} must be 4x4, got {T.shape}")
            self._poses.setdefault(cam, []).append(T)
        self._stamps.append(int(timestamp_ns))
        self.frame += 1
        return self.frame - 1

    def close(self) -> None:
        """Write the timestamp files, the poses, oxts/dataformat.txt and the calibration files."""
        if self._closed:
            return
        self._closed = True
        write_calib(self.date_dir, self.calib)
        if self._sensors is None:
            return
        cams, has_velo, has_oxts = self._sensors[:3]
        for cam in cams:
            write_timestamps(self.path / f"image_{cam:02d}" / "timestamps.txt", self._stamps)
        if has_velo:
            # A sweep takes 0.1 s; KITTI's sync stamp is when the scanner faces forward, mid-sweep.
            stamps = np.array(self._stamps, dtype=np.int64)
            velo = self.path / "velodyne_points"
            write_timestamps(velo / "timestamps.txt", stamps)
            write_timestamps(velo / "timestamps_start.txt", np.maximum(stamps - 50_000_000, 0))
            write_timestamps(velo / "timestamps_end.txt", stamps + 50_000_000)
        if has_oxts:
            write_timestamps(self.path / "oxts" / "timestamps.txt", self._stamps)
            (self.path / "oxts" / "dataformat.txt").write_text(OXTS_DATAFORMAT)
        for cam, poses in self._poses.items():
            write_poses_file(self._dir("synthetic") / f"poses_cam{cam:02d}.txt", np.stack(poses))
