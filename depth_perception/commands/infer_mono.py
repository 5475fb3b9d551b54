"""`depth-perception infer mono`: depth from single images (a file or a folder of them).

Writes depth to `--out` (`.npy`: float32 metres, NaN = unknown; `.png`: uint16 millimetres, 0 = unknown) and a
colorized picture beside it (`<stem>_color.png`); with a folder of images `--out` is a folder and each image
gets `<stem>.png` (or `.npy` with `--format npy`). Without `--calib` the camera is KITTI-like: fx = 0.58 W,
fy = 1.92 H, principal point at the centre (monodepth2's normalized intrinsics), which only matters for the
camera-height scale recovery of relative engines.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import CliError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="an image file, or a folder of images")
    parser.add_argument("--out", required=True, help="depth output: .npy / .png file, or a folder for --image DIR")
    parser.add_argument("--calib", help="calibration: YAML (fx, fy, cx, cy) or KITTI calib_cam_to_cam.txt")
    parser.add_argument("--engine", default="auto", help="'auto' (shipped engine), an artifact or a checkpoint folder")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--min-depth", type=float, default=0.1)
    parser.add_argument("--max-depth", type=float, default=80.0)
    parser.add_argument("--camera-height", type=float, default=1.65, help="metres above the road (relative engines)")
    parser.add_argument("--scale-recovery", choices=("auto", "camera_height", "none"), default="auto")
    parser.add_argument("--format", choices=("png", "npy"), default="png", help="file type inside an --out folder")


def default_camera(width: int, height: int):
    from ..geometry.camera import PinholeCamera

    return PinholeCamera(width, height, 0.58 * width, 1.92 * height, 0.5 * width - 0.5, 0.5 * height - 0.5)


def _inputs(image: Path, out: Path, fmt: str) -> list[tuple[Path, Path]]:
    if image.is_dir():
        files = sorted(p for p in image.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise CliError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image}")
        if out.suffix.lower() in (".npy", ".png"):
            raise CliError(f"--image is a folder, so --out must be a folder, got {out}")
        return [(f, out / f"{f.stem}.{fmt}") for f in files]
    if not image.exists():
        raise CliError(f"image not found: {image}")
    if out.suffix.lower() not in (".npy", ".png"):
        raise CliError(f"--out must end in .npy or .png, got {out.name}")
    return [(image, out)]


def run(args: argparse.Namespace) -> int:
    from ..pipelines.mono import MonoPipeline, MonoPipelineConfig
    from .infer_stereo import read_rgb, write_depth

    jobs = _inputs(Path(args.image), Path(args.out), args.format)
    try:
        config = MonoPipelineConfig(
            engine=args.engine, backend=args.backend, device=args.device, min_depth=args.min_depth,
            max_depth=args.max_depth, camera_height=args.camera_height, scale_recovery=args.scale_recovery,
            scale_smoothing=0.0 if len(jobs) == 1 else 0.9,
        )
        calib = None
        if args.calib:
            from ..data.calib_file import load_calib_file

            first = read_rgb(str(jobs[0][0]))
            calib = load_calib_file(args.calib, image_size=(first.shape[1], first.shape[0]))
        pipeline = MonoPipeline(config)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    for src, dst in jobs:
        rgb = read_rgb(str(src))
        h, w = rgb.shape[:2]
        camera = calib.camera_for(w, h) if calib is not None else default_camera(w, h)
        result = pipeline.process(rgb, camera)
        color = write_depth(dst, result.depth, args.min_depth, args.max_depth)
        valid = np.isfinite(result.depth)
        median = float(np.nanmedian(result.depth)) if valid.any() else float("nan")
        kind = "metric" if pipeline.metric else f"relative x{result.info.get('scale', 1.0):.3f}"
        print(f"{src.name}: {w}x{h} {kind}, {valid.mean() * 100:.1f}% valid, median {median:.2f} m, "
              f"{result.timings_ms['total']:.0f} ms -> {dst}, {color}")
    return 0
