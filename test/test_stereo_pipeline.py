"""StereoPipeline in the camera's own pixels, and `depth-perception infer stereo` on image files."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.plane_sweep import rectified_pose
from depth_perception.pipelines.stereo import StereoPipeline, StereoPipelineConfig

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import random_texture, render_plane

pytestmark = pytest.mark.slow  # not in `make test-fast`

CAM = PinholeCamera(160, 64, 110.0, 110.0, 79.5, 31.5)


@pytest.fixture(scope="module")
def pair():
    tex = random_texture(5)
    n = np.array([0.2, -0.2, 1.0])
    n /= np.linalg.norm(n)
    left, gt = render_plane(CAM, np.eye(4), n, 8.0, tex, 14.0)
    right, _ = render_plane(CAM, rectified_pose(0.5), n, 8.0, tex, 14.0)
    return left, right, gt


def test_classical_pipeline_returns_depth_in_the_cameras_pixels(pair):
    left, right, gt = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40))
    result = pipe.process(left, right, CAM, 0.5)
    assert result.depth.shape == CAM.shape and result.camera == CAM
    m = np.isfinite(result.depth)
    assert m.mean() > 0.8
    assert np.median(np.abs(result.depth[m] - gt[m]) / gt[m]) < 0.03
    assert result.timings_ms["total"] > 0


def test_classical_pipeline_works_at_a_reduced_width_and_restores_the_size(pair):
    left, right, gt = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40,
                                               sweep_width=80))
    result = pipe.process(left, right, CAM, 0.5)
    assert result.depth.shape == CAM.shape
    m = np.isfinite(result.depth)
    assert m.mean() > 0.7 and np.median(np.abs(result.depth[m] - gt[m]) / gt[m]) < 0.05


def test_confidence_threshold_turns_unsure_pixels_into_nan(pair):
    left, right, _ = pair
    base = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40))
    strict = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=40,
                                                 confidence_threshold=0.5))
    a, b = base.process(left, right, CAM, 0.5), strict.process(left, right, CAM, 0.5)
    assert np.isfinite(b.depth).sum() < np.isfinite(a.depth).sum()
    assert np.all(b.confidence[np.isfinite(b.depth)] >= 0.5)


def test_bad_inputs_are_refused(pair):
    left, right, _ = pair
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical"))
    with pytest.raises(ValueError, match="right image"):
        pipe.process(left, right[:10], CAM, 0.5)
    with pytest.raises(ValueError, match="baseline"):
        pipe.process(left, right, CAM, 0.0)
    with pytest.raises(FileNotFoundError):
        StereoPipeline(StereoPipelineConfig(engine="/nonexistent/stereo.onnx"))
    with pytest.raises(ValueError, match="confidence_threshold"):
        StereoPipelineConfig(confidence_threshold=2.0)


def _write_inputs(tmp_path, pair):
    left, right, _ = pair
    cv2.imwrite(str(tmp_path / "left.png"), left[..., ::-1])
    cv2.imwrite(str(tmp_path / "right.png"), right[..., ::-1])
    (tmp_path / "calib.yaml").write_text(f"fx: {CAM.fx}\nfy: {CAM.fy}\ncx: {CAM.cx}\ncy: {CAM.cy}\nbaseline: 0.5\n")


def test_infer_stereo_writes_depth_and_a_picture(tmp_path, pair, capsys):
    _write_inputs(tmp_path, pair)
    gt = pair[2]
    args = ["infer", "stereo", "--left", str(tmp_path / "left.png"), "--right", str(tmp_path / "right.png"),
            "--calib", str(tmp_path / "calib.yaml"), "--engine", "classical", "--min-depth", "2",
            "--max-depth", "40", "--planes", "40"]
    assert main(args + ["--out", str(tmp_path / "d.npy")]) == 0
    depth = np.load(tmp_path / "d.npy")
    m = np.isfinite(depth)
    assert depth.shape == CAM.shape and np.median(np.abs(depth[m] - gt[m]) / gt[m]) < 0.03
    color = cv2.imread(str(tmp_path / "d_color.png"))
    assert color.shape == (64, 160, 3)
    assert main(args + ["--out", str(tmp_path / "d.png")]) == 0
    mm = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert mm.dtype == np.uint16
    np.testing.assert_allclose(mm[m] / 1000.0, depth[m], atol=2e-3)
    assert "classical" in capsys.readouterr().out


def test_infer_stereo_takes_extra_posed_views(tmp_path, pair):
    _write_inputs(tmp_path, pair)
    np.save(tmp_path / "pose.npy", rectified_pose(0.5))
    out = tmp_path / "d.npy"
    code = main(["infer", "stereo", "--left", str(tmp_path / "left.png"), "--right", str(tmp_path / "right.png"),
                 "--calib", str(tmp_path / "calib.yaml"), "--engine", "classical", "--out", str(out),
                 "--min-depth", "2", "--max-depth", "40", "--planes", "24",
                 "--views", f"{tmp_path / 'right.png'}:{tmp_path / 'pose.npy'}"])
    assert code == 0 and out.exists()


@pytest.mark.parametrize("change, message", [
    (dict(out="d.jpg"), "--out must end in .npy or .png"),
    (dict(left="missing.png"), "image not found"),
    (dict(calib="nocalib.yaml"), "calibration file not found"),
    (dict(views="right.png"), "IMG:POSEFILE"),
])
def test_infer_stereo_bad_input_is_one_line_and_exit_2(tmp_path, pair, capsys, change, message):
    _write_inputs(tmp_path, pair)
    opts = dict(left="left.png", right="right.png", calib="calib.yaml", out="d.npy")
    opts.update(change)
    args = ["infer", "stereo", "--engine", "classical"]
    for k in ("left", "right", "calib", "out", "views"):
        if k in opts:
            args += [f"--{k}", str(tmp_path / opts[k])]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_reprojecting_onto_the_reference_intrinsics_moves_content_by_the_principal_point_offset():
    from depth_perception.engines.resize import reproject_to_camera

    img = (np.arange(64 * 160) % 251).astype(np.uint8).reshape(64, 160)
    right = PinholeCamera(160, 64, 110.0, 110.0, 79.5 + 7, 31.5)
    out = reproject_to_camera(img, right, CAM)
    np.testing.assert_array_equal(out[:, :150], img[:, 7:157])  # cx 7 px smaller: everything 7 px to the left
    assert reproject_to_camera(img, CAM, CAM) is img


def _bad3(scene, depth):
    d = scene.disparity_from_depth(depth)
    valid = np.isfinite(scene.disparity)
    err = np.abs(np.where(np.isfinite(d), d, np.inf) - scene.disparity)[valid]  # holes count as errors
    return float(np.mean(err > 3))


def test_middlebury_motorcycle_with_its_principal_point_offset_gives_the_true_disparity():
    # a real scene, calibrated: cx1 - cx0 = doffs = 31.086 px; ignoring it put every disparity 31 px off (bad-3 0.99)
    from depth_perception.data.middlebury import motorcycle_scene

    scene = motorcycle_scene()
    pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=1.5, max_depth=10.0,
                                               sweep_width=320))
    with_offset = pipe.process(scene.left, scene.right, scene.camera, scene.baseline, right_camera=scene.right_camera)
    without = pipe.process(scene.left, scene.right, scene.camera, scene.baseline)
    assert _bad3(scene, with_offset.depth) < 0.35
    assert _bad3(scene, without.depth) > 0.9


def test_infer_stereo_reads_middlebury_and_kitti_calibrations_with_two_principal_points(tmp_path):
    from depth_perception.data.middlebury import motorcycle_scene

    scene = motorcycle_scene()
    h = 160  # a strip keeps it quick; the calibration's size is the full image, so crop the camera
    for name, img in (("im0.png", scene.left[:h]), ("im1.png", scene.right[:h])):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
    calib = scene.calib_txt().replace("height=500", f"height={h}")
    (tmp_path / "calib.txt").write_text(calib)
    (tmp_path / "calib_cam_to_cam.txt").write_text(scene.kitti_calib_txt().replace("5.000000e+02", f"{h}"))
    depths = []
    for calib_name in ("calib.txt", "calib_cam_to_cam.txt"):
        out = tmp_path / f"{calib_name}.npy"
        rc = main(["infer", "stereo", "--left", str(tmp_path / "im0.png"), "--right", str(tmp_path / "im1.png"),
                   "--calib", str(tmp_path / calib_name), "--out", str(out), "--engine", "classical",
                   "--min-depth", "1.5", "--max-depth", "10"])
        assert rc == 0
        depths.append(np.load(out))
    same = np.isfinite(depths[0]) & np.isfinite(depths[1])  # the KITTI file rounds to 7 digits
    assert same.sum() > 0.95 * np.isfinite(depths[0]).sum()
    assert np.mean(np.abs(depths[0][same] - depths[1][same]) < 0.01 * depths[1][same]) > 0.99
    gt = scene.depth[:h]
    both = np.isfinite(gt) & np.isfinite(depths[0])
    assert both.mean() > 0.5
    assert np.median(np.abs(depths[0][both] - gt[both]) / gt[both]) < 0.03


def _box_in_front_of_a_wall(T_view_ref: np.ndarray, x_offset: float) -> tuple[np.ndarray, np.ndarray]:
    """An orange-tinted box face 5 m away, 1.8 m wide, in front of a blue-tinted wall at 14 m (both textured):
    a depth step on a colour edge at each side of the box. Returns RGB uint8 and depth."""
    n = np.array([0.0, 0.0, 1.0])
    wall, z_wall = render_plane(CAM, T_view_ref, n, 14.0, random_texture(1), 14.0)
    box, z_box = render_plane(CAM, T_view_ref, n, 5.0, random_texture(2), 30.0)
    u = np.arange(CAM.width)[None, :] * np.ones((CAM.height, 1))
    on_box = np.abs((u - CAM.cx) / CAM.fx * z_box + x_offset) < 0.9
    img = np.where(on_box[..., None], 0.35 * box + 150 * np.array([1.0, 0.6, 0.2]),
                   0.5 * wall * np.array([0.3, 0.6, 1.0]))
    return img.clip(0, 255).astype(np.uint8), np.where(on_box, z_box, z_wall).astype(np.float32)


def test_edge_snap_moves_the_sweeps_fattened_depth_steps_onto_the_colour_edges():
    left, gt = _box_in_front_of_a_wall(np.eye(4), 0.0)
    right, _ = _box_in_front_of_a_wall(rectified_pose(0.5), 0.5)
    truth = CAM.fx * 0.5 / gt
    step = np.zeros(gt.shape, bool)
    step[:, 1:] = np.abs(np.diff(truth, axis=1)) > 1
    near = np.zeros(gt.shape, bool)
    for c in np.nonzero(step[0])[0]:
        near[:, max(0, c - 4):c + 4] = True
    errors = {}
    for snap in (False, True):
        pipe = StereoPipeline(StereoPipelineConfig(engine="classical", min_depth=2.0, max_depth=40.0, planes=48,
                                                   edge_snap=snap))
        result = pipe.process(left, right, CAM, 0.5)
        errors[snap] = np.abs(CAM.fx * 0.5 / result.depth - truth)
        assert "edge_snap_ms" in result.timings_ms if snap else "edge_snap_ms" not in result.timings_ms
    ok = np.isfinite(errors[False]) & np.isfinite(errors[True])
    # measured: mean error within 4 px of the steps 2.05 -> 1.20 px, bad-1 there 0.27 -> 0.15
    assert errors[True][near & ok].mean() < 0.75 * errors[False][near & ok].mean()
    assert np.mean(errors[True][near & ok] > 1) < 0.7 * np.mean(errors[False][near & ok] > 1)
    assert np.isfinite(errors[True]).sum() == np.isfinite(errors[False]).sum()  # holes stay holes
    moved = np.abs(errors[True] - errors[False])[~near & ok] > 0.3  # away from the steps (a hole's border may)
    assert moved.mean() < 0.01, moved.mean()


def test_the_shipped_refinement_sees_a_bench_rigs_near_plane_and_an_engine_range_a_config_exceeds_is_refused():
    """A plane 0.2-0.25 m from a 5 cm rig (a bench or arm camera; OpenCV's chessboard rig sees its board at
    0.21-0.45 m): the shipped refinement returns its depth, where the first export clamped everything nearer
    than 0.3 m to 0.3. A config reaching outside an engine's depth_range (DPSNet's planes span 1-80 m) is refused
    naming both, instead of reading a nearer surface as the bound."""
    from depth_perception.engines import default_engine_path

    tex = random_texture(7)
    n = np.array([0.1, -0.1, 1.0])
    n /= np.linalg.norm(n)
    left, gt = render_plane(CAM, np.eye(4), n, 0.2, tex, 400.0)
    right, _ = render_plane(CAM, rectified_pose(0.05), n, 0.2, tex, 400.0)
    assert 0.18 < gt.min() and gt.max() < 0.26
    for variant in ("default", "cpu"):
        engine = default_engine_path("stereo", variant)
        pipe = StereoPipeline(StereoPipelineConfig(engine=str(engine), min_depth=0.1, max_depth=1.0, device="cpu"))
        depth = pipe.process(left, right, CAM, 0.05).depth
        rel = np.abs(depth - gt) / gt
        assert np.nanmedian(rel) < 0.02 and np.mean(depth < 0.29) > 0.5, (variant, np.nanmedian(depth))
    dpsnet = Path(default_engine_path("stereo")).with_name("stereo_dpsnet.onnx")
    with pytest.raises(ValueError, match="covers depths 1-80 m: min_depth 0.5"):
        StereoPipeline(StereoPipelineConfig(engine=str(dpsnet), min_depth=0.5, device="cpu"))
