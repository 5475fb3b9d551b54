"""Pictures and files people look at: side-by-side depth panels, bird's-eye views, .ply point clouds."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..pipelines.base import colorize_depth
from ..utils import atomic_path


def write_ply(path: str | Path, points: np.ndarray, colors: np.ndarray | None = None) -> int:
    """Write finite points (N, 3) (and uint8 colors (N, 3)) as a binary little-endian PLY; returns the count."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    keep = np.isfinite(pts).all(1)
    pts = pts[keep]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(pts)}",
              "property float x", "property float y", "property float z"]
    if colors is not None:
        cols = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)[keep]
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        rec = np.empty(len(pts), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
        rec["xyz"], rec["rgb"] = pts, cols
        body = rec.tobytes()
    else:
        body = pts.astype("<f4").tobytes()
    header.append("end_header")
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\n".join(header) + "\n").encode() + body)
    return len(pts)


def _picture_format(path: str | Path) -> str:
    """matplotlib's format for a picture path: its suffix (.png, .jpg, .pdf, .svg), PNG where it has none. The
    file is written under a temporary name, so matplotlib cannot see the suffix itself."""
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"jpeg": "jpg", "": "png"}.get(suffix, suffix)


def error_map(depth: np.ndarray, gt: np.ndarray, max_rel: float = 0.3) -> np.ndarray:
    """Absolute relative error as rgb8: black where no ground truth, green (0) to red (>= max_rel)."""
    valid = (gt > 0) & np.isfinite(gt) & np.isfinite(depth)
    rel = np.zeros(gt.shape, np.float32)
    rel[valid] = np.abs(depth[valid] - gt[valid]) / gt[valid]
    t = np.clip(rel / max_rel, 0, 1)
    rgb = np.stack([t * 255, (1 - t) * 255, np.zeros_like(t)], -1).astype(np.uint8)
    rgb[~valid] = 0
    return rgb


def depth_panel(
    path: str | Path,
    image: np.ndarray,
    gt: np.ndarray | None,
    depths: dict[str, np.ndarray],
    title: str = "",
    min_depth: float = 1.0,
    max_depth: float = 80.0,
) -> None:
    """One picture per frame set: camera image, ground truth, each depth colorized and its error map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 + len(depths)
    row_inches = float(np.clip(14 / (2 * image.shape[1] / image.shape[0]), 2.1, 4.5))  # a KITTI frame: 2.1
    fig, axes = plt.subplots(rows, 2 if gt is not None else 1, figsize=(14, row_inches * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("camera", fontsize=9)
    if gt is not None:
        gt_show = np.where(gt > 0, gt, np.nan)
        axes[1, 0].imshow(colorize_depth(gt_show, min_depth, max_depth))
        axes[1, 0].set_title("ground truth", fontsize=9)
    for row, (name, d) in enumerate(depths.items(), start=2):
        axes[row, 0].imshow(colorize_depth(d, min_depth, max_depth))
        axes[row, 0].set_title(name, fontsize=9)
        if gt is not None:
            axes[row, 1].imshow(error_map(d, gt))
            axes[row, 1].set_title(f"{name}: |error| / depth (green 0, red >= 30%)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format=_picture_format(path))
    plt.close(fig)


def birds_eye_plot(
    path: str | Path,
    clouds: dict[str, np.ndarray],
    reference: np.ndarray | None = None,
    reference_name: str = "LiDAR",
    extent: Sequence[float] = (-25.0, 25.0, 0.0, 60.0),
) -> None:
    """Top view (x right, z forward in the camera frame) of point clouds over a reference cloud."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(1, len(clouds))
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 5.5), squeeze=False)
    for ax, (name, pts) in zip(axes[0], clouds.items(), strict=False):
        pts = np.asarray(pts).reshape(-1, 3)
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts) > 60000:
            pts = pts[np.random.default_rng(0).choice(len(pts), 60000, replace=False)]
        ax.scatter(pts[:, 0], pts[:, 2], s=0.3, c="tab:blue", alpha=0.4, label=name)
        if reference is not None:
            ref = reference[np.isfinite(reference).all(1)]
            ax.scatter(ref[:, 0], ref[:, 2], s=0.6, c="black", alpha=0.6, label=reference_name)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_xlabel("x right [m]")
        ax.set_ylabel("z forward [m]")
        ax.set_title(name)
        ax.legend(loc="upper right", markerscale=10, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format=_picture_format(path))
    plt.close(fig)
