"""`depth-perception synth --seed S --frames N --out DIR`: render a synthetic drive in the KITTI raw layout."""
from __future__ import annotations

import argparse

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="world seed (training 0-99, evaluation 1000+)")
    parser.add_argument("--frames", type=int, default=50, help="frames at 10 Hz (default 50)")
    parser.add_argument("--out", required=True,
                        help="root folder; the drive goes to OUT/<date>/<date>_drive_<NNNN>_sync")
    parser.add_argument("--width", type=int, default=1242, help="image width (default KITTI's 1242)")
    parser.add_argument("--height", type=int, default=375, help="image height (default KITTI's 375)")
    parser.add_argument("--workers", type=int, default=1, help="render frames in this many processes")
    parser.add_argument("--no-lidar", action="store_true", help="skip the LiDAR sweep (and velodyne_raw depth)")
    parser.add_argument("--lidar-azimuths", type=int, default=2083,
                        help="LiDAR firings a turn per beam (default 2083: an HDL-64E at 10 Hz, 0.17 deg)")
    parser.add_argument("--normals", choices=("left", "both", "none"), default="left",
                        help="write normals for camera 2 (default), cameras 2 and 3, or none")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing drive of this seed")
    parser.add_argument("--scene", choices=("streets", "objects"), default="streets",
                        help="streets: a drive through the city (a video); objects: independent scenes of random "
                             "textured objects at varied focal length, baseline and depth range, for stereo and "
                             "completion training (OUT/objects_<seed>/...; default size 640x192)")


def run(args: argparse.Namespace) -> int:
    from ..data.kitti import read_calib
    from ..data.kitti_writer import drive_dir
    from ..data.synth import SynthConfig, drive_name, kitti_calib, write_drive
    from ..utils import progress

    for name in ("frames", "width", "height", "workers", "lidar_azimuths"):
        if getattr(args, name) < 1:
            raise CliError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise CliError(f"--seed must be >= 0, got {args.seed}")
    if args.scene == "objects":
        return _objects(args)
    date, number = drive_name(args.seed)
    path = drive_dir(args.out, date, number)
    if path.exists() and any(path.iterdir()) and not args.overwrite:
        raise CliError(f"{path} exists; pass --overwrite to replace it")
    calib = kitti_calib(args.width, args.height)
    date_dir = path.parent
    if (date_dir / "calib_cam_to_cam.txt").is_file():
        # Drives of one date share its calibration files: all must have the same image size.
        existing = read_calib(date_dir)
        if existing.S_rect.get(2) != calib.S_rect[2]:
            raise CliError(f"{date_dir} holds drives rendered at {existing.S_rect.get(2)}, not "
                           f"{(args.width, args.height)}; use another --out")
    try:
        config = SynthConfig(args.width, args.height, not args.no_lidar, args.lidar_azimuths,
                             {"left": (2,), "both": (2, 3), "none": ()}[args.normals])
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    summary = write_drive(args.out, args.seed, args.frames, config, args.workers,
                          progress=lambda it, total: progress(it, "synth", total=total), overwrite=args.overwrite)
    print(f"wrote {summary.path}: {summary.frames} frames in {summary.seconds:.1f} s "
          f"({summary.fps:.2f} frames/s, {args.workers} worker{'s' if args.workers > 1 else ''})")
    return 0


def _objects(args: argparse.Namespace) -> int:
    import time

    from ..data.synth.objects import write_objects_drive
    from ..utils import progress

    width = 640 if args.width == 1242 and args.height == 375 else args.width  # KITTI's size is the streets' default
    height = 192 if args.width == 1242 and args.height == 375 else args.height
    start = time.perf_counter()
    try:
        path = write_objects_drive(args.out, args.seed, args.frames, width, height, overwrite=args.overwrite,
                                   progress=lambda it, total: progress(it, "synth objects", total=total))
    except FileExistsError as exc:
        raise CliError(f"{exc}; pass --overwrite to replace it") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(f"wrote {path}: {args.frames} independent scenes in {time.perf_counter() - start:.1f} s")
    return 0
