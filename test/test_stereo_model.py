"""DPSNet + NAS: the deploy protocol, the consistency loss on planes, a short training run, ONNX export."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.geometry import PinholeCamera
from depth_perception.geometry.plane_sweep import rectified_pose
from depth_perception.models.registry import build_model
from depth_perception.models.stereo import DPSNet
from depth_perception.training.stereo_losses import (
    depth_normal_consistency_loss,
    inverse_depth_loss,
    normal_loss,
)

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import random_texture, render_plane

TINY = dict(height=32, width=64, planes=8, min_depth=2.0, max_depth=40.0, feat_ch=8, cost_ch=4, context_ch=8,
            normal_ch=8, refine_ch=4)


def test_registered_builder_follows_the_deploy_protocol():
    model = build_model("stereo_dpsnet", **TINY).eval()
    spec = model.io_spec()
    assert model.kind == "stereo"
    assert [i["name"] for i in spec["inputs"]] == ["reference", "sources", "intrinsics", "poses"]
    assert [o["name"] for o in spec["outputs"]] == ["depth", "confidence", "normal"]
    inputs = model.example_inputs()
    assert [list(t.shape) for t in inputs] == [i["shape"] for i in spec["inputs"]]
    with torch.no_grad():
        outputs = model(*inputs)
    assert [list(t.shape) for t in outputs] == [o["shape"] for o in spec["outputs"]]
    depth, conf, normal = outputs
    assert torch.all((depth >= 2.0 - 1e-4) & (depth <= 40.0 + 1e-3))
    assert torch.all((conf >= 0) & (conf <= 1 + 1e-6))
    torch.testing.assert_close(normal.norm(dim=1), torch.ones(1, 32, 64), atol=1e-4, rtol=0)
    assert spec["depth_range"] == [2.0, 40.0] and spec["metric"] is True


@pytest.mark.parametrize("kwargs, field", [(dict(height=30), "height"), (dict(planes=12), "planes"),
                                           (dict(min_depth=50.0), "min_depth"), (dict(views=0), "views")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DPSNet(**{**TINY, **kwargs})


def _plane_inverse_depth(K, n, c, h, w):
    v, u = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    rays = np.stack([u, v, np.ones_like(u)], 0).reshape(3, -1).astype(np.float64)
    rays = np.linalg.inv(K) @ rays
    return (n @ rays / c).reshape(1, 1, h, w)


def test_consistency_loss_is_zero_for_a_plane_with_its_true_normal():
    cam = PinholeCamera(48, 32, 40.0, 42.0, 23.5, 15.5)
    n = np.array([0.3, -0.4, -1.0])
    n /= np.linalg.norm(n)  # towards the camera: n . X = c < 0 for points in front
    c = -5.0
    inv = torch.tensor(_plane_inverse_depth(cam.K, n, c, 32, 48))
    assert torch.all(inv > 0)
    K = torch.tensor(cam.K)[None]
    normal = torch.tensor(n).view(1, 3, 1, 1).expand(1, 3, 32, 48)
    assert float(depth_normal_consistency_loss(inv, normal, K)) < 1e-10
    wrong = torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 32, 48)
    assert float(depth_normal_consistency_loss(inv, wrong, K)) > 1e-3


def test_supervision_losses_ignore_pixels_without_ground_truth():
    inv = torch.full((1, 1, 4, 4), 0.1)
    gt = torch.zeros(1, 1, 4, 4)
    gt[0, 0, 0, 0] = 10.0  # exact
    gt[0, 0, 1, 1] = float("nan")
    assert float(inverse_depth_loss(inv, gt, 0.01, 80.0)) == 0.0
    gt[0, 0, 2, 2] = 5.0  # off by 10 planes
    assert float(inverse_depth_loss(inv, gt, 0.01, 80.0)) == pytest.approx((10 - 0.5) / 2)
    pred = torch.zeros(1, 3, 2, 2)
    pred[:, 2] = -1
    gtn = torch.zeros(1, 3, 2, 2)
    gtn[0, :, 0, 0] = torch.tensor([0.0, 0.0, -1.0])
    assert float(normal_loss(pred, gtn)) == pytest.approx(0.0, abs=1e-6)


class PlanePairs(torch.utils.data.Dataset):
    """Rendered stereo pairs of random textured planes with depth and normal ground truth."""

    def __init__(self, n=6, h=32, w=64):
        cam = PinholeCamera(w, h, 0.6 * w, 0.6 * w, w / 2 - 0.5, h / 2 - 0.5)
        rng = np.random.default_rng(0)
        tex = random_texture(1, 256)
        self.items = []
        for _ in range(n):
            n_ = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 1.0])
            n_ /= np.linalg.norm(n_)
            off = rng.uniform(4.0, 12.0)
            T = rectified_pose(0.5)
            left, depth = render_plane(cam, np.eye(4), n_, off, tex, 4.0)
            right, _ = render_plane(cam, T, n_, off, tex, 4.0)
            to_t = lambda im: torch.from_numpy(im.transpose(2, 0, 1).copy()).float() / 255  # noqa: E731
            self.items.append({
                "reference": to_t(left), "sources": to_t(right)[None],
                "intrinsics": torch.tensor(cam.K, dtype=torch.float32),
                "poses": torch.tensor(T, dtype=torch.float32)[None],
                "depth": torch.from_numpy(depth)[None],
                "normal": torch.tensor(-n_, dtype=torch.float32).view(3, 1, 1).expand(3, h, w).clone(),
            })

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_a_short_training_run_lowers_the_loss_and_reloads_into_the_deploy_module(tmp_path):
    from depth_perception.training.checkpoint import load_weights
    from depth_perception.training.stereo_train import make_loss
    from depth_perception.training.trainer import TrainConfig, Trainer

    torch.manual_seed(0)
    model = DPSNet(**TINY)
    cfg = TrainConfig(out_dir=str(tmp_path), steps=40, batch_size=3, lr=3e-3, log_every=5, ckpt_every=40,
                      device="cpu")
    arch = {"name": "stereo_dpsnet", "config": model.config}
    hist = Trainer(model, make_loss(model, 1), PlanePairs(), cfg, arch).fit()
    first, last = hist[0], hist[-1]
    assert last["loss"] < 0.7 * first["loss"]
    assert last["depth"] < first["depth"]
    deploy = build_model("stereo_dpsnet", **model.config)
    load_weights(tmp_path, deploy)
    # Stage 2 trains only the consistency module, starting from stage 1.
    frozen = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("refine.")}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in model.refine.parameters():
        p.requires_grad_(True)
    cfg2 = TrainConfig(out_dir=str(tmp_path / "s2"), steps=3, batch_size=3, lr=1e-3, log_every=1, device="cpu")
    hist2 = Trainer(model, make_loss(model, 2), PlanePairs(), cfg2, {"name": "stereo_dpsnet", "config": model.config},
                    parameters=[{"params": list(model.refine.parameters())}]).fit()
    assert "consistency" in hist2[-1]
    for k, v in model.state_dict().items():
        if k in frozen:
            torch.testing.assert_close(v, frozen[k])


def test_exports_to_onnx_within_the_tensorrt_op_list_and_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = DPSNet(**TINY).eval()
    inputs = model.example_inputs()
    path = tmp_path / "stereo.onnx"
    torch.onnx.export(model, inputs, str(path), input_names=["reference", "sources", "intrinsics", "poses"],
                      output_names=["depth", "confidence", "normal"], opset_version=18, dynamo=True)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    ops_file = Path(__file__).resolve().parents[1] / "depth_perception" / "engines" / "tensorrt_onnx_ops.txt"
    allowed = {line.split()[0] for line in ops_file.read_text().splitlines() if line.strip() and line[0] != "#"}
    assert ops <= allowed, f"ops outside TensorRT 8.5: {sorted(ops - allowed)}"
    assert "GridSample" in ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = ["reference", "sources", "intrinsics", "poses"]
    got = sess.run(None, {k: v.numpy() for k, v in zip(names, inputs, strict=True)})
    with torch.no_grad():
        want = model(*inputs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)
