"""Resampling images and depth maps to another size on the pixel-centre convention of `PinholeCamera.scaled`
(OpenCV's), so resized pixels and scaled intrinsics describe the same rays. Depth is never interpolated: dense
maps take the nearest pixel, sparse ones move each measurement to the pixel its centre falls in. Training and
inference both resize here, so an engine sees at run time the sparse input it was trained on."""
from __future__ import annotations

import numpy as np


def unit_rgb(image: np.ndarray) -> np.ndarray:
    """An image (H, W[, 3]) as float32 (H, W, 3) in [0, 1]: grey repeated, uint8 / 255, uint16 / 65535."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, 2)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype, 1.0)
    return img.astype(np.float32) / np.float32(scale)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W[, C]) image at width x height: area averaging when shrinking (no aliasing), bilinear when growing."""
    import cv2

    image = np.asarray(image)
    if image.shape[0] == height and image.shape[1] == width:
        return image
    shrink = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def source_index(dst_size: int, src_size: int) -> np.ndarray:
    """For each destination pixel, the source pixel its centre falls in (pixel-centre convention)."""
    idx = np.floor((np.arange(dst_size) + 0.5) * src_size / dst_size).astype(np.int64)
    return np.clip(idx, 0, src_size - 1)


def resize_sparse_depth(sparse: np.ndarray, width: int, height: int) -> np.ndarray:
    """Sparse depth (0 = none) at another size: each measurement moves to the pixel its centre falls in, the nearest
    depth wins where several land together; measurements are never averaged with empty pixels."""
    sparse = np.asarray(sparse, dtype=np.float32)
    if sparse.shape == (height, width):
        return sparse
    v, u = np.nonzero(sparse > 0)
    d = sparse[v, u]
    # the same arithmetic as source_index, so restoring by nearest brings each point back to its own pixel
    tu = np.clip(np.floor((u + 0.5) * width / sparse.shape[1]).astype(np.int64), 0, width - 1)
    tv = np.clip(np.floor((v + 0.5) * height / sparse.shape[0]).astype(np.int64), 0, height - 1)
    out = np.full(height * width, np.inf, dtype=np.float32)
    np.minimum.at(out, tv * width + tu, d)
    out[~np.isfinite(out)] = 0.0
    return out.reshape(height, width)


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """A depth map (0 or NaN = none) at width x height without inventing depth between samples: the nearest pixel
    for dense maps (over half the pixels valid), `resize_sparse_depth` for sparse ones (so LiDAR points are not
    thinned out by sampling); 0 where none."""
    import cv2

    depth = np.nan_to_num(np.asarray(depth, dtype=np.float32), nan=0.0)
    if depth.shape == (height, width):
        return depth
    if (depth > 0).mean() > 0.5:
        return cv2.resize(depth, (int(width), int(height)), interpolation=cv2.INTER_NEAREST)
    return resize_sparse_depth(depth, width, height)
