"""`depth-perception infer completion`: dense depth from an image plus sparse depth (PNG) or a LiDAR scan (.bin).

Sparse depth: KITTI depth-completion uint16 PNG (metres x 256, 0 = none). Points: KITTI velodyne .bin
(float32 x, y, z, reflectance) in the LiDAR frame, moved into the camera with the calibration file's
`T_cam_velo` (YAML key, or `calib_velo_to_cam.txt` beside a KITTI `calib_cam_to_cam.txt`). Writes depth to
`--out` (`.npy` float32 metres, NaN = unknown; `.png` uint16 millimetres, 0 = unknown), the confidence beside
it (`<stem>_confidence.npy` float32 or `.png` uint8 x 255) and a colorized picture (`<stem>_color.png`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import CliError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", required=True, help="RGB image")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--sparse", help="sparse depth PNG (uint16, metres x 256, 0 = none)")
    parser.add_argument("--registered", action="store_true",
                        help="--sparse was measured from the camera's own viewpoint (a registered depth image), not "
                             "projected from an offset LiDAR: where it covers the image the colour-guided in-fill "
                             "is the output")
    src.add_argument("--points", help="LiDAR scan: KITTI velodyne .bin (float32 x, y, z, r) or .npy (N, 3+)")
    parser.add_argument("--calib", required=True,
                        help="calibration: YAML (fx, fy, cx, cy [, T_cam_velo]) or KITTI calib_cam_to_cam.txt")
    parser.add_argument("--out", required=True, help="depth output: .npy (metres) or .png (uint16 millimetres)")
    parser.add_argument("--engine", default="auto",
                        help="'classical' (IP-Basic), 'auto' (shipped NLSPN engine, else classical), an artifact "
                             "or a training checkpoint folder")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--min-depth", type=float, default=0.5)
    parser.add_argument("--max-depth", type=float, default=90.0)
    parser.add_argument("--confidence-threshold", type=float, default=0.0)


def read_points(path: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise CliError(f"points file not found: {path}")
    if p.suffix == ".npy":
        pts = np.load(p, allow_pickle=False)
    else:
        raw = np.fromfile(p, dtype=np.float32)
        if raw.size % 4:
            raise CliError(f"{path}: a velodyne .bin holds float32 quadruples (x, y, z, r); {raw.size} floats")
        pts = raw.reshape(-1, 4)
    pts = np.asarray(pts, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise CliError(f"{path}: points must be (N, 3) or (N, 4), got shape {pts.shape}")
    finite = np.isfinite(pts[:, :3]).all(1)
    if not finite.all():
        warn(f"{path}: {int((~finite).sum())} of {len(pts)} points are NaN or infinite and are left out")
    return pts[finite, :3]


def warn(message: str) -> None:
    print(f"depth-perception infer completion: warning: {message}", file=sys.stderr, flush=True)


def write_confidence(depth_out: Path, confidence: np.ndarray) -> Path:
    import cv2

    from ..utils import atomic_path

    suffix = depth_out.suffix.lower()
    path = depth_out.with_name(depth_out.stem + "_confidence" + suffix)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, confidence.astype(np.float32))
        else:
            ok, buf = cv2.imencode(".png", np.clip(confidence * 255.0 + 0.5, 0, 255).astype(np.uint8))
            if not ok:
                raise CliError(f"cannot encode {path}", code=1)
            tmp.write_bytes(buf.tobytes())
    return path


def run(args: argparse.Namespace) -> int:
    from ..data.calib_file import load_calib_file
    from ..data.kitti import read_depth_png
    from ..geometry.se3 import transform_points
    from ..pipelines.completion import CompletionPipeline, CompletionPipelineConfig
    from .infer_stereo import read_rgb, write_depth

    out = Path(args.out)
    if out.suffix.lower() not in (".npy", ".png"):
        raise CliError(f"--out must end in .npy or .png, got {out.name}")
    if args.registered and not args.sparse:
        raise CliError("--registered describes a --sparse depth image; --points are placed by the calibration's "
                       "T_cam_velo")
    image = read_rgb(args.image)
    h, w = image.shape[:2]
    try:
        calib = load_calib_file(args.calib, image_size=(w, h))
        config = CompletionPipelineConfig(
            engine=args.engine, backend=args.backend, device=args.device, min_depth=args.min_depth,
            max_depth=args.max_depth, confidence_threshold=args.confidence_threshold,
        )
        pipeline = CompletionPipeline(config)
    except (ValueError, FileNotFoundError) as exc:
        raise CliError(str(exc)) from exc
    camera = calib.camera_for(w, h)
    if args.sparse:
        if not Path(args.sparse).exists():
            raise CliError(f"sparse depth not found: {args.sparse}")
        try:
            sparse = read_depth_png(args.sparse)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if sparse.shape != (h, w):
            raise CliError(f"sparse depth {sparse.shape[1]}x{sparse.shape[0]} does not match the image {w}x{h}")
        result = pipeline.process_sparse(image, camera, sparse, 0.0 if args.registered else None)
    else:
        if calib.T_cam_velo is None:
            raise CliError(f"calibration {args.calib} has no LiDAR extrinsics: add 'T_cam_velo' (4x4, LiDAR -> "
                           "camera), or put calib_velo_to_cam.txt beside a KITTI calib_cam_to_cam.txt")
        pts = read_points(args.points)
        T_cam_velo = np.asarray(calib.T_cam_velo, np.float64)
        result = pipeline.process(image, camera, transform_points(T_cam_velo, pts),
                                  sensor_offset_m=float(np.linalg.norm(T_cam_velo[:3, 3])))
    if result.info["measurements"] == 0:
        source = args.sparse or args.points
        warn(f"no depth measurement from {source} falls inside the image: the output is "
             + ("empty" if pipeline.name == "classical" else "the network's guess from the image alone"))
    color = write_depth(out, result.depth, args.min_depth, args.max_depth)
    conf_path = write_confidence(out, result.confidence)
    valid = np.isfinite(result.depth)
    print(f"{pipeline.name}: {w}x{h}, {int(result.info['measurements'])} measurements, {valid.mean() * 100:.1f}% "
          f"valid, median {np.nanmedian(result.depth) if valid.any() else float('nan'):.2f} m, "
          f"{result.timings_ms['total']:.0f} ms -> {out}, {conf_path}, {color}")
    return 0
