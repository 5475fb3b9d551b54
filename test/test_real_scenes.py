"""The real-data evaluation: Middlebury 2014 Motorcycle (scikit-image ships it) and Middlebury scene folders,
every method on the same inputs, holes counted as errors; the figures are checked against known answers."""
import json

import cv2
import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.data.middlebury import (
    motorcycle_scene,
    read_middlebury_scene,
    read_opencv_aloe,
    read_pfm,
    write_pfm,
)
from depth_perception.eval.real_scenes import (
    evaluate_completion_scene,
    evaluate_mono_scene,
    evaluate_stereo_scene,
    find_opencv_samples,
    load_scene,
    random_pattern,
    scene_scanner_pattern,
    stereo_scores,
)

pytestmark = pytest.mark.slow  # not in `make test-fast`


@pytest.fixture(scope="module")
def scene():
    return motorcycle_scene()


def test_the_motorcycle_scene_has_its_published_calibration_and_plausible_depth(scene):
    assert scene.left.shape == (500, 741, 3) and scene.disparity.shape == (500, 741)
    assert scene.doffs == pytest.approx(31.086) and scene.baseline == pytest.approx(0.193001)
    depth = scene.depth[np.isfinite(scene.depth)]
    assert 2.0 < np.median(depth) < 3.5 and np.isfinite(scene.disparity).mean() > 0.9


def test_a_middlebury_folder_reads_back_as_the_scene_it_was_written_from(tmp_path, scene):
    for name, img in (("im0.png", scene.left), ("im1.png", scene.right)):
        cv2.imwrite(str(tmp_path / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    write_pfm(tmp_path / "disp0.pfm", np.where(np.isfinite(scene.disparity), scene.disparity, np.inf))
    (tmp_path / "calib.txt").write_text(scene.calib_txt())
    again = load_scene(str(tmp_path))
    np.testing.assert_array_equal(again.left, scene.left)
    np.testing.assert_array_equal(again.disparity, scene.disparity)
    assert again.right_camera.cx == pytest.approx(scene.right_camera.cx)
    assert read_pfm(tmp_path / "disp0.pfm").dtype == np.float32
    (tmp_path / "disp0.pfm").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(ValueError, match="not a PFM file"):
        read_middlebury_scene(tmp_path)


def test_a_middlebury_folder_with_a_foreign_calibration_or_a_colour_disparity_says_which(tmp_path, scene):
    folder = tmp_path / "m"
    folder.mkdir()
    for name, img in (("im0.png", scene.left), ("im1.png", scene.right)):
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    write_pfm(folder / "disp0.pfm", np.nan_to_num(scene.disparity, nan=np.inf))
    (folder / "calib.txt").write_text(scene.kitti_calib_txt())  # a KITTI file under Middlebury's name
    with pytest.raises(ValueError, match="not a Middlebury calib.txt: it needs cam0"):
        read_middlebury_scene(folder)
    (folder / "calib.txt").write_text(scene.calib_txt())
    write_pfm(folder / "disp0.pfm", np.repeat(scene.disparity[..., None], 3, 2))
    with pytest.raises(ValueError, match="has 3 channels: a disparity map has one"):
        read_middlebury_scene(folder)


def _write_aloe_layout(folder, scene):
    """OpenCV's Aloe sample layout from a scene: JPEG pair, 8-bit integer disparity with 0 where unknown."""
    folder.mkdir(exist_ok=True)
    for name, img in (("aloeL.jpg", scene.left), ("aloeR.jpg", scene.right)):
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    gt = np.where(np.isfinite(scene.disparity), np.clip(np.round(scene.disparity), 1, 255), 0).astype(np.uint8)
    cv2.imwrite(str(folder / "aloeGT.png"), gt)
    return gt


def test_an_opencv_aloe_folder_is_an_uncalibrated_scene_that_scores_stereo_only(tmp_path, scene, capsys):
    """OpenCV's sample layout (Middlebury 2006 Aloe) reads as a scene without calibration: 0 in the disparity PNG
    is unknown, doffs is taken as 0, RMSE in metres is not reported, and completion and monocular, which need
    metres, refuse it with a one-line reason; a 16-bit or mis-sized disparity says what is wrong."""
    folder = tmp_path / "aloe"
    gt = _write_aloe_layout(folder, scene)
    again = load_scene(str(folder))
    assert not again.calibrated and again.doffs == 0 and again.baseline == pytest.approx(0.16)
    assert again.camera.fx == 3740.0 and again.left.shape == scene.left.shape
    np.testing.assert_array_equal(np.isnan(again.disparity), gt == 0)
    np.testing.assert_array_equal(again.disparity[gt > 0], gt[gt > 0])
    perfect = stereo_scores(again, again.disparity)
    assert perfect["bad1"] == 0 and perfect["abs_rel"] < 1e-4 and np.isnan(perfect["rmse"])
    with pytest.raises(ValueError, match="ships without its calibration"):
        load_scene(str(folder), metric=True)
    with pytest.raises(ValueError, match="ships without its calibration"):
        evaluate_mono_scene(again)
    assert main(["eval", "completion", "--scene", str(folder)]) == 2
    assert "aloe ships without its calibration (doffs unknown)" in capsys.readouterr().err
    cv2.imwrite(str(folder / "aloeGT.png"), gt.astype(np.uint16) * 256)
    with pytest.raises(ValueError, match="aloeGT.png: a disparity map here is one 8-bit channel, got uint16"):
        read_opencv_aloe(folder)
    cv2.imwrite(str(folder / "aloeGT.png"), gt[:-2])
    with pytest.raises(ValueError, match="differ in size"):
        read_opencv_aloe(folder)


def test_stereo_scores_know_a_perfect_a_shifted_and_a_holey_disparity(scene):
    perfect = stereo_scores(scene, scene.disparity)
    assert perfect["bad1"] == 0 and perfect["epe"] == 0 and perfect["abs_rel"] < 1e-4 and perfect["density"] == 1
    assert stereo_scores(scene, scene.disparity + 5.0)["bad3"] == 1.0
    holes = scene.disparity.copy()
    holes[:, ::2] = np.nan
    holey = stereo_scores(scene, holes)
    assert holey["bad1"] == pytest.approx(0.5, abs=0.02) and holey["epe"] == 0  # holes are errors, not ignored


def test_the_scanner_pattern_lies_on_beams_of_constant_elevation(scene):
    sparse = scene_scanner_pattern(scene, beams=32)
    assert 0.005 < (sparse > 0).mean() < 0.1
    per_column = (sparse > 0).sum(0)
    assert 0.2 < (per_column > 0).mean() < 0.6  # 0.17 degree azimuth steps: about every third column here
    assert np.median(per_column[per_column > 0]) <= 2 * 32  # a few pixels per beam in a column, not a spray
    assert np.all(sparse[sparse > 0] == scene.depth[sparse > 0])


def test_eval_stereo_on_the_real_scene_puts_the_classical_sweep_beside_sgbm(tmp_path, capsys):
    out, picture = tmp_path / "stereo.json", tmp_path / "stereo.png"
    assert main(["eval", "stereo", "--scene", "motorcycle", "--engine", "classical", "--json", str(out),
                 "--image", str(picture)]) == 0
    report = json.loads(out.read_text())
    img = cv2.imread(str(picture))  # camera, ground truth, then SGBM and the sweep with their error maps
    assert img is not None and img.shape[0] > img.shape[1] and img.std() > 20
    sgbm, classical = report["methods"]["sgbm"], report["methods"]["classical"]
    assert sgbm["bad3"] < 0.35 and classical["bad3"] < 0.35  # a calibration or protocol bug gives ~1.0
    # the target: no worse than SGBM (measured 0.192 against 0.221; a left-right check in planes rather
    # than pixels gave 0.222)
    assert classical["bad3"] <= sgbm["bad3"]
    assert "holes count as errors" in capsys.readouterr().out


def test_completion_on_the_real_scene_in_random_and_scanner_patterns(scene):
    patterns = {"random": random_pattern(scene.depth, 0.05), "scanner": scene_scanner_pattern(scene)}
    report = evaluate_completion_scene(scene, ["classical"], patterns)
    for rows in report["patterns"].values():
        assert rows["ip_basic"]["rmse_mm"] < 800 and rows["nearest"]["rmse_mm"] < 900
    assert report["patterns"]["random"]["ip_basic"]["rmse_mm"] < 300
    # the colour-guided in-fill (a "guided" engine's prior) stops at the image's edges where IP-Basic blurs across
    # them (measured 0.68x IP-Basic's RMSE on the random pattern of the whole scene)
    random = report["patterns"]["random"]
    assert random["guided_fill"]["rmse_mm"] < 0.85 * random["ip_basic"]["rmse_mm"], random


def test_the_shipped_completion_engine_holds_its_own_against_ip_basic_on_the_real_scene():
    """The real-data check of the learned completion engine, both sparse patterns, on the whole Motorcycle scene.

    The shipped engine (NLSPN light propagating the colour-guided in-fill, no correction head) is measured at
    0.67x IP-Basic's RMSE on the scanner pattern and 0.78x on the random one (README); through the pipeline's
    defaults the random pattern, drawn from the camera's own ground truth and covering the image, goes to the
    guided in-fill (0.68x). The issue's target is 0.7x; this test holds the line: the scanner below 0.75x, the
    random pattern below 0.75x at the defaults and the engine itself below 0.85x on it. The engine before it scored
    0.84x and 0.74x, the one with a correction head 1.01x and 0.93x, the one over the IP-Basic prior 1.0x and
    1.34x, the one before the refinement design 2.5x and 7.6x; a squashed input, a lost prior or a unit error
    fails here."""
    from depth_perception.eval.completion_metrics import completion_metrics
    from depth_perception.pipelines.completion import CompletionPipeline, CompletionPipelineConfig, default_engine_path

    engine = default_engine_path()
    assert engine is not None, "the shipped completion engine is missing"
    scene = motorcycle_scene()
    patterns = {"random": random_pattern(scene.depth, 0.05), "scanner": scene_scanner_pattern(scene)}
    report = evaluate_completion_scene(scene, ["classical", str(engine)], patterns, device="cpu")
    learned = f"learned:{engine.name}"
    scanner, random = report["patterns"]["scanner"], report["patterns"]["random"]
    assert scanner[learned]["rmse_mm"] < 0.75 * scanner["ip_basic"]["rmse_mm"], report
    assert random[learned]["rmse_mm"] < 0.75 * random["ip_basic"]["rmse_mm"], report
    engine_alone = CompletionPipeline(CompletionPipelineConfig(engine=str(engine), device="cpu", infill_coverage_px=0,
                                                               min_depth=0.1, max_depth=float(np.nanmax(scene.depth))))
    result = engine_alone.process_sparse(scene.left, scene.camera, patterns["random"], sensor_offset_m=0.0)
    assert result.info["infill_only"] == 0.0
    scored = np.isfinite(scene.depth) & (patterns["random"] <= 0)
    rmse_mm = completion_metrics(np.nan_to_num(result.depth, nan=0.0)[scored], scene.depth[scored])["rmse_mm"]
    assert rmse_mm < 0.85 * random["ip_basic"]["rmse_mm"], (rmse_mm, report)


def test_the_shipped_stereo_engine_beats_sgbm_and_the_classical_sweep_on_the_real_scene(scene):
    """The real-data check of the learned stereo engine (the refinement of the classical sweep), holes counted as
    errors, at the pipeline's defaults (96 planes, the sweep at the engine tiles' 640 px). Measured: bad-3 0.37x
    SGBM's and 0.45x the classical sweep's (it is dense; the sweep leaves 15% holes), AbsRel 0.75x SGBM's (at 64
    planes 0.36x / 0.42x / 0.76x). The
    DPSNet engine shipped before scored 0.571 (2.6x SGBM); a squashed input, a lost prior or a calibration error
    fails here."""
    from depth_perception.engines import default_engine_path

    engine = default_engine_path("stereo")
    assert engine is not None, "the shipped stereo engine is missing"
    report = evaluate_stereo_scene(scene, ["classical", str(engine)], device="cpu")
    rows = report["methods"]
    learned, sgbm, classical = rows[f"learned:{engine.name}"], rows["sgbm"], rows["classical"]
    assert learned["bad3"] < 0.6 * sgbm["bad3"] and learned["bad3"] < 0.7 * classical["bad3"], rows
    assert learned["abs_rel"] < 1.1 * classical["abs_rel"] and learned["abs_rel"] < 0.9 * sgbm["abs_rel"], rows
    assert learned["density"] == 1.0


def test_at_the_scenes_resolution_with_128_planes_the_stereo_engines_reach_the_real_data_targets(scene):
    """Issue 20's stereo targets, on the sweep at the scene's own 741 px (SGBM's resolution) with 128 planes (one
    plane per 0.8 px of disparity here) and the edge snap: learned bad-3 and AbsRel at most 0.7x SGBM's, the
    classical sweep's bad-3 no worse than SGBM's. Measured: learned 0.33x / 0.66x, classical bad-3 0.82x; without
    the edge snap the learned AbsRel is 0.77x SGBM's."""
    from depth_perception.engines import default_engine_path

    engine = default_engine_path("stereo")
    report = evaluate_stereo_scene(scene, ["classical", str(engine)], device="cpu", planes=128,
                                   sweep_width=scene.camera.width)
    rows = report["methods"]
    learned, sgbm, classical = rows[f"learned:{engine.name}"], rows["sgbm"], rows["classical"]
    assert learned["bad3"] < 0.4 * sgbm["bad3"] and learned["abs_rel"] < 0.7 * sgbm["abs_rel"], rows
    assert classical["bad3"] < 0.9 * sgbm["bad3"] and classical["abs_rel"] < 0.72 * sgbm["abs_rel"], rows


def test_the_cpu_sized_stereo_engine_beats_sgbm_by_30_percent_on_the_real_scene_and_auto_takes_it_without_a_gpu(
        scene):
    """stereo_cpu: the same network at 320x96, run on a sweep at half size (issue 19's CPU variant). Measured on
    Motorcycle: bad-3 0.45x SGBM's (the issue asks at most 0.7x), AbsRel 0.99x SGBM's (coarser: half the pixels).
    `engine: auto` runs it where no GPU is, and the full-size engine where one is."""
    from depth_perception.engines import default_engine_path as shipped
    from depth_perception.engines import gpu_available
    from depth_perception.pipelines.stereo import default_engine_path

    engine = shipped("stereo", "cpu")
    assert engine is not None, "the shipped CPU stereo engine is missing"
    assert default_engine_path("cpu") == engine and default_engine_path("cuda") == shipped("stereo")
    assert default_engine_path("auto") == (shipped("stereo") if gpu_available() else engine)
    report = evaluate_stereo_scene(scene, ["classical", str(engine)], device="cpu")
    rows = report["methods"]
    learned, sgbm, classical = rows[f"learned:{engine.name}"], rows["sgbm"], rows["classical"]
    assert learned["bad3"] < 0.7 * sgbm["bad3"] and learned["bad3"] < 0.8 * classical["bad3"], rows
    assert learned["abs_rel"] < 1.3 * sgbm["abs_rel"] and learned["density"] == 1.0, rows


def test_eval_mono_on_the_real_scene_puts_the_engine_beside_a_constant_and_draws_it(scene, tmp_path, capsys):
    """The monocular engine on Motorcycle, median-scaled and at its own scale, beside the constant depth.

    The shipped engine (trained on street drives: mono+stereo, then supervised on their ground truth) is BEHIND
    the constant here: AbsRel 0.432 against 0.212 (README; the mono+stereo engine before it: 0.359); it draws the
    garage as a street, the motorcycle far and the floor near. This test checks the figures (the constant's
    against a direct computation, the scale the engine was given) and holds the line the engine is at: below
    0.47, where the same depth upside down scores 0.574 and the image read as BGR 0.616. (Run at the image's
    aspect ratio instead of squashed into 640x192, the engine before scored 0.340-0.389: the training, not the
    resizing, is why.)"""
    from depth_perception.eval.metrics import compute_depth_metrics

    out, picture = tmp_path / "mono.json", tmp_path / "mono.png"
    assert main(["eval", "mono", "--scene", "motorcycle", "--engine", "auto", "--device", "cpu", "--json", str(out),
                 "--image", str(picture)]) == 0
    assert "constant" in capsys.readouterr().out
    report = json.loads(out.read_text())
    rows = report["methods"]
    name = f"learned:{report['engine'].rsplit('/', 1)[-1]}"
    assert set(rows) == {"constant", f"{name} median-scaled", f"{name} own scale"}
    valid = np.isfinite(scene.depth)
    truth = scene.depth[valid].astype(np.float64)
    want = compute_depth_metrics(truth, np.full(truth.shape, np.median(truth)))
    assert rows["constant"]["abs_rel"] == pytest.approx(want["abs_rel"], rel=1e-6) and rows["constant"]["scale"] == 1
    scaled, own = rows[f"{name} median-scaled"], rows[f"{name} own scale"]
    assert own["scale"] == 1.0 and 0 < scaled["scale"] and scaled["abs_rel"] < own["abs_rel"]
    assert scaled["abs_rel"] < 0.47, rows
    assert cv2.imread(str(picture)) is not None
    assert main(["eval", "mono", "--scene", str(tmp_path / "nowhere")]) == 2


def test_planes_finer_than_a_pixel_keep_the_scene_instead_of_rejecting_it_as_ambiguous(scene):
    """512 planes at 160 px wide, 0.06 px apart: neighbouring planes cost nearly the same. Counted as the winner's
    rivals (uniqueness) and as depth steps (speckles), they left 14% of the pixels (bad-3 0.87); with the checks'
    pixel floors (uniqueness_px, speckle_range_px) the sweep is about as good as at 64 planes."""
    import dataclasses

    from depth_perception.pipelines.stereo import StereoPipeline, StereoPipelineConfig
    from depth_perception.pipelines.stereo_classical import ClassicalStereo

    lo, hi = [float(v) for v in (np.nanmin(scene.depth) * 0.7, np.nanmax(scene.depth) * 1.4)]

    def scores(planes, floors=True):
        pipe = StereoPipeline(StereoPipelineConfig(engine="classical", planes=planes, min_depth=lo, max_depth=hi,
                                                   sweep_width=160, edge_snap=False))
        if not floors:
            pipe.classical = ClassicalStereo(dataclasses.replace(pipe.classical.config, uniqueness_px=0.0,
                                                                 speckle_range_px=0.0))
        result = pipe.process(scene.left, scene.right, scene.camera, scene.baseline, right_camera=scene.right_camera)
        return stereo_scores(scene, scene.disparity_from_depth(result.depth))

    coarse, fine, unfloored = scores(64), scores(512), scores(512, floors=False)
    assert fine["density"] > coarse["density"] - 0.03 and fine["bad3"] < coarse["bad3"] + 0.03, (coarse, fine)
    assert fine["abs_rel"] < 1.1 * coarse["abs_rel"], (coarse, fine)
    assert unfloored["density"] < 0.5 and unfloored["bad3"] > 0.5, unfloored  # what the floors are there for


@pytest.fixture(scope="module")
def aloe():
    folder = find_opencv_samples()
    if folder is None:  # the data, not our code: `make test` fetches it where apt is
        pytest.skip("Middlebury 2006 Aloe is not here: `bash tools/fetch_real_scenes.sh` (Debian's opencv-doc)")
    return read_opencv_aloe(folder)


def test_on_a_second_real_scene_aloe_the_stereo_engines_keep_their_lead_over_sgbm(aloe):
    """Middlebury 2006 Aloe (OpenCV's sample data, 1282x1110, JPEG, integer ground truth), a scene none of our
    choices were tuned on, at the pipeline's defaults (96 planes). Measured: SGBM bad-3 0.361 (it leaves 34% holes,
    the left 272 columns among them), the classical sweep 0.182, stereo_default 0.076 (0.21x), stereo_cpu 0.121
    (0.33x); disparity AbsRel 0.0530 / 0.0329 / 0.0308 (0.58x) / 0.0464 (at 64 planes: bad-3 0.200 / 0.087 / 0.121,
    AbsRel 0.0392 / 0.0366 / 0.0417). A squashed input or a lost prior fails here."""
    from depth_perception.engines import default_engine_path

    default, cpu = default_engine_path("stereo"), default_engine_path("stereo", "cpu")
    report = evaluate_stereo_scene(aloe, ["classical", str(default), str(cpu)], device="cpu")
    rows = report["methods"]
    sgbm, classical = rows["sgbm"], rows["classical"]
    learned, small = rows[f"learned:{default.name}"], rows[f"learned:{cpu.name}"]
    assert classical["bad3"] < 0.7 * sgbm["bad3"], rows
    assert learned["bad3"] < 0.4 * sgbm["bad3"] and learned["bad3"] < 0.6 * classical["bad3"], rows
    assert small["bad3"] < 0.5 * sgbm["bad3"] and small["abs_rel"] < sgbm["abs_rel"], rows
    assert learned["abs_rel"] < 0.8 * sgbm["abs_rel"] and learned["abs_rel"] <= classical["abs_rel"], rows
    assert np.isnan(learned["rmse"]) and not report["calibrated"]
    from depth_perception.eval.real_scenes import format_stereo

    assert "no calibration ships with this pair" in format_stereo(report)


@pytest.fixture(scope="module")
def rig():
    from depth_perception.data.opencv_rig import is_opencv_rig_folder, read_opencv_rig

    folder = find_opencv_samples(is_opencv_rig_folder)
    if folder is None:  # the data, not our code: `make test` fetches it where apt is
        pytest.skip("OpenCV's chessboard pairs are not here: `bash tools/fetch_real_scenes.sh` (Debian's opencv-doc)")
    return read_opencv_rig(folder)


def test_a_real_rig_calibrated_by_opencv_gives_the_boards_metric_depth_through_our_calibration_reader(rig):
    """OpenCV's 13 chessboard pairs, calibrated and rectified by OpenCV as its stereo sample does, the rectified
    projections written as FileStorage YAML and read back by `data.calib_file`: the classical sweep's depth on
    the board (its pose from the corners) is right to under 1.5% (measured AbsRel 0.0073 over the 13 pairs),
    so the baseline's units, the principal points and the rectification all hold on a real rig. The refinement
    fills the board's textureless squares (measured bad-3 0.078 against SGBM's 0.535; the export that clamped
    depth at 0.3 m scored 0.362). A wrong baseline or focal length moves the depth by its error and fails here."""
    from depth_perception.engines import default_engine_path
    from depth_perception.eval.real_scenes import evaluate_stereo_scenes

    first = rig[0]
    assert len(rig) == 13 and first.camera.shape == (480, 640) and first.doffs == 0
    assert first.baseline == pytest.approx(0.0835, abs=0.002) and first.camera.fx == pytest.approx(519, abs=5)
    depth = first.depth[np.isfinite(first.depth)]
    assert 0.3 < depth.min() and depth.max() < 0.45  # pair 01: the board 0.35-0.42 m away
    engine = default_engine_path("stereo")
    report = evaluate_stereo_scenes(rig, ["classical", str(engine)], device="cpu")
    rows = report["methods"]
    sgbm, classical, learned = rows["sgbm"], rows["classical"], rows[f"learned:{engine.name}"]
    assert report["scenes"] == 13 and len(report["per_scene"]) == 13
    with pytest.raises(ValueError, match="it scores stereo only"):  # completion and mono need truth off the board
        load_scene("chessboard", metric=True)
    assert classical["abs_rel"] < 0.015 and classical["epe"] < 1.5, rows
    assert learned["abs_rel"] < 0.015 and learned["bad3"] < 0.3 * sgbm["bad3"] and learned["density"] == 1.0, rows


def test_a_folder_without_the_rigs_pairs_or_with_a_board_it_cannot_find_says_which(tmp_path, scene):
    from depth_perception.data.opencv_rig import RIG_FILES, read_opencv_rig

    with pytest.raises(FileNotFoundError, match="missing \\['left01.jpg', 'right01.jpg'"):
        read_opencv_rig(tmp_path)
    grey = cv2.cvtColor(scene.left, cv2.COLOR_RGB2GRAY)[:480, :640]
    for name in RIG_FILES:  # a motorcycle where the chessboard should be
        cv2.imwrite(str(tmp_path / name), grey)
    with pytest.raises(ValueError, match="left01.jpg: no 9x6 chessboard found"):
        read_opencv_rig(tmp_path)


def test_the_real_scene_summary_puts_each_method_against_sgbm_and_draws_it(tmp_path):
    from depth_perception.eval.real_scenes import format_stereo_summary, stereo_summary, summary_plot

    reports = {"a": {"methods": {"sgbm": {"bad3": 0.2, "abs_rel": 0.04}, "classical": {"bad3": 0.1, "abs_rel": 0.05},
                                 "learned:x": {"bad3": 0.05, "abs_rel": 0.02}}},
               "b": {"methods": {"sgbm": {"bad3": 0.5, "abs_rel": 0.1}, "classical": {"bad3": 0.6, "abs_rel": 0.01}}}}
    summary = stereo_summary(reports)
    assert summary["a"]["learned:x"] == {"bad3_vs_sgbm": 0.25, "abs_rel_vs_sgbm": 0.5}
    assert summary["b"]["classical"]["bad3_vs_sgbm"] == pytest.approx(1.2) and "learned:x" not in summary["b"]
    text = format_stereo_summary(summary)
    assert "ratio to SGBM" in text and text.splitlines()[-1].split()[-2:] == ["-", "-"]  # x did not run on b
    summary_plot(tmp_path / "s.png", summary)
    img = cv2.imread(str(tmp_path / "s.png"))
    assert img is not None and img.shape[1] > img.shape[0] and img.std() > 10
