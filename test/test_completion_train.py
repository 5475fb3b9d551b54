"""`train completion` and `eval completion` end to end on drives written in the KITTI depth-completion layout."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from helpers.kitti_drive import DATE, PERIOD_NS, T0_NS, tiny_calib

pytestmark = pytest.mark.slow  # not in `make test-fast`


def completion_scene(h, w, seed):
    """A ground plane (nearer towards the bottom) with two boxes in front; the image shows the same regions."""
    rng = np.random.default_rng(seed)
    v = np.arange(h, dtype=np.float32)[:, None].repeat(w, 1)
    depth = 40.0 / (1.0 + 3.0 * v / h)  # 40 m at the top row to 10 m at the bottom
    image = np.zeros((h, w, 3), np.float32)
    image[...] = np.array([90, 120, 80]) + 60 * (v / h)[..., None]
    for _ in range(2):
        bw, bh = int(rng.integers(w // 6, w // 3)), int(rng.integers(h // 4, h // 2))
        x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(h // 4, h - bh))
        z = float(rng.uniform(4.0, 9.0))
        depth[y0:y0 + bh, x0:x0 + bw] = z
        image[y0:y0 + bh, x0:x0 + bw] = rng.uniform(0, 255, 3)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    sparse = np.where(rng.random((h, w)) < 0.06, depth, 0.0).astype(np.float32)
    return image, depth.astype(np.float32), sparse


def write_completion_drive(root, frames=4, h=48, w=96, seed=0, drive=1):
    from depth_perception.data.kitti_writer import KittiDriveWriter

    calib = tiny_calib(w, h)
    with KittiDriveWriter(root, DATE, drive, calib) as writer:
        for k in range(frames):
            image, depth, sparse = completion_scene(h, w, seed * 100 + k)
            writer.add_frame(T0_NS + PERIOD_NS * k, {2: image, 3: image[:, ::-1].copy()},
                             groundtruth={2: depth, 3: depth[:, ::-1].copy()},
                             velodyne_raw={2: sparse, 3: sparse[:, ::-1].copy()})
    return writer.path


@pytest.fixture(scope="module")
def drives(tmp_path_factory):
    train, held_out = tmp_path_factory.mktemp("train"), tmp_path_factory.mktemp("eval")
    write_completion_drive(train, frames=4, seed=0)
    write_completion_drive(held_out, frames=2, seed=1000)
    return train, held_out


def test_dataset_crops_flips_and_keeps_inputs_aligned(drives):
    from depth_perception.training.completion_data import CompletionDriveDataset

    ds = CompletionDriveDataset([drives[0]], crop_height=32, crop_width=64, top_crop=8, max_depth=30.0)
    assert len(ds) == 8  # 4 frames x cameras 02 and 03
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 64) and sample["sparse_depth"].shape == (1, 32, 64)
    sp, gt = sample["sparse_depth"], sample["depth"]
    both = (sp > 0) & (gt > 0)
    assert both.sum() > 20
    torch.testing.assert_close(sp[both], gt[both], atol=1 / 128, rtol=0)  # input and target stay registered
    assert float(gt.max()) <= 30.0  # beyond max_depth is ignored
    with pytest.raises(ValueError, match="smaller than the crop"):
        CompletionDriveDataset([drives[0]], crop_height=64, crop_width=64, top_crop=0)[0]


def test_a_short_training_run_lowers_the_loss(drives):
    from depth_perception.models.registry import build_model
    from depth_perception.training.completion_data import CompletionDriveDataset
    from depth_perception.training.completion_train import make_loss
    from depth_perception.training.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=3, max_depth=40.0)
    ds = CompletionDriveDataset([drives[0]], crop_height=32, crop_width=64, top_crop=8, max_depth=40.0)
    out = Path(drives[0]).parent / "short_run"
    cfg = TrainConfig(out_dir=str(out), steps=30, batch_size=4, lr=3e-3, log_every=5, ckpt_every=30, device="cpu",
                      resume=False)
    hist = Trainer(model, make_loss(), ds, cfg, {"name": "nlspn_light", "config": model.config}).fit()
    first, last = hist[0], hist[-1]
    assert last["loss"] < 0.5 * first["loss"]
    assert last["l1"] < first["l1"]
    gamma = float(model.propagation.gamma.detach())
    assert gamma != pytest.approx(4.0)  # the affinity scale is learned


def test_train_eval_and_resume_through_the_cli(tmp_path, drives, capsys):
    train, held_out = drives
    out = tmp_path / "run"
    common = ["--data", str(train), "--arch", "nlspn_light", "--width-base", "8", "--iterations", "2",
              "--height", "32", "--width", "64", "--top-crop", "8", "--batch-size", "2", "--workers", "0",
              "--device", "cpu", "--log-every", "1", "--export-height", "48", "--export-width", "96",
              "--max-depth", "40"]
    assert main(["train", "completion", "--out", str(out), "--steps", "2", *common]) == 0
    assert main(["train", "completion", "--out", str(out), "--steps", "3", *common]) == 0  # resumes at step 2
    rows = [json.loads(line) for line in (out / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and {"l1", "l2", "l1_init"} <= set(rows[0])
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["model"]["name"] == "nlspn_light" and meta["model"]["config"]["height"] == 48
    # The checkpoint folder runs as an engine; IP-Basic is always scored beside it, on the same frames.
    report_path = tmp_path / "eval.json"
    assert main(["eval", "completion", "--engine", str(out), "--data", str(held_out), "--device", "cpu",
                 "--max-depth", "40", "--json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert set(report["methods"]) == {"classical", "nlspn:run"} and report["frames"] == 2
    for row in report["methods"].values():
        assert {"rmse_mm", "mae_mm", "irmse", "imae"} <= set(row) and row["rmse_mm"] > 0
    assert report["methods"]["classical"]["rmse_mm"] < 3000  # IP-Basic is sane on this scene
    text = capsys.readouterr().out
    assert "classical" in text and "RMSE mm" in text


def test_epochs_convert_to_steps_and_empty_data_is_a_one_line_error(tmp_path, drives, capsys):
    out = tmp_path / "ep"
    assert main(["train", "completion", "--data", str(drives[0]), "--out", str(out), "--epochs", "0.5",
                 "--arch", "nlspn_light", "--width-base", "8", "--iterations", "1", "--height", "32",
                 "--width", "64", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--top-crop", "0"]) == 0
    assert json.loads((out / "checkpoint.json").read_text())["step"] == 2  # 0.5 x 8 frames / batch 2
    assert main(["eval", "completion", "--engine", "classical", "--data", str(tmp_path / "ep")]) == 2
    assert "no KITTI-layout drives" in capsys.readouterr().err
    assert main(["train", "completion", "--data", str(drives[0]), "--out", str(tmp_path / "nc"),
                 "--no-correction"]) == 2  # nothing to propagate from without an in-fill
    assert "--no-correction needs --prior" in capsys.readouterr().err


def test_export_writes_an_engine_that_the_pipeline_runs(tmp_path, drives):
    train, held_out = drives
    out, engine = tmp_path / "run", tmp_path / "completion.onnx"
    assert main(["train", "completion", "--data", str(train), "--out", str(out), "--steps", "1", "--arch",
                 "nlspn_light", "--width-base", "8", "--iterations", "2", "--height", "32", "--width", "64",
                 "--top-crop", "8", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--export-height",
                 "48", "--export-width", "96", "--max-depth", "40", "--export", str(engine),
                 "--eval-data", str(held_out)]) == 0
    sidecar = json.loads(engine.with_suffix(".json").read_text())
    assert sidecar["kind"] == "completion" and sidecar["architecture"]["name"] == "nlspn_light"
    assert "classical" in sidecar["metrics"] and sidecar["training"]["steps"] == 1


def test_real_kitti_layout_pairs_raw_drives_with_a_separate_depth_folder(tmp_path):
    import shutil

    from depth_perception.training.completion_data import CompletionDriveDataset

    drive = write_completion_drive(tmp_path / "raw", frames=2, seed=3)
    depth_root = tmp_path / "data_depth"
    (depth_root / "val" / drive.name).mkdir(parents=True)
    shutil.move(str(drive / "proj_depth"), str(depth_root / "val" / drive.name / "proj_depth"))
    assert len(CompletionDriveDataset([tmp_path / "raw"], 32, 64)) == 0  # the raw drive alone has no targets
    ds = CompletionDriveDataset([tmp_path / "raw"], 32, 64, depth_root=depth_root)
    assert len(ds) == 4 and float(ds[0]["depth"].max()) > 0
    with pytest.raises(ValueError, match="proj_depth"):
        CompletionDriveDataset([tmp_path / "raw"], 32, 64, depth_root=tmp_path / "raw")


def test_init_weight_adds_the_initial_depths_loss(drives):
    from depth_perception.models.registry import build_model
    from depth_perception.training.completion_data import CompletionDriveDataset
    from depth_perception.training.completion_losses import l1_l2_loss
    from depth_perception.training.completion_train import make_loss

    model = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=2, max_depth=40.0).eval()
    ds = CompletionDriveDataset([drives[0]], 32, 64, top_crop=8, max_depth=40.0, augment=False)
    batch = {k: torch.stack([ds[0][k], ds[1][k]]) for k in ("image", "sparse_depth", "depth")}
    with torch.no_grad():
        paper, s0 = make_loss(0.0)(model, batch)
        both, s1 = make_loss(0.5)(model, batch)
        init_loss, _, _ = l1_l2_loss(model.forward_train(batch["image"], batch["sparse_depth"])["init_depth"],
                                     batch["depth"])
    assert float(both) == pytest.approx(float(paper) + 0.5 * float(init_loss), rel=1e-5)
    assert float(init_loss) > 0 and s0["l1_init"] == pytest.approx(s1["l1_init"])
    with pytest.raises(ValueError, match="init_weight"):
        make_loss(-1.0)


@pytest.mark.parametrize(("correction", "guidance"), [(True, "deep"), (False, "deep"), (False, "local")],
                         ids=["correction", "propagation_only", "local_propagation"])
def test_the_prior_variant_learns_to_beat_its_in_fill(drives, correction, guidance):
    from depth_perception.models.registry import build_model
    from depth_perception.training.completion_data import CompletionDriveDataset
    from depth_perception.training.completion_train import make_loss
    from depth_perception.training.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    model = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=3, max_depth=40.0,
                        prior="ipbasic", correction=correction, guidance=guidance)
    kw = dict(crop_height=32, crop_width=64, top_crop=8, max_depth=40.0, prior="ipbasic")
    patterned = CompletionDriveDataset([drives[0]], sensor_patterns=1.0, **kw)
    lidar = CompletionDriveDataset([drives[0]], augment=False, **kw)
    sample = patterned[0]
    assert sample["prior_depth"].shape == sample["sparse_depth"].shape and (sample["prior_depth"] > 0).all()
    gt, sparse = sample["depth"], sample["sparse_depth"]
    assert torch.all(sparse[sparse > 0] == gt[sparse > 0])  # a pattern drawn from the ground truth ...
    assert not torch.equal(sparse > 0, lidar[0]["sparse_depth"] > 0)  # ... not the drive's LiDAR
    out = Path(drives[0]).parent / "prior_run"
    cfg = TrainConfig(out_dir=str(out), steps=40, batch_size=4, lr=1e-3, log_every=5, ckpt_every=40, device="cpu",
                      resume=False)
    hist = Trainer(model, make_loss(), lidar, cfg, {"name": "nlspn_light", "config": model.config}).fit()
    gain = [h["l1"] / h["l1_prior"] for h in hist]  # on the same batches
    assert gain[0] > 0.9  # it starts as the in-fill (measurements kept) ...
    assert max(gain[-2:]) < 0.85  # ... and learns to improve on it


def test_a_guided_prior_sample_holds_the_colour_guided_in_fill_of_its_own_crop(drives):
    from depth_perception.geometry.infill import guided_prior
    from depth_perception.training.completion_data import CompletionDriveDataset

    data = CompletionDriveDataset([drives[0]], crop_height=32, crop_width=64, top_crop=8, max_depth=40.0,
                                  augment=False, prior="guided")
    sample = data[0]
    image = sample["image"].numpy().transpose(1, 2, 0)
    expected = guided_prior(image, sample["sparse_depth"][0].numpy())
    np.testing.assert_allclose(sample["prior_depth"][0].numpy(), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="prior must be one of"):
        CompletionDriveDataset([drives[0]], crop_height=32, crop_width=64, prior="nearest")


def test_a_warm_start_copies_what_matches_and_names_what_it_left(tmp_path):
    from depth_perception.models.registry import build_model
    from depth_perception.training.checkpoint import save_checkpoint, warm_start

    old = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=2)
    save_checkpoint(tmp_path / "old", old, None, 0, {"model": {"name": "nlspn_light", "config": old.config}})
    new = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=2, prior="ipbasic")
    fresh = warm_start(tmp_path / "old", new)
    assert fresh == ["stem_dep.0.weight"]  # the depth stem takes two channels now; the rest is copied
    torch.testing.assert_close(new.encoder.state_dict(), old.encoder.state_dict())
    with torch.no_grad():
        old.propagation.conv_offset_aff.weight.normal_()
    save_checkpoint(tmp_path / "old", old, None, 0, {"model": {"name": "nlspn_light", "config": old.config}})
    again = build_model("nlspn_light", height=32, width=64, width_base=8, iterations=2, prior="ipbasic",
                        correction=False)
    fresh = warm_start(tmp_path / "old", again, skip=["propagation.conv_offset_aff"])
    assert fresh == ["propagation.conv_offset_aff.bias", "propagation.conv_offset_aff.weight", "stem_dep.0.weight"]
    assert not again.propagation.conv_offset_aff.weight.any()  # skipped: the propagation starts from none
    torch.testing.assert_close(again.encoder.state_dict(), old.encoder.state_dict())
    other = build_model("nlspn_light", height=32, width=64, width_base=16, iterations=2)
    save_checkpoint(tmp_path / "wide", other, None, 0, {"model": {"name": "nlspn_light", "config": other.config}})
    with pytest.raises(ValueError, match="share no tensor"):
        warm_start(tmp_path / "wide", torch.nn.Linear(2, 2))
