"""`depth-perception bench core`: writes every case's figures under stable keys; the fast paths it times agree with
the straightforward per-point Python references it compares them to."""
import json

import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.eval.bench_core import (
    T_CAM_VELO,
    reference_cloud_bytes,
    reference_image_to_pixels,
    reference_pixels_to_bytes,
    reference_sparse_depth,
    synthetic_frame,
    synthetic_sweep,
)
from depth_perception.eval.bench_node import CAMERA, bench_kind
from depth_perception.geometry import PinholeCamera, points_to_sparse_depth
from depth_perception.geometry.se3 import invert_transform, transform_points

CAM = PinholeCamera(64, 32, 32.0, 32.0, 31.5, 15.5)
CASES = ("depth_rgb_to_pointcloud2", "lidar_to_sparse_depth", "image_msg_to_numpy_rgb8", "numpy_to_image_msg_rgb8")


def test_bench_core_writes_every_case_under_stable_keys(tmp_path, capsys):
    out = tmp_path / "core.json"
    assert main(["bench", "core", "--repeat", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["repeat"] == 2
    for case in CASES:
        c = figures["cases"][case]
        for key in ("p50_ms", "p95_ms", "target_ms", "reference_ms", "speedup", "meets_target"):
            assert key in c, (case, key)
        assert c["p95_ms"] >= c["p50_ms"] > 0 and c["reference_ms"] > 0
    table = capsys.readouterr().out
    assert all(case in table for case in CASES)


def test_bad_repeat_is_a_usage_error(capsys):
    assert main(["bench", "core", "--repeat", "0"]) == 2
    assert "--repeat" in capsys.readouterr().err


def test_every_bench_kind_has_its_command_line(capsys):
    for kind in ("core", "engine", "node"):
        with pytest.raises(SystemExit) as info:
            main(["bench", kind, "--help"])
        assert info.value.code == 0
        assert "usage: depth-perception bench " + kind in capsys.readouterr().out


def pixel_centred_points(rng, n, camera):
    """Points whose projections fall within 0.3 px of a pixel centre: float32 and float64 round them alike."""
    u = rng.integers(-5, camera.width + 5, n) + rng.uniform(-0.3, 0.3, n)
    v = rng.integers(-5, camera.height + 5, n) + rng.uniform(-0.3, 0.3, n)
    z = rng.choice([-2.0, 0.05, 1.0, 2.5, 4.0, 9.0, 30.0], n) + rng.uniform(0, 0.1, n)
    pts = np.stack([(u - camera.cx) / camera.fx * z, (v - camera.cy) / camera.fy * z, z], 1)
    return pts


def test_fast_sparse_depth_equals_the_per_point_reference():
    rng = np.random.default_rng(3)
    pts_cam = pixel_centred_points(rng, 3000, CAM)  # about 1.5 points per pixel: the z-buffer matters
    pts_lidar = transform_points(invert_transform(T_CAM_VELO), pts_cam).astype(np.float32)
    ours = points_to_sparse_depth(transform_points(T_CAM_VELO, pts_lidar), CAM)
    theirs = reference_sparse_depth(pts_lidar, T_CAM_VELO, CAM)
    np.testing.assert_array_equal(ours > 0, theirs > 0)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert (ours > 0).sum() > 500


def test_sparse_depth_values_come_from_the_nearest_point():
    rng = np.random.default_rng(4)
    pts = pixel_centred_points(rng, 2000, CAM).astype(np.float32)
    values = rng.random(len(pts)).astype(np.float32)
    depth = points_to_sparse_depth(pts, CAM)
    picked = points_to_sparse_depth(pts, CAM, values=values)
    u = np.floor(CAM.fx * pts[:, 0] / pts[:, 2] + CAM.cx + 0.5).astype(int)
    v = np.floor(CAM.fy * pts[:, 1] / pts[:, 2] + CAM.cy + 0.5).astype(int)
    hits = np.flatnonzero(depth > 0)
    for index in hits[:200]:
        r, c = divmod(index, CAM.width)
        here = np.flatnonzero((u == c) & (v == r) & (pts[:, 2] > 0.1))
        nearest = here[np.argmin(pts[here, 2])]
        assert picked[r, c] == values[nearest] and depth[r, c] == pts[nearest, 2]


def test_fast_cloud_equals_the_per_pixel_reference():
    from depth_perception.ros.pointcloud import depth_to_pointcloud2

    depth, rgb = synthetic_frame(1, CAM)
    depth[0, :4] = [0.0, -1.0, np.inf, np.nan]
    ours = np.frombuffer(depth_to_pointcloud2(depth, CAM, rgb=rgb).data, np.float32).reshape(-1, 4)
    theirs = np.frombuffer(bytes(reference_cloud_bytes(depth, rgb, CAM)), np.float32).reshape(-1, 4)
    np.testing.assert_allclose(ours[:, :3], theirs[:, :3], rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(ours[:, 3].view(np.uint32), theirs[:, 3].view(np.uint32))


def test_image_references_read_and_write_the_same_pixels():
    from depth_perception.ros.image import image_to_numpy, numpy_to_image

    _, rgb = synthetic_frame(2, CAM)
    msg = numpy_to_image(rgb, "rgb8")
    pixels = reference_image_to_pixels(bytes(msg.data), CAM.width, msg.step, range(CAM.height))
    np.testing.assert_array_equal(np.array(pixels, np.uint8), image_to_numpy(msg))
    assert bytes(reference_pixels_to_bytes(pixels)) == bytes(msg.data)


def test_synthetic_sweep_looks_like_a_velodyne_scan():
    sweep = synthetic_sweep(0, 5000)
    assert sweep.shape == (5000, 4) and sweep.dtype == np.float32
    ranges = np.linalg.norm(sweep[:, :3], axis=1)
    assert ranges.max() <= 80.0 + 1e-3 and (sweep[:, 2] < 0).mean() > 0.5  # mostly rings aimed at the road


@pytest.mark.slow  # DDS between processes: not in `make test-fast`
def test_node_bench_runs_a_real_node_over_dds_and_records_its_memory_over_time(tmp_path):
    out = tmp_path / "node.json"
    assert main(["bench", "node", "--kinds", "stereo", "--engine", "stereo=classical", "--seconds", "2.5",
                 "--rate", "4", "--cloud-decimation", "4", "--json", str(out)]) == 0
    r = json.loads(out.read_text())["nodes"]["stereo"]
    assert r["outputs"] == ["depth", "depth/points"]
    assert r["encoding"] == "32FC1" and 4 * CAMERA.width * CAMERA.height <= r["message_mb"]["depth"] * 1e6 < (
        4 * CAMERA.width * CAMERA.height + 512)
    assert r["frames_sent"] >= 8 and r["frames_out"] >= 1
    assert r["engine_p50_ms"] > 0 and r["p50_ms"] >= r["engine_p50_ms"]
    # the peer in the same run: a relay with prebuilt outputs answered every input; what the node adds is the rest
    assert 0 < r["dds_floor_depth_p50_ms"] and 0 < r["dds_floor_p50_ms"] < r["p50_ms"]
    assert r["node_added_p50_ms"] == pytest.approx(r["overhead_p50_ms"] - r["dds_floor_p50_ms"])
    series = r["rss_series_mb"]
    assert len(series) >= 2 and series[0][0] == 0.0 and all(mb > 0 for _, mb in series)
    assert r["rss_growth_second_half_mb"] == pytest.approx(r["rss_end_mb"] - next(mb for t, mb in series if t >= 1.25),
                                                           abs=1e-6)


@pytest.mark.slow  # DDS between processes: not in `make test-fast`
def test_node_bench_with_only_a_depth_subscriber_times_the_depth_image(tmp_path):
    out = tmp_path / "node.json"
    assert main(["bench", "node", "--kinds", "stereo", "--engine", "stereo=classical", "--seconds", "1.5",
                 "--rate", "4", "--outputs", "depth", "--encoding", "16UC1", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    r = report["nodes"]["stereo"]
    assert report["outputs"] == r["outputs"] == ["depth"]
    assert report["encoding"] == r["encoding"] == "16UC1"
    # what came over DDS was millimetres: 2 bytes a pixel (plus the header), not 32FC1's 4
    assert set(r["message_mb"]) == {"depth"}
    assert 2 * CAMERA.width * CAMERA.height <= r["message_mb"]["depth"] * 1e6 < 2 * CAMERA.width * CAMERA.height + 512
    assert r["frames_out"] >= 1 and r["p50_ms"] == pytest.approx(r["depth_p50_ms"])  # latency to the depth image
    assert 0 < r["dds_floor_p50_ms"] < r["p50_ms"]
    with pytest.raises(ValueError, match="at least one"):
        bench_kind("stereo", "classical", 1.0, 4.0, outputs=())
    with pytest.raises(ValueError, match="encoding must be one of"):
        bench_kind("stereo", "classical", 1.0, 4.0, encoding="8UC1")
