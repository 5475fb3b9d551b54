"""`depth-perception infer stereo`: depth from a stereo pair (and optional extra posed views) on image files.

Writes depth to `--out` (`.npy`: float32 metres, NaN = unknown; `.png`: uint16 millimetres, 0 = unknown) and a
colorized picture beside it (`<stem>_color.png`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import CliError
from ..pipelines.stereo_classical import DEFAULT_PLANES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--left", required=True, help="left (reference) image")
    parser.add_argument("--right", required=True, help="right image")
    parser.add_argument("--calib", required=True,
                        help="calibration: YAML (fx, fy, cx, cy, baseline), KITTI calib_cam_to_cam.txt "
                        "or Middlebury calib.txt")
    parser.add_argument("--out", required=True, help="depth output: .npy (metres) or .png (uint16 millimetres)")
    parser.add_argument("--engine", default="auto",
                        help="'classical', 'auto' (shipped engine, else classical) or a path")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--min-depth", type=float, default=1.0)
    parser.add_argument("--max-depth", type=float, default=80.0)
    parser.add_argument("--planes", type=int, default=DEFAULT_PLANES, help="planes of the classical sweep")
    parser.add_argument("--confidence-threshold", type=float, default=0.0)
    parser.add_argument("--views", nargs="*", default=[], metavar="IMG:POSEFILE",
                        help="extra source views with their T_src_ref (4x4: .npy, or 16 numbers in a text file)")


def read_rgb(path: str) -> np.ndarray:
    import cv2

    if not Path(path).exists():
        raise CliError(f"image not found: {path}")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise CliError(f"cannot read image: {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_pose(path: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise CliError(f"pose file not found: {path}")
    try:
        if p.suffix == ".npy":
            T = np.load(p, allow_pickle=False)
        else:
            import yaml

            data = yaml.safe_load(p.read_text()) if p.suffix in (".yaml", ".yml") else p.read_text().split()
            if isinstance(data, dict):
                data = data.get("T_src_ref", data.get("pose"))
            T = np.asarray(data, dtype=np.float64)
        T = np.asarray(T, dtype=np.float64).reshape(4, 4)
    except (ValueError, TypeError) as exc:
        raise CliError(f"pose file {path} must hold a 4x4 matrix (16 numbers): {exc}") from exc
    return T


def write_depth(path: Path, depth: np.ndarray, min_depth: float, max_depth: float) -> Path:
    import cv2

    from ..geometry.depth_units import metres_to_millimetres
    from ..pipelines.base import colorize_depth
    from ..utils import atomic_path

    suffix = path.suffix.lower()
    if suffix not in (".npy", ".png"):
        raise CliError(f"--out must end in .npy or .png, got {path.name}")
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, depth.astype(np.float32))
        else:
            ok, buf = cv2.imencode(".png", metres_to_millimetres(depth))
            if not ok:
                raise CliError(f"cannot encode {path}", code=1)
            tmp.write_bytes(buf.tobytes())
    color_path = path.with_name(path.stem + "_color.png")
    rgb = colorize_depth(depth, min_depth, max_depth)
    cv2.imwrite(str(color_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return color_path


def run(args: argparse.Namespace) -> int:
    from ..data.calib_file import load_calib_file
    from ..pipelines.stereo import StereoPipeline, StereoPipelineConfig

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise CliError(f"--out must end in .npy or .png, got {out.name}")
    left, right = read_rgb(args.left), read_rgb(args.right)
    if left.shape != right.shape:
        raise CliError(f"left {left.shape[:2]} and right {right.shape[:2]} images differ in size")
    extra = []
    for spec in args.views:
        img_path, sep, pose_path = spec.rpartition(":")
        if not sep or not img_path:
            raise CliError(f"--views entries are IMG:POSEFILE, got {spec!r}")
        extra.append((read_rgb(img_path), read_pose(pose_path)))
    h, w = left.shape[:2]
    try:
        calib = load_calib_file(args.calib, image_size=(w, h))
        T_right_left = calib.require_stereo()
        config = StereoPipelineConfig(
            engine=args.engine, backend=args.backend, device=args.device, planes=args.planes,
            min_depth=args.min_depth, max_depth=args.max_depth, confidence_threshold=args.confidence_threshold,
        )
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    camera = calib.camera_for(w, h)
    pipeline = StereoPipeline(config)
    result = pipeline.process(left, right, camera, calib.baseline or 0.0, extra, T_right_left=T_right_left,
                              right_camera=calib.right_camera_for(w, h))
    color = write_depth(out, result.depth, args.min_depth, args.max_depth)
    valid = np.isfinite(result.depth)
    print(f"{pipeline.name}: {w}x{h}, {valid.mean() * 100:.1f}% valid, "
          f"median {np.nanmedian(result.depth) if valid.any() else float('nan'):.2f} m, "
          f"{result.timings_ms['total']:.0f} ms -> {out}, {color}")
    return 0
