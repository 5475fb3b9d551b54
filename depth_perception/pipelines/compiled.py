"""Builds every numba kernel of the package into numba's on-disk cache: the classical sweep's (pipelines.
sweep_kernels), the guided in-fill's (geometry.infill), the cloud writer's (geometry.projection) and the
millimetre conversion's (geometry.depth_units).

`python -m depth_perception.pipelines.compiled`: about 30 s of one core on a fresh clone, a second when the cache
is current. The environment set-up and the test runner call it, so no node compiles inside a start-up wait or on
its first frame. Where numba is absent the numpy twins run and there is nothing to build.
"""
from __future__ import annotations

import numpy as np


def build() -> None:
    from ..geometry.camera import PinholeCamera
    from ..geometry.depth_units import metres_to_kitti, metres_to_millimetres
    from ..geometry.infill import guided_fill
    from ..geometry.projection import backproject_into
    from .stereo_classical import ClassicalStereo

    ClassicalStereo()  # compiles the sweep's kernels on a small pair
    camera = PinholeCamera(16, 8, 10.0, 10.0, 8.0, 4.0)
    depth = np.full(camera.shape, 2.0, np.float32)
    rgb = np.zeros(camera.shape + (3,), np.uint8)
    for channels, colour in ((4, rgb), (3, None)):
        backproject_into(depth, camera, np.empty(camera.shape + (channels,), np.float32), colour)
    small = PinholeCamera(8, 4, 5.0, 5.0, 4.0, 2.0)  # and the decimated cloud's strided views
    backproject_into(depth[::2, ::2], small, np.empty(small.shape + (4,), np.float32), rgb[::2, ::2])
    sparse = np.zeros(camera.shape, np.float32)
    sparse[2, 3] = 2.0
    guided_fill(rgb, sparse, depth)
    for values in (depth, depth.astype(np.float64)):  # node outputs (float32) and writers (float64)
        metres_to_millimetres(values)
        metres_to_kitti(values)


if __name__ == "__main__":
    build()
