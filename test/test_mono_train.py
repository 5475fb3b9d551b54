"""Mono training: samples (frames, stereo transform, flips, splits), short runs that lower the loss, CLI train/eval."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.cli import main
from depth_perception.data.kitti import write_split
from depth_perception.training.mono_data import MonoDataset
from depth_perception.training.mono_train import build_model, make_loss
from depth_perception.training.trainer import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).parent))
from helpers.mono_scene import write_corridor_drive

pytestmark = pytest.mark.slow  # not in `make test-fast`

H, W = 64, 128


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    return write_corridor_drive(tmp_path_factory.mktemp("mono"), frames=5, width=W, height=H)


def test_samples_hold_neighbours_the_stereo_partner_and_scaled_intrinsics(drive):
    ds = MonoDataset([drive], 32, 64, stereo=True, augment=False)
    assert len(ds) == 3 * 2  # frames 1..3 have both neighbours; both cameras are targets
    s = ds[0]
    assert {"color_0", "color_-1", "color_1", "color_s", "aug_0", "K", "T_stereo"} <= set(s)
    assert s["color_0"].shape == (3, 32, 64)
    assert s["K"][0, 0] == pytest.approx(0.58 * W * 64 / W)
    # camera 02 is the target: the right camera 03 sees its points shifted by -baseline in x
    T = s["T_stereo"].numpy()
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-6)
    np.testing.assert_allclose(T[:3, 3], [-0.54, 0.0, 0.0], atol=1e-5)
    T_r = ds[1]["T_stereo"].numpy()  # camera 03 as target
    np.testing.assert_allclose(T_r[:3, 3], [0.54, 0.0, 0.0], atol=1e-5)


def test_flips_mirror_images_intrinsics_and_the_stereo_baseline(drive):
    plain = MonoDataset([drive], 32, 64, stereo=True, augment=False)[0]
    aug = MonoDataset([drive], 32, 64, stereo=True, augment=True)
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        s = aug[0]
        flipped = torch.allclose(s["color_0"], plain["color_0"].flip(-1))
        if flipped:
            assert float(s["K"][0, 2]) == pytest.approx(64 - 1 - float(plain["K"][0, 2]))
            assert float(s["T_stereo"][0, 3]) == pytest.approx(0.54, abs=1e-5)
            assert torch.allclose(s["color_s"], plain["color_s"].flip(-1))
        else:
            assert torch.equal(s["color_0"], plain["color_0"]) and torch.equal(s["K"], plain["K"])
        seen.add(flipped)
        # colour jitter reaches only the networks' inputs
        assert torch.allclose(s["color_1"], plain["color_1"].flip(-1) if flipped else plain["color_1"])
    assert seen == {True, False}


def test_stereo_partner_warps_onto_the_target_with_true_depth_flipped_or_not(drive):
    from depth_perception.data.kitti import KittiRawDrive
    from depth_perception.training.mono_losses import photometric_error, warp_source_to_target

    plain = MonoDataset([drive], H, W, stereo=True, augment=False)
    aug = MonoDataset([drive], H, W, stereo=True, augment=True)
    gt = torch.from_numpy(KittiRawDrive(drive).groundtruth_depth(2, 1))[None, None]
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        s = aug[0]
        flipped = torch.allclose(s["color_0"], plain[0]["color_0"].flip(-1))
        depth = gt.flip(-1) if flipped else gt
        warped, inside = warp_source_to_target(s["color_s"][None], depth, s["K"][None], s["T_stereo"][None])
        err = float((photometric_error(warped, s["color_0"][None]) * inside).sum() / inside.sum())
        assert err < 0.25 * float(photometric_error(s["color_s"][None], s["color_0"][None]).mean())
        seen.add(flipped)
    assert seen == {True, False}


def test_split_file_selects_frames_and_cameras(drive, tmp_path):
    root = drive.parent.parent
    folder = f"{drive.parent.name}/{drive.name}"
    split = tmp_path / "train_files.txt"
    write_split(split, [(folder, 2, "l"), (folder, 3, "r"), (folder, 4, "l")])  # frame 4 has no t+1
    from depth_perception.data.kitti import read_split

    ds = MonoDataset([root], 32, 64, augment=False, split=read_split(split))
    assert [(i, cam) for _, i, cam in ds.samples] == [(2, 2), (3, 3)]
    write_split(split, [("2011_09_26/2011_09_26_drive_0099_sync", 1, "l")])
    with pytest.raises(FileNotFoundError, match="drive_0099"):
        MonoDataset([root], 32, 64, split=read_split(split))


def test_supervised_samples_carry_sparse_lidar_depth(drive):
    s = MonoDataset([drive], 32, 64, supervised=True, augment=False)[0]
    gt = s["depth_gt"]
    assert gt.shape == (1, 32, 64)
    frac = float((gt > 0).float().mean())
    assert 0.02 < frac < 0.5 and float(gt.max()) < 61


def _fit(drive, tmp_path, mode, steps):
    torch.manual_seed(0)
    model = build_model("narrow", mode, H, W, 0.1, 100.0)
    ds = MonoDataset([drive], H, W, stereo=mode == "mono+stereo", supervised=mode == "supervised", augment=False)
    cfg = TrainConfig(out_dir=str(tmp_path / mode), steps=steps, batch_size=2, lr=1e-3, log_every=1, device="cpu")
    return Trainer(model, make_loss(mode), ds, cfg, {"name": "mono_resnet", "config": model.config}).fit()


def test_self_supervised_mono_stereo_training_lowers_the_photometric_loss(drive, tmp_path):
    hist = _fit(drive, tmp_path, "mono+stereo", 16)
    first = np.mean([h["loss"] for h in hist[:3]])
    last = np.mean([h["loss"] for h in hist[-3:]])
    assert last < 0.75 * first
    assert {"photometric", "smoothness", "automask"} <= set(hist[-1])


def test_supervised_training_lowers_the_scale_invariant_loss(drive, tmp_path):
    hist = _fit(drive, tmp_path, "supervised", 10)
    assert np.mean([h["loss"] for h in hist[-3:]]) < 0.6 * np.mean([h["loss"] for h in hist[:3]])


def test_eigen_architecture_needs_supervised_mode(drive, tmp_path, capsys):
    code = main(["train", "mono", "--data", str(drive), "--out", str(tmp_path / "e"), "--arch", "eigen",
                 "--mode", "mono", "--height", "32", "--width", "64", "--steps", "1", "--device", "cpu"])
    assert code == 2
    assert "supervised" in capsys.readouterr().err


def test_cli_trains_evaluates_and_scores_a_checkpoint(drive, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "mono", "--data", str(drive), "--out", str(out), "--mode", "mono", "--arch", "narrow",
                 "--height", "32", "--width", "64", "--steps", "2", "--batch-size", "2", "--workers", "0",
                 "--device", "cpu", "--eval-data", str(drive)])
    assert code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["scaling"] == "median" and report["metric"] is False and report["frames"] == 5
    for key in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"):
        assert np.isfinite(report[key])
    capsys.readouterr()
    js = tmp_path / "eval.json"
    assert main(["eval", "mono", "--engine", str(out), "--data", str(drive), "--scaling", "none",
                 "--json", str(js)]) == 0
    table = capsys.readouterr().out
    assert "abs_rel" in table and "scaling none" in table
    assert json.loads(js.read_text())["scaling"] == "none"


def test_cli_export_writes_an_engine_with_its_sidecar(drive, tmp_path):
    out, engine = tmp_path / "run", tmp_path / "mono_test.onnx"
    code = main(["train", "mono", "--data", str(drive), "--out", str(out), "--mode", "mono+stereo",
                 "--height", "32", "--width", "64", "--steps", "1", "--batch-size", "2", "--workers", "0",
                 "--device", "cpu", "--eval-data", str(drive), "--eval-max-frames", "2", "--export", str(engine)])
    assert code == 0
    sidecar = json.loads(engine.with_suffix(".json").read_text())
    assert sidecar["kind"] == "mono" and sidecar["metric"] is True
    assert sidecar["architecture"]["name"] == "mono_resnet"
    assert sidecar["architecture"]["config"]["pose_net"] is False
    assert sidecar["training"]["steps"] == 1 and sidecar["training"]["mode"] == "mono+stereo"
    assert sidecar["training"]["seeds"] == [1]  # drive 0001 of 2011_09_26 is seed 1 in data.synth naming
    assert set(sidecar["metrics"]) >= {"abs_rel", "a1"}


def test_static_frame_removal_leaves_out_samples_whose_camera_barely_moves(drive, tmp_path, capsys):
    # the corridor drive moves 0.5 m a frame
    assert len(MonoDataset([drive], 32, 64, min_motion=0.4)) == len(MonoDataset([drive], 32, 64)) == 6
    still = MonoDataset([drive], 32, 64, min_motion=0.6)
    assert len(still) == 0 and still.static_removed == 6
    assert main(["train", "mono", "--data", str(drive), "--out", str(tmp_path / "run"), "--mode", "mono",
                 "--height", "32", "--width", "64", "--steps", "1", "--workers", "0", "--device", "cpu",
                 "--min-motion", "0.6"]) == 2
    assert "6 left out as static by --min-motion" in capsys.readouterr().err


def _copy_without(drive: Path, tmp_path: Path, *sensors: str) -> Path:
    """The drive (with its date folder's calibration) copied with some proj_depth folders left out."""
    import shutil

    date = tmp_path / drive.parent.name
    shutil.copytree(drive.parent, date, ignore=shutil.ignore_patterns(*sensors))
    return date / drive.name


def test_supervised_falls_back_to_the_groundtruth_depth_where_a_drive_has_no_lidar(drive, tmp_path):
    dense = _copy_without(drive, tmp_path, "velodyne_raw", "velodyne_points")
    gt = MonoDataset([dense], 32, 64, supervised=True, augment=False)[0]["depth_gt"]
    lidar = MonoDataset([drive], 32, 64, supervised=True, augment=False)[0]["depth_gt"]
    assert float((gt > 0).float().mean()) > 0.9 > float((lidar > 0).float().mean())
    both = (gt > 0) & (lidar > 0)  # the same scene: where both have depth it agrees (resampling aside)
    assert float(((gt[both] - lidar[both]).abs() / lidar[both]).median()) < 0.02


def test_supervised_training_on_drives_without_any_depth_is_refused_by_name(drive, tmp_path, capsys):
    blind = _copy_without(drive, tmp_path, "velodyne_raw", "velodyne_points", "groundtruth")
    with pytest.raises(ValueError, match=f"{blind.name} has no LiDAR"):
        MonoDataset([blind], 32, 64, supervised=True)
    assert len(MonoDataset([blind], 32, 64, stereo=True)) == 6  # self-supervision needs no depth
    assert main(["train", "mono", "--data", str(blind), "--out", str(tmp_path / "run"), "--mode", "supervised",
                 "--height", "32", "--width", "64", "--steps", "1", "--workers", "0", "--device", "cpu"]) == 2
    assert "supervised training needs depth" in capsys.readouterr().err


def test_a_warm_start_from_an_engines_weights_takes_the_depth_net_and_leaves_the_pose_net(drive, tmp_path):
    from safetensors.torch import load_file, save_file

    from depth_perception.training.mono_train import MonoTrainOptions, build_trainer, deploy_module

    source = build_model("narrow", "mono+stereo", 32, 64, 0.1, 100.0)
    torch.nn.init.normal_(source.encoder.conv1.weight)  # unlike any fresh initialisation
    engine = tmp_path / "mono_test.safetensors"
    save_file({k: v.contiguous() for k, v in deploy_module(source).state_dict().items()}, str(engine))
    trainer = build_trainer(MonoTrainOptions(data=[str(drive)], out=str(tmp_path / "run"), mode="mono+stereo",
                                             height=32, width=64, init=str(engine), probe_every=0))
    state = trainer.model.state_dict()
    for name, value in load_file(str(engine)).items():
        assert torch.equal(state[name], value), name
    fresh = trainer.extra_meta["init_fresh"]
    assert fresh and all(k.startswith("pose.") for k in fresh)


def test_eval_reports_each_drive_and_the_spread_over_drives(drive, tmp_path, capsys):
    other = write_corridor_drive(tmp_path, frames=5, width=W, height=H, step=0.3, seed=3, drive=2)
    out = tmp_path / "run"
    assert main(["train", "mono", "--data", str(drive), "--out", str(out), "--mode", "supervised", "--height", "32",
                 "--width", "64", "--steps", "1", "--batch-size", "2", "--workers", "0", "--device", "cpu"]) == 0
    capsys.readouterr()
    js = tmp_path / "eval.json"
    assert main(["eval", "mono", "--engine", str(out), "--data", str(drive), str(other), "--max-frames", "2",
                 "--json", str(js)]) == 0
    per = json.loads(js.read_text())["per_drive"]
    assert set(per) == {drive.name, other.name} and all(d["frames"] == 2 for d in per.values())
    import shutil

    twin = tmp_path / "twin" / drive.parent.name
    shutil.copytree(drive.parent, twin)  # the same drive name under another root is a drive of its own
    assert main(["eval", "mono", "--engine", str(out), "--data", str(drive), str(twin / drive.name),
                 "--max-frames", "2", "--json", str(js)]) == 0
    per = json.loads(js.read_text())["per_drive"]
    assert len(per) == 2 and all(d["frames"] == 2 for d in per.values())
    report = json.loads(js.read_text())
    assert min(d["abs_rel"] for d in per.values()) <= report["abs_rel"] <= max(d["abs_rel"] for d in per.values())
    assert "per drive (2): AbsRel" in capsys.readouterr().out


def test_supervised_training_takes_single_frames_and_the_stills_of_objects_drives(drive, tmp_path, capsys):
    assert main(["synth", "--scene", "objects", "--seed", "4", "--frames", "2", "--out", str(tmp_path / "objects"),
                 "--width", "64", "--height", "32"]) == 0
    objects = next((tmp_path / "objects" / "objects_0004").glob("*/*_sync"))
    with pytest.raises(ValueError, match="not a video"):  # self-supervision needs a video
        MonoDataset([objects], 32, 64)
    stills = MonoDataset([objects], 32, 64, frame_ids=(0,), supervised=True, augment=False)
    assert len(stills) == 2 * 2  # every frame, both cameras
    assert len(MonoDataset([drive], 32, 64, frame_ids=(0,), supervised=True)) == 5 * 2  # the ends too
    lidar = stills[0]["depth_gt"]  # auto: an objects drive's scanner pattern
    dense = MonoDataset([objects], 32, 64, frame_ids=(0,), supervised=True, augment=False,
                        supervision="groundtruth")[0]["depth_gt"]
    assert float((dense > 0).float().mean()) > 0.9 > float((lidar > 0).float().mean()) > 0
    both = (dense > 0) & (lidar > 0)
    assert float(((dense[both] - lidar[both]).abs() / dense[both]).median()) < 0.05
    out = tmp_path / "run"
    assert main(["train", "mono", "--data", str(drive), str(tmp_path / "objects"), "--out", str(out), "--mode",
                 "supervised", "--supervision", "groundtruth", "--height", "32", "--width", "64", "--steps", "2",
                 "--batch-size", "2", "--workers", "0", "--device", "cpu"]) == 0
    from depth_perception.training.checkpoint import read_meta

    assert read_meta(out)["supervision"] == "groundtruth" and read_meta(out)["samples"] == 5 * 2 + 2 * 2
    capsys.readouterr()
    assert main(["train", "mono", "--data", str(tmp_path / "objects"), "--out", str(tmp_path / "run2"),
                 "--height", "32", "--width", "64", "--steps", "1", "--workers", "0", "--device", "cpu"]) == 2
    assert "--mode supervised" in capsys.readouterr().err
    assert main(["train", "mono", "--data", str(drive), "--out", str(tmp_path / "run3"), "--supervision", "lidar",
                 "--steps", "1", "--workers", "0", "--device", "cpu"]) == 2
    assert "--supervision lidar needs --mode supervised" in capsys.readouterr().err
