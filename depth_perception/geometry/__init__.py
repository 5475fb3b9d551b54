"""Camera models, projection, back-projection, plane-sweep homographies, SE(3): numpy and torch twins."""
from .camera import PinholeCamera, baseline_from_projections
from .projection import (
    backproject,
    depth_to_disparity,
    disparity_to_depth,
    points_to_sparse_depth,
    project_points,
)

__all__ = [
    "PinholeCamera",
    "backproject",
    "baseline_from_projections",
    "depth_to_disparity",
    "disparity_to_depth",
    "points_to_sparse_depth",
    "project_points",
]
