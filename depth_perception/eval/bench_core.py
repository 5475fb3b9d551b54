"""`depth-perception bench core`: the per-frame conversions every node runs, at KITTI size, against targets and
beside a straightforward per-point Python reference measured in the same run.

Cases (1242 x 375, KITTI's rectified colour camera):
- depth + rgb -> organized xyzrgb PointCloud2 (target <= 10 ms median);
- a 120,000-point LiDAR sweep (float32 x, y, z, intensity) -> camera frame through the extrinsics -> sparse depth
  image with a z-buffer (target <= 5 ms median);
- rgb8 Image message -> numpy and numpy -> rgb8 Image message (target <= 1 ms median each).
The reference loops run on a subsample and are scaled to the full size (per-point work is linear), so the whole
bench finishes in well under a minute. Figures go to `--json` under the stable keys p50_ms and p95_ms.
"""
from __future__ import annotations

import math
import os
import platform
import struct
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..geometry.camera import PinholeCamera
from ..geometry.projection import points_to_sparse_depth
from ..geometry.se3 import transform_points

KITTI_CAMERA = PinholeCamera(1242, 375, 721.5377, 721.5377, 609.5593, 172.854)
# KITTI 2011_09_26 calib_velo_to_cam: velodyne -> camera 0 (x right, y down, z forward).
T_CAM_VELO = np.array([
    [7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03],
    [1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02],
    [9.998621e-01, 7.523790e-03, 1.480755e-02, -2.717806e-01],
    [0.0, 0.0, 0.0, 1.0],
])
LIDAR_POINTS = 120_000
REFERENCE_SAMPLE = 20_000  # points or pixels the Python references walk; their time is scaled to the full size


# --------------------------------------------------------------------------------------------------- inputs


def synthetic_frame(seed: int = 0, camera: PinholeCamera = KITTI_CAMERA) -> tuple[np.ndarray, np.ndarray]:
    """A street-like depth image (road plane below the horizon, a wall above, a few holes) and a random rgb image."""
    rng = np.random.default_rng(seed)
    v = np.arange(camera.height, dtype=np.float32)[:, None]
    below = v > camera.cy + 1
    road = np.where(below, 1.65 * camera.fy / np.maximum(v - camera.cy, 1), 80.0)
    depth = np.minimum(road, 40.0).astype(np.float32) * np.ones((1, camera.width), np.float32)
    depth += rng.normal(0, 0.05, depth.shape).astype(np.float32)
    depth[rng.random(depth.shape) < 0.05] = np.nan
    rgb = rng.integers(0, 256, camera.shape + (3,), dtype=np.uint8)
    return depth, rgb


def synthetic_sweep(seed: int = 0, n: int = LIDAR_POINTS) -> np.ndarray:
    """A Velodyne-like sweep, float32 (n, 4) x, y, z, intensity in the LiDAR frame: 64 rings over 360 degrees."""
    rng = np.random.default_rng(seed)
    azimuth = rng.uniform(-np.pi, np.pi, n)
    elevation = np.deg2rad(rng.integers(0, 64, n) * (26.9 / 63) - 24.9)
    ground = np.where(elevation < -0.01, 1.73 / np.maximum(-np.sin(elevation), 1e-3), np.inf)
    distance = np.minimum(ground, rng.uniform(5, 80, n))
    pts = np.empty((n, 4), np.float32)
    pts[:, 0] = distance * np.cos(elevation) * np.cos(azimuth)
    pts[:, 1] = distance * np.cos(elevation) * np.sin(azimuth)
    pts[:, 2] = distance * np.sin(elevation)
    pts[:, 3] = rng.random(n)
    return pts


# --------------------------------------------------------------------------------------- Python references


def reference_cloud_bytes(depth: np.ndarray, rgb: np.ndarray, camera: PinholeCamera, pixels: range | None = None
                          ) -> bytearray:
    """Per-pixel Python: the x, y, z, packed-rgb float32 bytes of the pixels (row-major indices) in `pixels`."""
    width = camera.width
    pixels = range(camera.width * camera.height) if pixels is None else pixels
    out = bytearray(16 * len(pixels))
    depth_rows, rgb_rows = depth.tolist(), rgb.tolist()
    for k, index in enumerate(pixels):
        v, u = divmod(index, width)
        z = depth_rows[v][u]
        if not (z > 0 and z < math.inf):
            x = y = z = math.nan
        else:
            x = (u - camera.cx) / camera.fx * z
            y = (v - camera.cy) / camera.fy * z
        r, g, b = rgb_rows[v][u]
        packed = struct.unpack("<f", struct.pack("<I", (r << 16) | (g << 8) | b))[0]
        struct.pack_into("<ffff", out, 16 * k, x, y, z, packed)
    return out


def reference_sparse_depth(points: np.ndarray, T_cam_lidar: np.ndarray, camera: PinholeCamera,
                           min_depth: float = 0.1) -> np.ndarray:
    """Per-point Python: transform, project, keep the nearest point per pixel in a dict."""
    R, t = T_cam_lidar[:3, :3].tolist(), T_cam_lidar[:3, 3].tolist()
    nearest: dict[int, float] = {}
    for px, py, pz, *_ in points.tolist():
        x = R[0][0] * px + R[0][1] * py + R[0][2] * pz + t[0]
        y = R[1][0] * px + R[1][1] * py + R[1][2] * pz + t[1]
        z = R[2][0] * px + R[2][1] * py + R[2][2] * pz + t[2]
        if not z > min_depth:
            continue
        u = math.floor(camera.fx * x / z + camera.cx + 0.5)
        v = math.floor(camera.fy * y / z + camera.cy + 0.5)
        if 0 <= u < camera.width and 0 <= v < camera.height:
            key = v * camera.width + u
            if key not in nearest or z < nearest[key]:
                nearest[key] = z
    out = np.zeros(camera.height * camera.width, np.float32)
    for key, z in nearest.items():
        out[key] = z
    return out.reshape(camera.shape)


def reference_image_to_pixels(data: bytes, width: int, step: int, rows: range) -> list[list[tuple[int, int, int]]]:
    """Per-pixel Python: rgb8 bytes -> rows of (r, g, b) tuples."""
    return [[(data[v * step + 3 * u], data[v * step + 3 * u + 1], data[v * step + 3 * u + 2]) for u in range(width)]
            for v in rows]


def reference_pixels_to_bytes(pixels: list[list[tuple[int, int, int]]]) -> bytearray:
    """Per-pixel Python: rows of (r, g, b) -> rgb8 bytes."""
    out = bytearray()
    for row in pixels:
        for r, g, b in row:
            out += bytes((r, g, b))
    return out


# ------------------------------------------------------------------------------------------------- timing


def time_ms(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> np.ndarray:
    """Wall times in ms of `repeat` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeat)
    for k in range(repeat):
        t0 = time.perf_counter()
        fn()
        times[k] = (time.perf_counter() - t0) * 1e3
    return times


def case_figures(times: np.ndarray, target_ms: float, reference_ms: float, reference_sample: int, full_size: int,
                 description: str) -> dict[str, Any]:
    p50 = float(np.percentile(times, 50))
    return {
        "description": description,
        "p50_ms": p50,
        "p95_ms": float(np.percentile(times, 95)),
        "mean_ms": float(times.mean()),
        "min_ms": float(times.min()),
        "runs": int(times.size),
        "target_ms": target_ms,
        "meets_target": bool(p50 <= target_ms),
        "reference_ms": reference_ms,
        "reference_sample": int(reference_sample),
        "reference_full_size": int(full_size),
        "speedup": reference_ms / p50 if p50 > 0 else None,
    }


def _reference_ms(fn: Callable[[], Any], sample: int, full: int, repeat: int = 3) -> float:
    """Median time of the reference on `sample` items, scaled linearly to `full` items."""
    return float(np.median(time_ms(fn, repeat, warmup=0))) * full / sample


def bench_pointcloud(depth: np.ndarray, rgb: np.ndarray, repeat: int) -> dict[str, Any]:
    from ..ros.pointcloud import depth_to_pointcloud2

    cam = KITTI_CAMERA
    times = time_ms(lambda: depth_to_pointcloud2(depth, cam, rgb=rgb), repeat)
    n = cam.width * cam.height
    sample = range(0, n, max(1, n // REFERENCE_SAMPLE))
    ref = _reference_ms(lambda: reference_cloud_bytes(depth, rgb, cam, sample), len(sample), n)
    return case_figures(times, 10.0, ref, len(sample), n,
                        "1242x375 depth (32FC1) + rgb8 -> organized xyzrgb PointCloud2 message")


def bench_sparse_depth(sweep: np.ndarray, repeat: int) -> dict[str, Any]:
    cam = KITTI_CAMERA

    def fast() -> np.ndarray:
        return points_to_sparse_depth(transform_points(T_CAM_VELO, sweep[:, :3]), cam)

    times = time_ms(fast, repeat)
    sample = sweep[:: max(1, len(sweep) // REFERENCE_SAMPLE)]
    ref = _reference_ms(lambda: reference_sparse_depth(sample, T_CAM_VELO, cam), len(sample), len(sweep))
    return case_figures(times, 5.0, ref, len(sample), len(sweep),
                        f"{len(sweep)}-point LiDAR sweep -> extrinsics -> 1242x375 sparse depth, nearest point wins")


def bench_image(rgb: np.ndarray, repeat: int) -> dict[str, dict[str, Any]]:
    from ..ros.image import image_to_numpy, numpy_to_image

    cam = KITTI_CAMERA
    msg = numpy_to_image(rgb, "rgb8")
    to_msg = time_ms(lambda: numpy_to_image(rgb, "rgb8"), repeat)
    to_numpy = time_ms(lambda: image_to_numpy(msg), repeat)
    rows = range(0, cam.height, max(1, cam.height * cam.width // REFERENCE_SAMPLE))
    data = bytes(msg.data)
    pixels = reference_image_to_pixels(data, cam.width, msg.step, rows)
    n = cam.height * cam.width
    sample = len(rows) * cam.width
    ref_read = _reference_ms(lambda: reference_image_to_pixels(data, cam.width, msg.step, rows), sample, n)
    ref_write = _reference_ms(lambda: reference_pixels_to_bytes(pixels), sample, n)
    return {
        "image_msg_to_numpy_rgb8": case_figures(to_numpy, 1.0, ref_read, sample, n,
                                                "1242x375 rgb8 Image message -> numpy (H, W, 3) uint8"),
        "numpy_to_image_msg_rgb8": case_figures(to_msg, 1.0, ref_write, sample, n,
                                                "numpy (H, W, 3) uint8 -> 1242x375 rgb8 Image message"),
    }


def run_core(repeat: int, seed: int = 0) -> dict[str, Any]:
    """Every case's figures and the environment they were measured in."""
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    depth, rgb = synthetic_frame(seed)
    sweep = synthetic_sweep(seed)
    cases: dict[str, Any] = {}
    try:
        cases["depth_rgb_to_pointcloud2"] = bench_pointcloud(depth, rgb, repeat)
    except ImportError as exc:  # no rclpy / sensor_msgs: the numeric cases still run
        cases["depth_rgb_to_pointcloud2"] = {"skipped": f"needs sensor_msgs: {exc}"}
    cases["lidar_to_sparse_depth"] = bench_sparse_depth(sweep, repeat)
    try:
        cases.update(bench_image(rgb, repeat))
    except ImportError as exc:
        cases["image_msg_to_numpy_rgb8"] = {"skipped": f"needs sensor_msgs: {exc}"}
    return {
        "benchmark": "core",
        "repeat": repeat,
        "seed": seed,
        "environment": {
            "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "cases": cases,
    }


def format_table(figures: dict[str, Any]) -> str:
    header = f"{'case':<28} {'p50 ms':>9} {'p95 ms':>9} {'target':>8}  {'ok':<3} {'python ref ms':>14} {'speed-up':>9}"
    lines = [header, "-" * len(header)]
    for name, c in figures["cases"].items():
        if "skipped" in c:
            lines.append(f"{name:<28} skipped: {c['skipped']}")
            continue
        lines.append(
            f"{name:<28} {c['p50_ms']:>9.3f} {c['p95_ms']:>9.3f} {c['target_ms']:>8.1f}  "
            f"{'yes' if c['meets_target'] else 'NO':<3} {c['reference_ms']:>14.1f} {c['speedup']:>8.0f}x"
        )
    lines.append(f"({figures['repeat']} runs per case; references timed on a subsample and scaled to full size)")
    return "\n".join(lines)
