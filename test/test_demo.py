"""The demo: its report scores engines against ground truth, its recorder sees every frame a node publishes,
and `depth-perception demo` runs synth -> bag -> nodes -> report end to end at a small size."""
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from depth_perception.data.kitti import KittiRawDrive
from depth_perception.data.kitti2bag import convert
from depth_perception.eval.demo import (
    EngineRun,
    format_table,
    frame_metrics,
    load_frames,
    score_run,
    write_demo_report,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.kitti_drive import write_tiny_drive

pytestmark = pytest.mark.slow  # not in `make test-fast`

FRAMES = 4


@pytest.fixture(scope="module")
def drive_path(tmp_path_factory):
    return write_tiny_drive(tmp_path_factory.mktemp("kitti"), frames=FRAMES, seed=5)


@pytest.fixture(scope="module")
def bag_path(drive_path, tmp_path_factory):
    return convert(drive_path, tmp_path_factory.mktemp("bag") / "drive", storage="mcap").path


def read_ply(path):
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    n = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    has_rgb = any("red" in line for line in lines)
    dtype = [("xyz", "<f4", 3)] + ([("rgb", "u1", 3)] if has_rgb else [])
    return np.frombuffer(body, dtype=dtype, count=n)


# ----------------------------------------------------------------------------------------------- the report


def test_frame_metrics_score_only_valid_pixels_and_report_density():
    gt = np.array([[10.0, 20.0, 0.0, 90.0]], np.float32)  # 0: no ground truth; 90 m: beyond max_depth
    pred = np.array([[11.0, np.nan, 5.0, 90.0]], np.float32)
    m = frame_metrics(pred, gt, 1.0, 80.0)
    assert m["abs_rel"] == pytest.approx(0.1) and m["density"] == pytest.approx(0.5)
    assert frame_metrics(np.full_like(gt, np.nan), gt, 1.0, 80.0) is None


def test_median_scaling_removes_a_global_scale_and_completion_adds_millimetre_figures():
    gt = np.linspace(2, 40, 50, dtype=np.float32).reshape(5, 10)
    assert frame_metrics(gt * 3.0, gt, 1.0, 80.0, median_scale=True)["abs_rel"] < 1e-6
    m = frame_metrics(gt + 0.5, gt, 1.0, 80.0, completion=True)
    assert m["rmse_mm"] == pytest.approx(500.0, rel=1e-4) and m["mae_mm"] == pytest.approx(500.0, rel=1e-4)


def test_report_scores_each_run_against_ground_truth_and_writes_pictures_clouds_and_json(drive_path, tmp_path):
    frames = load_frames(drive_path)
    assert len(frames) == FRAMES and frames[0].lidar_cam.shape[1] == 3
    gts = {f.index: f.gt for f in frames}
    stereo = EngineRun("stereo", "stereo_default.onnx", "node",
                       depth={i: g * 1.05 for i, g in gts.items()}, latency_ms={i: 100.0 + i for i in gts},
                       engine_ms={i: 80.0 for i in gts})
    completion = EngineRun("completion", "completion_default.onnx", "node", depth=dict(gts))
    mono = EngineRun("mono", "mono_default.onnx", "node", depth={i: g * 0.5 for i, g in gts.items() if i != 2})
    baseline = EngineRun("completion", "classical", "offline", depth={i: g + 1.0 for i, g in gts.items()})
    metrics = write_demo_report(tmp_path, frames, [mono, stereo, completion, baseline], settings={"frames": FRAMES},
                                notes=["a note"])
    e = metrics["engines"]
    assert set(e) == {"mono", "stereo", "completion", "completion_classical_offline"}
    assert e["stereo"]["abs_rel"] == pytest.approx(0.05, abs=0.002) and e["stereo"]["a1"] == 1.0
    assert e["stereo"]["latency_p50_ms"] == pytest.approx(101.5) and e["stereo"]["engine_p50_ms"] == 80.0
    assert e["completion"]["rmse_mm"] < 1.0 and e["completion_classical_offline"]["mae_mm"] > 900.0
    # mono is scored as published (half the depth), and beside that with its scale taken out
    assert e["mono"]["abs_rel"] == pytest.approx(0.5, abs=0.01) and e["mono"]["abs_rel_median_scaled"] < 1e-5
    assert e["mono"]["frames_missing"] == [2]
    assert e["mono"]["frames_with_depth"] == FRAMES - 1

    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["engines"]["stereo"]["abs_rel"] == pytest.approx(e["stereo"]["abs_rel"])
    for name in [*on_disk["files"]["frames"], on_disk["files"]["bev"]]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(on_disk["files"]["frames"]) == FRAMES
    bev_frame = on_disk["files"]["bev_frame"]
    stereo_ply = read_ply(tmp_path / on_disk["files"]["ply"]["stereo"])
    h, w = frames[0].camera.shape
    assert len(stereo_ply) == h * w and "rgb" in stereo_ply.dtype.names  # back-projected, coloured by the image
    np.testing.assert_allclose(np.sort(stereo_ply["xyz"][:, 2]), np.sort(gts[bev_frame].ravel() * 1.05), rtol=1e-5)
    assert len(read_ply(tmp_path / on_disk["files"]["ply"]["lidar"])) == len(frames[bev_frame].lidar_cam)

    table = (tmp_path / "table.txt").read_text()
    assert table == format_table(metrics) + "\n"
    assert "completion_classical_offline" in table and "note: a note" in table and "3/4" in table


def test_a_run_with_no_depth_scores_no_frames_but_still_reports(drive_path):
    frames = load_frames(drive_path, [0, 1])
    m = score_run(EngineRun("mono", "mono_default.onnx", "node", note="engine missing"), frames, 1.0, 80.0)
    assert m["frames_with_depth"] == 0 and "abs_rel" not in m and m["note"] == "engine missing"
    assert "engine missing" in format_table({"engines": {"mono": m}})


def test_engine_run_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        EngineRun("lidar", "x", "node")


# --------------------------------------------------------------------------------------------- the recorder


def make_echo_node(context, delay_s=0.0, kind="stereo"):
    """A stand-in depth node: for each left image, publishes depth = (row + 1) m, a confidence and points,
    under /depth/<kind>, stamped like the image, after `delay_s` (a slow engine)."""
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, PointCloud2

    from depth_perception.geometry import PinholeCamera
    from depth_perception.ros.image import depth_to_image, numpy_to_image
    from depth_perception.ros.pointcloud import depth_to_pointcloud2

    node = Node("echo_depth_node", namespace=f"/depth/{kind}", context=context)
    pub_depth = node.create_publisher(Image, "depth", 10)
    pub_conf = node.create_publisher(Image, "depth/confidence", 10)
    pub_points = node.create_publisher(PointCloud2, "depth/points", 10)

    def on_image(msg):
        time.sleep(delay_s)
        h, w = msg.height, msg.width
        depth = np.repeat(np.arange(1, h + 1, dtype=np.float32)[:, None], w, 1)
        depth[0, 0] = np.nan
        cam = PinholeCamera(w, h, 50.0, 50.0, w / 2, h / 2)
        pub_depth.publish(depth_to_image(depth, header=msg.header))
        pub_conf.publish(numpy_to_image(np.full((h, w), 0.5, np.float32), "32FC1", msg.header))
        pub_points.publish(depth_to_pointcloud2(depth, cam, header=msg.header))

    node.create_subscription(Image, "/kitti/camera_color_left/image_raw", on_image, qos_profile_sensor_data)
    return node


def test_recorder_gets_every_frame_of_a_slow_node_with_its_stamp_and_arrays(bag_path, drive_path):
    from depth_perception.ros.recorder import record_bag

    drive = KittiRawDrive(drive_path)
    seen = []
    rec = record_bag(bag_path, lambda ctx: [make_echo_node(ctx, delay_s=0.4)], ["stereo"], frame_timeout_s=20.0,
                     on_frame=lambda k, n, ok: seen.append((k, n, ok)),
                     node_info=lambda node: {"name": node.get_fully_qualified_name()})
    assert seen == [(k, FRAMES, True) for k in range(FRAMES)]
    assert rec.frame_stamps == list(drive.timestamps(2))
    assert sorted(rec.outputs["stereo"]) == list(range(FRAMES))
    frames, depth = rec.arrays("stereo")
    h, w = drive.image(2, 0).shape[:2]
    assert frames == list(range(FRAMES)) and depth.shape == (FRAMES, h, w) and depth.dtype == np.float32
    assert np.isnan(depth[:, 0, 0]).all() and (depth[:, 1:, 0] == np.arange(2, h + 1)).all()
    out = rec.outputs["stereo"][2]
    assert out.stamp_ns == drive.timestamps(2)[2] and out.frame_id == "camera_color_left"
    assert out.confidence.shape == (h, w) and (out.confidence == 0.5).all()
    assert out.points.shape == (h * w, 3) and np.isnan(out.points[0]).all()
    np.testing.assert_allclose(out.points[1:, 2], depth[2].ravel()[1:])
    # A 0.4 s engine: latency from its input (the left image) to the depth arriving is about that; no frame lost.
    assert all(400.0 <= v < 5000.0 for v in rec.latency_ms["stereo"].values())
    assert rec.stats.timed_out == [] and rec.errors == []
    assert rec.node_info == {"echo_depth_node": {"name": "/depth/stereo/echo_depth_node"}}


def test_recorder_names_the_frames_a_node_never_answered_and_stops_waiting_for_it(bag_path):
    from depth_perception.ros.recorder import record_bag

    logs = []
    rec = record_bag(bag_path, lambda ctx: [make_echo_node(ctx, kind="stereo")], ["stereo", "mono"],
                     frame_timeout_s=1.5, drain_s=0.5, discovery_timeout_s=2.0, log=logs.append)
    # two frames wait for mono in vain; then it is no longer awaited and the replay runs on without stalling
    # (on a loaded machine a later frame can also time out waiting for the slow-but-alive stereo node)
    assert rec.stats.timed_out[:2] == [0, 1] and rec.stats.given_up == ["mono"]
    assert rec.outputs["mono"] == {} and sorted(rec.outputs["stereo"]) == list(range(FRAMES))
    assert any("frame 0: no output from ['mono']" in line for line in logs)
    assert any("mono: no output for 2 frames" in line for line in logs)


def test_stop_event_ends_a_recording_early(bag_path):
    from depth_perception.ros.recorder import record_bag

    stop = threading.Event()
    rec = record_bag(bag_path, lambda ctx: [make_echo_node(ctx)], ["stereo"],
                     on_frame=lambda k, n, ok: stop.set() if k == 0 else None, stop_event=stop)
    assert len(rec.outputs["stereo"]) < FRAMES


def test_depth_at_a_node_input_size_is_scored_in_the_cameras_pixels(drive_path):
    frames = load_frames(drive_path, [0])
    h, w = frames[0].camera.shape
    run = EngineRun("stereo", "x.onnx", "node", depth={0: np.full((h // 2, w // 2), 10.0, np.float32)})
    gt = frames[0].gt
    keep = (gt >= 1.0) & (gt <= 80.0)
    assert score_run(run, frames, 1.0, 80.0)["abs_rel"] == pytest.approx(np.mean(np.abs(gt[keep] - 10.0) / gt[keep]),
                                                                         rel=1e-5)


# ------------------------------------------------------------------------------------------------ the command


def test_a_second_run_reuses_the_bag_until_the_drive_changes(drive_path, tmp_path):
    from depth_perception.eval.demo import ensure_bag

    bag = ensure_bag(drive_path, tmp_path, force=False)
    first = (bag / "metadata.yaml").stat().st_mtime_ns
    assert ensure_bag(drive_path, tmp_path, force=False) == bag
    assert (bag / "metadata.yaml").stat().st_mtime_ns == first
    assert ensure_bag(drive_path, tmp_path, force=True) == bag
    second = (bag / "metadata.yaml").stat().st_mtime_ns
    assert second != first
    image = next((drive_path / "image_02" / "data").glob("*.png"))
    os.utime(image, (time.time() + 10, time.time() + 10))  # the drive was written again
    ensure_bag(drive_path, tmp_path, force=False)
    third = (bag / "metadata.yaml").stat().st_mtime_ns
    assert third != second
    from depth_perception.ros.recorder import key_stamps

    assert len(key_stamps(ensure_bag(drive_path, tmp_path, False, frames=2))) == 2  # fewer frames: a new bag


def test_cli_rejects_bad_options_in_one_line(tmp_path, capsys):
    from depth_perception.cli import main

    assert main(["demo", "--out", str(tmp_path), "--frames", "0"]) == 2
    assert "--frames must be >= 1" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--no-mono", "--no-stereo", "--no-completion"]) == 2
    assert "leave nothing to run" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--rate", "-1"]) == 2
    assert "--rate must be > 0" in capsys.readouterr().err
    assert main(["demo", "--out", str(tmp_path), "--width", "320"]) == 2
    assert "--width and --height go together" in capsys.readouterr().err


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo at a small size: 3 synthetic frames of 416 x 128, the shipped engines (or their fallbacks)."""
    from depth_perception.cli import main

    out = tmp_path_factory.mktemp("demo")
    argv = ["demo", "--out", str(out), "--frames", "3", "--width", "416", "--height", "128", "--frame-timeout", "90"]
    code = main(argv)
    return out, code, argv


def test_demo_scores_every_engine_on_every_frame_within_bounds_a_broken_pipeline_would_miss(demo_run):
    out, code, _ = demo_run
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    engines = metrics["engines"]
    assert {"stereo", "completion", "stereo_classical_offline", "completion_classical_offline"} <= set(engines)
    for name, m in engines.items():
        assert m["frames_with_depth"] == 3 and m["scored_frames"] == 3, name
        assert m["engine_p50_ms"] > 0, name
        if m["source"] == "node":
            # from the node's last input going out to its depth arriving: the engine's time and then some
            assert 0.9 * m["engine_p50_ms"] < m["latency_p50_ms"] < 60_000, name
    assert engines["stereo"]["abs_rel"] < 0.3 and engines["stereo"]["a1"] > 0.7
    completion, ipbasic = engines["completion"], engines["completion_classical_offline"]
    if completion["engine"] == "classical":
        # The node runs the same IP-Basic on what came over DDS and through TF: the same figures as offline.
        assert completion["rmse_mm"] == pytest.approx(ipbasic["rmse_mm"], rel=0.01)
    else:  # NLSPN must beat the classical in-fill it is shipped to replace
        assert completion["rmse_mm"] < ipbasic["rmse_mm"]
    if engines["stereo"]["engine"] == "classical":
        assert engines["stereo"]["abs_rel"] == pytest.approx(engines["stereo_classical_offline"]["abs_rel"], rel=0.02)
    if "mono" in engines:
        assert engines["mono"]["abs_rel"] < 0.5
    else:  # no shipped mono engine: said so
        assert any(note.startswith("mono: skipped") for note in metrics["notes"])


def test_demo_writes_pictures_clouds_and_a_table_people_can_open(demo_run):
    out, _, _ = demo_run
    metrics = json.loads((out / "metrics.json").read_text())
    files = metrics["files"]
    assert len(files["frames"]) == 3
    for name in [*files["frames"], files["bev"]]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name, path in files["ply"].items():
        cloud = read_ply(out / path)
        assert len(cloud) > 100 and np.isfinite(cloud["xyz"]).all(), name
        if name != "lidar":  # the LiDAR sweeps all round; depth clouds lie in front of the camera, in metres
            assert np.median(cloud["xyz"][:, 2]) > 1.0, name
    table = (out / "table.txt").read_text()
    for name in metrics["engines"]:
        assert name in table


def test_a_second_demo_run_reuses_the_drive_and_bag(demo_run, capsys):
    from depth_perception.cli import main

    out, _, argv = demo_run
    capsys.readouterr()
    assert main([*argv, "--no-mono", "--no-completion", "--no-baselines"]) == 0
    err = capsys.readouterr().err
    assert "reusing the synthetic drive" in err and "reusing the bag" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["engines"]) == {"stereo"}
