"""numba where it is installed: a function's loops compiled, else its numpy twin.

numba is installed in the pip environment; a ROS distro may lack python3-numba. DEPTH_PERCEPTION_NO_NUMBA=1 runs
the numpy twins even where numba is installed (to compare, or to rule it out). The sweep's kernels
(pipelines.sweep_kernels) follow the same rule.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:
    import numba
except ImportError:  # pragma: no cover - numba is a requirement of the pip environment
    numba = None

NUMBA = numba is not None and os.environ.get("DEPTH_PERCEPTION_NO_NUMBA", "") != "1"


def compiled_or(loops: Callable[..., Any], numpy_twin: Callable[..., Any]) -> Callable[..., Any]:
    """`loops` compiled by numba (cached on disk, without the GIL) where NUMBA, else `numpy_twin`."""
    if NUMBA:
        return numba.njit(cache=True, nogil=True)(loops)
    return numpy_twin
