"""Photographic textures from skimage.data, made tileable, mip-mapped into one atlas, sampled trilinearly.

All textures are grey (brick, grass, gravel, moon, camera, text) and normalized to mean 1, so a material's albedo is
`tint * (1 + contrast * (sample - 1))`. Every mip level sits in one float32 atlas with a wrapped border, so a
whole frame is sampled with two `cv2.remap` calls (the two mip levels around each pixel's level of detail,
blended: trilinear filtering), whatever mixture of textures it shows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TEXTURE_NAMES = ("gravel", "brick", "grass", "moon", "camera", "text")
SIZE = 512  # texels a side at level 0, as skimage ships them
PAD = 2
_REMAP_COLS = 1024  # cv2.remap wants maps with fewer than 32767 rows and columns


def _load(name: str) -> np.ndarray:
    import cv2
    import skimage.data

    img = getattr(skimage.data, name)()
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2GRAY)
    img = img.astype(np.float32)
    h, w = img.shape
    s = min(h, w)
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    # Flatten the photograph's own large-scale lighting so tiles join without a brightness step.
    low = cv2.resize(cv2.resize(img, (8, 8), interpolation=cv2.INTER_AREA), (SIZE, SIZE),
                     interpolation=cv2.INTER_LINEAR)
    img = img / np.maximum(low, 1.0)
    return _tileable(img / img.mean()).astype(np.float32)


def _tileable(img: np.ndarray) -> np.ndarray:
    """Make a texture wrap without seams: fade into a copy rolled by half a tile towards the borders.

    At the borders only the rolled copy remains, whose opposite edges were neighbouring pixels of the photograph.
    Dividing by the weights' norm keeps the contrast where the two uncorrelated copies mix.
    """
    s = img.shape[0]
    ramp = np.sin(np.pi * (np.arange(s) + 0.5) / s) ** 2
    w = np.outer(ramp, ramp)
    rolled = np.roll(img, (s // 2, s // 2), axis=(0, 1))
    mean = img.mean()
    mixed = (w * (img - mean) + (1 - w) * (rolled - mean)) / np.sqrt(w ** 2 + (1 - w) ** 2)
    return mixed + mean


@dataclass
class TextureAtlas:
    """Mip chains of all textures in one image; `origins[t, l]` = (x, y) of level l of texture t."""

    atlas: np.ndarray
    origins: np.ndarray  # (T, L, 2) float32
    sizes: np.ndarray  # (L,) float32 texels a side per level
    levels: int
    _tables: tuple | None = None

    @classmethod
    def build(cls, names: tuple[str, ...] = TEXTURE_NAMES) -> TextureAtlas:
        import cv2

        levels = int(np.log2(SIZE)) + 1
        sizes = np.array([SIZE >> lv for lv in range(levels)], dtype=np.float32)
        col_w = SIZE + 2 * PAD + SIZE // 2 + 2 * PAD
        height = max(SIZE + 2 * PAD, sum(int(s) + 2 * PAD for s in sizes[1:]))
        atlas = np.ones((height, col_w * len(names)), dtype=np.float32)
        origins = np.zeros((len(names), levels, 2), dtype=np.float32)
        for t, name in enumerate(names):
            level = _load(name)
            x0, y = t * col_w, 0
            for lv in range(levels):
                s = level.shape[0]
                ox, oy = (x0 + PAD, PAD) if lv == 0 else (x0 + SIZE + 3 * PAD, y + PAD)
                padded = cv2.copyMakeBorder(level, PAD, PAD, PAD, PAD, cv2.BORDER_WRAP)
                atlas[oy - PAD:oy + s + PAD, ox - PAD:ox + s + PAD] = padded
                origins[t, lv] = (ox, oy)
                if lv > 0:
                    y += s + 2 * PAD
                if s > 1:
                    level = cv2.resize(level, (s // 2, s // 2), interpolation=cv2.INTER_AREA)
        return cls(atlas, origins, sizes, levels)

    def sample(self, tex: np.ndarray, u: np.ndarray, v: np.ndarray, lod: np.ndarray) -> np.ndarray:
        """Trilinear samples of textures `tex` (int per point) at texel coordinates (u, v) of level 0.

        `lod` is log2 of the pixel footprint in level-0 texels; coordinates wrap around (the textures tile).
        """
        n = tex.shape[0]
        if n == 0:
            return np.zeros(0, np.float32)
        lod = np.clip(lod, 0.0, self.levels - 1.001).astype(np.float32)
        l0 = lod.astype(np.int32)
        frac = lod - l0
        out = np.empty(n, np.float32)
        s0 = self._remap(tex, u, v, l0)
        s1 = self._remap(tex, u, v, l0 + 1)
        np.multiply(s1 - s0, frac, out=out)
        out += s0
        return out

    def _remap(self, tex: np.ndarray, u: np.ndarray, v: np.ndarray, level: np.ndarray) -> np.ndarray:
        import cv2

        if self._tables is None:
            lv = np.arange(self.levels)
            self._tables = (self.origins[..., 0].ravel() - 0.5, self.origins[..., 1].ravel() - 0.5,
                            np.tile(self.sizes, len(self.origins)),
                            np.tile((1.0 / np.exp2(lv)).astype(np.float32), len(self.origins)))
        ox, oy, sizes, scales = self._tables
        code = tex * self.levels + level  # one 1-D lookup per table instead of 2-D fancy indexing
        size = sizes.take(code)
        scale = scales.take(code)
        x = _wrap(u * scale, size) + ox.take(code)
        y = _wrap(v * scale, size) + oy.take(code)
        n = x.shape[0]
        rows = -(-n // _REMAP_COLS)
        mx = np.zeros(rows * _REMAP_COLS, np.float32)
        my = np.zeros(rows * _REMAP_COLS, np.float32)
        mx[:n] = x
        my[:n] = y
        out = cv2.remap(self.atlas, mx.reshape(rows, -1), my.reshape(rows, -1), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        return out.ravel()[:n]


def _wrap(x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Fold any coordinate into [0, size): the textures are tileable, the atlas padding wraps around."""
    return x - np.floor(x / size) * size
