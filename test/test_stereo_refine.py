"""The learned refinement of the classical sweep: its prior, the engine contract, the pipeline's tiles, training."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.cli import main
from depth_perception.commands.train_stereo import classical_prior_fn
from depth_perception.engines.resize import EngineTiles, restore_map
from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.infill import stereo_prior
from depth_perception.geometry.plane_sweep import rectified_pose
from depth_perception.models.registry import build_model
from depth_perception.models.stereo_refine import StereoRefine, warp_right_to_left
from depth_perception.pipelines.stereo import StereoPipeline, StereoPipelineConfig
from depth_perception.pipelines.stereo_classical import ClassicalStereo, ClassicalSweepConfig
from depth_perception.training.checkpoint import save_checkpoint
from depth_perception.training.stereo_refine_data import StereoRefineDataset
from depth_perception.training.stereo_train import StereoTrainOptions, build_refine_trainer

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import PlaneDrive, random_texture, render_plane, write_plane_drive


def untrained_engine(folder, height=32, width=64, hole_fill="rows"):
    torch.manual_seed(0)
    model = build_model("stereo_refine", height=height, width=width, base=8, min_depth=0.5, max_depth=60.0,
                        hole_fill=hole_fill)
    save_checkpoint(folder, model, None, 0, {"model": {"name": "stereo_refine", "config": model.config}})
    return folder


def plane_pair(camera, baseline=0.5, depth=8.0):
    tex = random_texture(3)
    n = np.array([0.15, -0.1, 1.0])
    left, gt = render_plane(camera, np.eye(4), n, depth, tex, 10.0)
    right, _ = render_plane(camera, rectified_pose(baseline), n, depth, tex, 10.0)
    return left, right, gt


def test_the_prior_fills_holes_from_the_background_and_gives_them_no_confidence():
    depth = np.array([[2.0, np.nan, np.nan, 4.0, np.nan], [np.nan] * 5], np.float32)
    conf = np.full_like(depth, 0.8)
    filled, c = stereo_prior(depth, conf, fx_baseline=10.0, max_depth=50.0)
    np.testing.assert_allclose(filled[0], [2.0, 4.0, 4.0, 4.0, 4.0])  # the farther neighbour: the background
    np.testing.assert_allclose(filled[1], 50.0)  # a row with nothing: max_depth
    np.testing.assert_allclose(c[0], [0.8, 0.0, 0.0, 0.8, 0.0])


def test_the_guided_prior_fills_a_hole_from_its_own_side_of_a_colour_edge():
    depth = np.array([[2.0, 2.0, 2.0, np.nan, np.nan, 8.0, 8.0, 8.0]] * 3, np.float32)
    image = np.zeros((3, 8, 3), np.uint8)
    image[:, :4] = 200  # the near surface's colour runs to x = 3; the far one starts at x = 4
    conf = np.full_like(depth, 0.9)
    rows, _ = stereo_prior(depth, conf, fx_baseline=10.0, max_depth=50.0)
    guided, c = stereo_prior(depth, conf, fx_baseline=10.0, max_depth=50.0, image=image)
    np.testing.assert_allclose(rows[:, 3], 8.0)  # the row rule takes the background ...
    np.testing.assert_allclose(guided[:, 3], 2.0, rtol=1e-3)  # ... the guided fill stays on the near colour
    np.testing.assert_allclose(guided[:, 4], 8.0, rtol=1e-3)
    measured = np.isfinite(depth)
    np.testing.assert_array_equal(guided[measured], depth[measured])
    np.testing.assert_array_equal(c, np.where(measured, 0.9, 0.0).astype(np.float32))
    with pytest.raises(ValueError, match="hole_fill"):
        StereoRefine(height=32, width=64, base=8, hole_fill="nearest")
    assert "hole_fill" not in StereoRefine(height=32, width=64, base=8).config  # older sidecars stay as they were
    assert StereoRefine(height=32, width=64, base=8, hole_fill="guided").io_spec()["hole_fill"] == "guided"


def test_the_warp_reads_the_right_image_at_x_minus_d():
    right = torch.arange(16.0).view(1, 1, 1, 16).repeat(1, 1, 4, 1)
    warped, inside = warp_right_to_left(right, torch.full((1, 1, 4, 16), 3.0))
    np.testing.assert_allclose(warped[0, 0, 0, 3:].numpy(), np.arange(13.0))
    assert inside[0, 0, 0, :3].sum() == 0 and bool(inside[0, 0, 0, 3:].all())


def test_the_local_cost_volume_is_the_photometric_error_at_each_shifted_disparity():
    model = StereoRefine(height=32, width=64, base=8, lookup=2).eval()
    ref, src, K, T, depth, conf = model.example_inputs()
    disp = 3.0 + 5.0 * torch.rand(1, 1, 32, 64)
    grey_ref, grey_right = ref.mean(1, keepdim=True), src[:, 0].mean(1, keepdim=True)
    volume = model._lookup(grey_ref, grey_right, disp)
    assert volume.shape == (1, 5, 32, 64)
    for n, k in enumerate(range(-2, 3)):
        want = 4.0 * (grey_ref - warp_right_to_left(grey_right, disp + k)[0]).abs()
        np.testing.assert_allclose(volume[:, n].numpy(), want[:, 0].numpy(), atol=1e-4)
    with torch.no_grad():
        out, _ = model(ref, src, K, T, depth, conf)
    np.testing.assert_allclose(out.numpy(), depth.numpy(), rtol=1e-5)  # untrained: still the prior
    assert model.config["lookup"] == 2 and "lookup" not in StereoRefine(height=32, width=64).config


def test_a_holes_only_engine_changes_nothing_the_sweep_measured_or_the_right_view_cannot_see():
    torch.manual_seed(1)
    model = StereoRefine(height=32, width=64, base=8, correct="holes").eval()
    torch.nn.init.normal_(model.residual_head.weight, std=0.5)  # as if trained: a residual everywhere
    ref, src, K, T, depth, conf = model.example_inputs()
    conf[..., ::2] = 0.0  # every other column a hole
    with torch.no_grad():
        out, _ = model(ref, src, K, T, depth, conf)
        fxb = float(K[0, 0, 0] * 0.54)
        _, inside = warp_right_to_left(src[:, 0], fxb / depth)
    measured, seen_hole = conf > 0, (conf <= 0) & (inside > 0)
    np.testing.assert_allclose(out[measured].numpy(), depth[measured].numpy(), rtol=1e-5)
    np.testing.assert_allclose(out[~seen_hole].numpy(), depth[~seen_hole].numpy(), rtol=1e-5)
    assert float((out[seen_hole] - depth[seen_hole]).abs().max()) > 0.1  # the holes it sees are its to fill
    with pytest.raises(ValueError, match="correct"):
        StereoRefine(correct="some")


@pytest.mark.slow
def test_an_untrained_engine_returns_its_prior_in_torch_and_in_onnx_runtime(tmp_path):
    pytest.importorskip("onnxruntime")
    from depth_perception.engines import load_engine
    from depth_perception.engines.export import export_module

    model = StereoRefine(height=32, width=64, base=8).eval()
    inputs = model.example_inputs()
    depth, conf = model(*inputs)
    np.testing.assert_allclose(depth.detach().numpy(), inputs[4].numpy(), rtol=1e-5)
    assert conf.shape == (1, 1, 32, 64) and float(conf.detach().min()) >= 0 and float(conf.detach().max()) <= 1
    onnx = export_module(model, tmp_path / "refine.onnx", "stereo_refine", model.config)
    sidecar = json.loads(onnx.with_suffix(".json").read_text())
    assert sidecar["prior"] == "classical" and sidecar["kind"] == "stereo"
    assert [i["name"] for i in sidecar["inputs"]][-2:] == ["prior_depth", "prior_confidence"]
    engine = load_engine(onnx, backend="onnxruntime")
    names = [i["name"] for i in sidecar["inputs"]]
    out = engine.infer(**{n: t.numpy() for n, t in zip(names, inputs, strict=True)})
    np.testing.assert_allclose(out["depth"], inputs[4].numpy(), rtol=1e-4)


@pytest.mark.parametrize("hole_fill", ["rows", "guided"])
def test_the_pipeline_runs_it_on_tiles_at_the_cameras_aspect_and_an_untrained_one_gives_the_filled_sweep(
        tmp_path, hole_fill):
    camera = PinholeCamera(80, 72, 70.0, 70.0, 39.5, 35.5)  # 10:9, the engine is 2:1: tiles, not a squash
    left, right, gt = plane_pair(camera)
    engine = untrained_engine(tmp_path / "refine", hole_fill=hole_fill)
    cfg = dict(device="cpu", min_depth=2.0, max_depth=40.0, planes=48, edge_snap=False)  # the filled sweep as is
    pipe = StereoPipeline(StereoPipelineConfig(engine=str(engine), **cfg))
    assert pipe.prior == "classical" and pipe.classical is not None and pipe.hole_fill == hole_fill
    result = pipe.process(left, right, camera, 0.5)
    assert result.depth.shape == camera.shape and np.isfinite(result.depth).all()  # dense
    assert result.info["tiles"] > 1 and "sweep_ms" in result.timings_ms
    # by hand: the sweep at the tiles' scale, filled, restored
    tiles = EngineTiles.for_engine(camera, 32, 64)
    sc = tiles.scaled
    from depth_perception.geometry.resample import resize_image

    sweep = ClassicalStereo(ClassicalSweepConfig(min_depth=2.0, max_depth=40.0, planes=48))
    d, c, _ = sweep.compute(resize_image(left, sc.width, sc.height),
                            [(resize_image(right, sc.width, sc.height), rectified_pose(0.5))], sc)
    image = resize_image(left, sc.width, sc.height) if hole_fill == "guided" else None
    prior, _ = stereo_prior(d, c, sc.fx * 0.5, 40.0, image=image)
    assert (~np.isfinite(d)).any()  # the sweep left holes for the fill to fill
    np.testing.assert_allclose(result.depth, restore_map(prior, camera), rtol=1e-4)
    rel = np.abs(result.depth - gt) / gt
    assert np.median(rel) < 0.03  # a real plane, recovered through the whole path


@pytest.mark.slow
def test_a_sidecar_that_hides_the_prior_is_refused(tmp_path):
    pytest.importorskip("onnxruntime")
    from depth_perception.engines.export import export_module

    model = StereoRefine(height=32, width=64, base=8).eval()
    onnx = export_module(model, tmp_path / "refine.onnx", "stereo_refine", model.config)
    sidecar = json.loads(onnx.with_suffix(".json").read_text())
    sidecar.pop("prior")
    onnx.with_suffix(".json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match="prior_depth and sidecar prior"):
        StereoPipeline(StereoPipelineConfig(engine=str(onnx), device="cpu"))


@pytest.mark.slow
def test_training_lowers_the_loss_below_the_priors_and_sweeps_each_frame_once(tmp_path):
    drives = [PlaneDrive(frames=2, seed=s) for s in range(2)]
    calls = []
    sweep, key = classical_prior_fn(planes=32)

    def biased(*args):  # the sweep 15% too far everywhere: an error the photometric residual shows
        calls.append(1)
        depth, conf = sweep(*args)
        return depth * 1.15, conf

    opts = StereoTrainOptions(data=drives, out=str(tmp_path / "run"), model="refine", steps=30, batch_size=4,
                              correct="all", loss="l1", height=40, width=128, lr=3e-3, workers=0, log_every=1,
                              ckpt_every=1000)
    history = build_refine_trainer(opts, biased, key).fit()
    assert len(calls) == 4 and (tmp_path / "run" / "priors.npz").exists()
    first, last = history[:3], history[-3:]
    assert np.mean([h["loss"] for h in last]) < 0.7 * np.mean([h["loss"] for h in first])
    assert np.mean([h["l1"] for h in last]) < 0.7 * np.mean([h["l1_prior"] for h in last])  # it beats its input
    # the cache: same drives and key -> no sweep; another key -> swept again
    again = StereoRefineDataset(drives, 40, biased, cache=tmp_path / "run" / "priors.npz", prior_key=key)
    assert len(calls) == 4 and len(again) == 4
    StereoRefineDataset(drives, 40, biased, cache=tmp_path / "run" / "priors.npz", prior_key=key + " planes=9")
    assert len(calls) == 8
    sample = again[0]
    assert sample["reference"].shape == (3, 40, 128) and sample["sources"].shape == (1, 3, 40, 128)
    assert sample["prior_depth"].shape == (1, 40, 128) and float(sample["prior_depth"].min()) > 0


def test_train_stereo_refine_through_the_cli_and_its_errors(tmp_path, capsys):
    drive = write_plane_drive(tmp_path / "data", frames=2)
    out = tmp_path / "run"
    args = ["train", "stereo", "--model", "refine", "--data", str(drive), "--out", str(out), "--steps", "2",
            "--batch-size", "2", "--height", "40", "--width", "128", "--workers", "0"]
    assert main(args) == 0
    assert "stereo refine: step 2" in capsys.readouterr().out
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["model"]["name"] == "stereo_refine" and meta["prior"].startswith("classical")
    assert "prior_edge_snap" not in meta["model"]["config"]
    assert main([a if a != str(out) else str(tmp_path / "snapped") for a in args] + ["--prior-edge-snap"]) == 0
    snapped = json.loads((tmp_path / "snapped" / "checkpoint.json").read_text())
    assert snapped["model"]["config"]["prior_edge_snap"] is True
    assert main(args[:-2] + ["--stage", "2"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one stage" in err[0]


def test_the_prior_edge_snap_makes_the_training_priors_as_the_pipeline_makes_them_at_run_time(tmp_path):
    from depth_perception.geometry.infill import snap_depth_edges
    from depth_perception.training.stereo_data import LEFT, RIGHT, drive_baseline, drive_depth

    drives = [PlaneDrive(frames=1, seed=0)]
    sweep, key = classical_prior_fn(planes=32)
    calls = []

    def stepped(*args):  # the sweep with a depth step the image does not show
        calls.append(1)
        depth, conf = sweep(*args)
        depth = depth.copy()
        depth[:, depth.shape[1] // 2:] *= 0.5
        return depth, conf

    cache = tmp_path / "priors.npz"
    plain = StereoRefineDataset(drives, 40, stepped, cache=cache, prior_key=key, augment=False)
    snapped = StereoRefineDataset(drives, 40, stepped, cache=cache, prior_key=key, augment=False, edge_snap=True)
    assert len(calls) == 2  # the snap is part of the cache's key: swept again, not read back
    drive = snapped.drives[0]
    left, right, cam, b = drive.image(LEFT, 0), drive.image(RIGHT, 0), drive.calib.cam(LEFT), drive_baseline(drive)
    depth, conf = stepped(left, right, cam, b, *snapped.sweep_range(drive_depth(drive, 0, left.shape[1],
                                                                                left.shape[0])))
    by_hand, _ = stereo_prior(snap_depth_edges(left, depth, cam.fx * b), conf, cam.fx * b, snapped.max_depth)
    np.testing.assert_allclose(snapped.priors[0][0].astype(np.float32), by_hand, rtol=2e-3)
    assert np.abs(snapped.priors[0][0].astype(np.float32) - plain.priors[0][0].astype(np.float32)).max() > 0.1
    assert StereoRefine(height=32, width=64, base=8, prior_edge_snap=True).config["prior_edge_snap"] is True
    assert "prior_edge_snap" not in StereoRefine(height=32, width=64, base=8).config
