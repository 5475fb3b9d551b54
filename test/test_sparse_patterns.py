"""Sparse inputs drawn from dense ground truth (data.sparse_patterns) and the range-blind in-fill that the learned
completion engine refines (geometry.infill.ipbasic_prior)."""
import numpy as np
import pytest

from depth_perception.data.sparse_patterns import (
    clustered_pattern,
    random_pattern,
    random_sensor_pattern,
    scanner_pattern,
)
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.infill import IpBasicConfig, ipbasic_complete, ipbasic_prior

CAM = PinholeCamera(160, 96, 120.0, 120.0, 79.5, 47.5)


def street_depth(camera=CAM):
    """A ground plane 1.6 m below the camera seen out to 60 m, a wall at 25 m above the horizon."""
    v = np.arange(camera.height, dtype=np.float64)[:, None].repeat(camera.width, 1)
    with np.errstate(divide="ignore"):
        ground = 1.6 * camera.fy / (v - camera.cy)
    return np.where((v > camera.cy) & (ground < 25.0), ground, 25.0).astype(np.float32)


def test_random_pattern_keeps_the_asked_share_of_the_ground_truth_exactly():
    depth = street_depth()
    depth[:5] = np.nan  # no ground truth there
    sparse = random_pattern(depth, 0.05, seed=3)
    assert (sparse > 0).mean() == pytest.approx(0.05 * np.isfinite(depth).mean(), rel=0.15)
    assert np.all(sparse[sparse > 0] == depth[sparse > 0]) and not (sparse[:5] > 0).any()
    with pytest.raises(ValueError, match="density"):
        random_pattern(depth, 0.0)


def test_a_scanners_samples_lie_on_its_beams_and_more_beams_give_more_samples():
    from depth_perception.geometry.projection import backproject

    depth, shares = street_depth(), []
    for beams in (16, 64, 128):
        sparse = scanner_pattern(depth, CAM, beams=beams, height_m=0.0, fov_deg=(-20.0, 0.0),
                                 azimuth_step_deg=2.0)  # a column in four: each pixel is 0.48 degrees wide
        x, y, z = backproject(depth, CAM)[sparse > 0].T
        elevation = np.degrees(np.arctan2(-y, np.hypot(x, z)))
        step = 20.0 / (beams - 1)
        off_beam = np.abs((elevation + 20.0) / step - np.rint((elevation + 20.0) / step)) * step
        assert off_beam.max() <= max(0.08 * step, 0.5 * np.degrees(1 / CAM.fy)) + 1e-6
        assert elevation.min() > -20.5 and elevation.max() < 0.5
        shares.append((sparse > 0).mean())
    assert 0 < shares[0] < shares[1] <= shares[2] < 0.3  # 64 beams already reach every pixel row here


def test_clusters_leave_most_of_the_image_without_samples():
    sparse = clustered_pattern(street_depth(), 0.05, clusters=3, seed=1)
    grid = (sparse > 0).reshape(8, 12, 10, 16).any(axis=(1, 3))  # 8 x 10 blocks of 12 x 16 pixels
    assert 0.05 < grid.mean() < 0.8


def test_training_patterns_vary_and_always_come_from_the_ground_truth():
    depth, rng = street_depth(), np.random.default_rng(0)
    shares = []
    for _ in range(30):
        sparse = random_sensor_pattern(depth, CAM, rng)
        assert np.all(sparse[sparse > 0] == depth[sparse > 0])
        shares.append((sparse > 0).mean())
    assert max(shares) > 4 * min(shares)  # densities and kinds differ from sample to sample


def test_the_prior_is_blind_to_the_depth_range_and_ipbasic_otherwise():
    sparse = random_pattern(street_depth(), 0.05, seed=0)
    prior = ipbasic_prior(sparse)
    np.testing.assert_allclose(ipbasic_prior(0.1 * sparse), 0.1 * prior, rtol=1e-4)  # a room is a small street
    assert np.isfinite(prior).all() and (prior > 0).all()
    k = 10.0 / np.median(sparse[sparse > 0])  # at the reference median it is IP-Basic itself
    np.testing.assert_allclose(ipbasic_prior(k * sparse), ipbasic_complete(k * sparse, IpBasicConfig(max_depth=100.0)),
                               rtol=1e-4)
    assert not ipbasic_prior(np.zeros((8, 8), np.float32)).any()
