"""Mono networks: the ResNet encoder's pyramid, the deploy protocol, pose matrices, and ONNX export."""
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.geometry.se3 import axis_angle_to_matrix
from depth_perception.models.mono import (
    ARCHITECTURES,
    EigenNet,
    MonoDepthNet,
    PoseNet,
    depth_to_normalized_disp,
    disp_to_depth,
    pose_to_matrix,
)
from depth_perception.models.registry import build_model
from depth_perception.models.resnet import ResNetEncoder

TINY = dict(height=32, width=64, encoder_layers=18, encoder_width=8, decoder_width=4)


@pytest.mark.parametrize("layers, width", [(18, 64), (34, 16), (18, 32)])
def test_encoder_gives_five_maps_at_strides_2_to_32(layers, width):
    enc = ResNetEncoder(layers, width).eval()
    feats = enc(torch.rand(1, 3, 64, 96))
    assert [f.shape[1] for f in feats] == enc.num_ch_enc == [width, width, 2 * width, 4 * width, 8 * width]
    assert [(f.shape[2], f.shape[3]) for f in feats] == [(64 // s, 96 // s) for s in (2, 4, 8, 16, 32)]
    assert sum(len(s) for s in (enc.layer1, enc.layer2, enc.layer3, enc.layer4)) == (8 if layers == 18 else 16)


def test_encoder_takes_stacked_frames_and_refuses_bad_configs():
    assert ResNetEncoder(18, 16, in_channels=6)(torch.rand(2, 6, 32, 32))[-1].shape == (2, 128, 1, 1)
    with pytest.raises(ValueError, match="layers"):
        ResNetEncoder(50)
    with pytest.raises(ValueError, match="width"):
        ResNetEncoder(18, 30)


def test_disp_to_depth_maps_the_sigmoid_range_to_the_depth_range():
    disp = torch.tensor([0.0, 1.0, 0.5])
    scaled, depth = disp_to_depth(disp, 0.1, 100.0)
    torch.testing.assert_close(depth[:2], torch.tensor([100.0, 0.1]))
    torch.testing.assert_close(scaled, 1.0 / depth)
    torch.testing.assert_close(depth_to_normalized_disp(depth, 0.1, 100.0), disp)


@pytest.mark.parametrize("name, config", [("mono_resnet", TINY), ("mono_eigen", dict(height=32, width=64, channels=4,
                                                                                       hidden=16))])
def test_registered_builders_follow_the_deploy_protocol(name, config):
    model = build_model(name, **config).eval()
    spec = model.io_spec()
    assert model.kind == "mono"
    assert [i["name"] for i in spec["inputs"]] == ["image"]
    assert [o["name"] for o in spec["outputs"]] == ["depth", "disparity"]
    inputs = model.example_inputs()
    assert [list(t.shape) for t in inputs] == [i["shape"] for i in spec["inputs"]]
    with torch.no_grad():
        depth, disp = model(*inputs)
    assert [list(depth.shape), list(disp.shape)] == [o["shape"] for o in spec["outputs"]]
    assert spec["depth_range"] == [0.1, 100.0]
    assert torch.all((depth >= 0.1 - 1e-5) & (depth <= 100.0 + 1e-3))
    assert torch.all((disp >= 0) & (disp <= 1))
    torch.testing.assert_close(disp_to_depth(disp, 0.1, 100.0)[1], depth, rtol=1e-4, atol=1e-4)
    rebuilt = build_model(name, **model.config)
    assert rebuilt.config == model.config


def test_train_forward_gives_four_scales():
    model = MonoDepthNet(**TINY)
    disps = model.train_forward(torch.rand(2, 3, 32, 64))
    assert sorted(disps) == [0, 1, 2, 3]
    assert [tuple(disps[s].shape) for s in range(4)] == [(2, 1, 32 // 2**s, 64 // 2**s) for s in range(4)]


def test_architecture_presets_build():
    for arch, (name, _) in ARCHITECTURES.items():
        assert name in ("mono_resnet", "mono_eigen"), arch
    narrow = MonoDepthNet(height=64, width=64, **ARCHITECTURES["narrow"][1])
    full = MonoDepthNet(height=64, width=64, **ARCHITECTURES["resnet18"][1])
    n_params = sum(p.numel() for p in narrow.parameters())
    assert n_params < 0.4 * sum(p.numel() for p in full.parameters())


@pytest.mark.parametrize("kwargs, field", [(dict(height=48), "height"), (dict(min_depth=200.0), "min_depth"),
                                           (dict(decoder_width=1), "decoder_width")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        MonoDepthNet(**{**TINY, **kwargs})


def test_pose_to_matrix_uses_rodrigues_and_inverts():
    aa = torch.tensor([[0.1, -0.2, 0.05]])
    t = torch.tensor([[0.3, 0.1, -1.0]])
    T = pose_to_matrix(aa, t)
    np.testing.assert_allclose(T[0, :3, :3].numpy(), axis_angle_to_matrix(aa[0].numpy()), atol=1e-6)
    np.testing.assert_allclose(T[0, :3, 3].numpy(), t[0].numpy())
    torch.testing.assert_close(pose_to_matrix(aa, t, invert=True) @ T, torch.eye(4)[None], atol=1e-6, rtol=0)


def test_pose_net_starts_near_the_identity():
    net = PoseNet(18, 8)
    with torch.no_grad():
        aa, t = net(torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64))
    assert aa.shape == (2, 3) and t.shape == (2, 3)
    assert float(aa.abs().max()) < 0.1 and float(t.abs().max()) < 0.1


def test_pose_net_is_training_only():
    trained = MonoDepthNet(**TINY, pose_net=True)
    assert trained.pose is not None
    assert trained.deploy_config()["pose_net"] is False
    deploy = MonoDepthNet(**trained.deploy_config())
    state = {k: v for k, v in trained.state_dict().items() if not k.startswith("pose.")}
    deploy.load_state_dict(state)  # strict: the deploy form is exactly the depth part


def test_eigen_net_refines_the_coarse_global_output():
    net = EigenNet(height=64, width=128, channels=4, hidden=16)
    out = net.train_forward(torch.rand(2, 3, 64, 128))
    assert out["coarse"].shape == (2, 1, 8, 16) and out["fine"].shape == (2, 1, 16, 32)
    # the coarse stack sees the whole image: its fully connected layer mixes every position
    assert isinstance(net.coarse_fc[1], torch.nn.Linear) and net.coarse_fc[1].in_features == 16 * 2 * 4


def _allowed_ops():
    ops_file = Path(__file__).resolve().parents[1] / "depth_perception" / "engines" / "tensorrt_onnx_ops.txt"
    return {line.split()[0] for line in ops_file.read_text().splitlines() if line.strip() and line[0] != "#"}


@pytest.mark.parametrize("model", [MonoDepthNet(**TINY, pose_net=True), EigenNet(height=32, width=64, channels=4,
                                                                                  hidden=16)],
                         ids=["resnet", "eigen"])
def test_exports_to_onnx_within_the_tensorrt_op_list_and_matches_torch(tmp_path, model):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = model.eval()
    inputs = model.example_inputs()
    path = tmp_path / "mono.onnx"
    torch.onnx.export(model, inputs, str(path), input_names=["image"], output_names=["depth", "disparity"],
                      opset_version=17, dynamo=True)
    graph = onnx.load(str(path)).graph
    ops = {n.op_type for n in graph.node}
    assert ops <= _allowed_ops(), f"ops outside TensorRT 8.5: {sorted(ops - _allowed_ops())}"
    assert not any(n.name.startswith("pose") for n in graph.initializer), "the pose net must not be exported"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": inputs[0].numpy()})
    with torch.no_grad():
        want = model(*inputs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-4)


def test_recipe_choices_change_the_network_and_survive_the_deploy_config():
    plain = MonoDepthNet(height=64, width=128, pose_net=True)
    assert set(plain.config) == set(MonoDepthNet(height=64, width=128, pose_net=True).config)
    assert "decoder_padding" not in plain.config  # the shipped recipe's sidecars stay as they were
    assert all(float(b.bn2.weight.abs().max()) == 0 for b in plain.encoder.modules() if hasattr(b, "bn2"))
    md2 = MonoDepthNet(height=64, width=128, pose_net=True, decoder_padding="reflect", zero_init_residual=False,
                       init_depth=None, pose_width=64)
    assert {md2.config[k] for k in ("decoder_padding", "zero_init_residual", "init_depth")} == {"reflect", False,
                                                                                                 None}
    convs = [m for m in md2.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.padding_mode == "reflect" for c in convs)
    for net in (md2.encoder, md2.pose.encoder):  # standard BatchNorm init everywhere
        assert all(float(b.bn2.weight.min()) == 1 for b in net.modules() if hasattr(b, "bn2"))
    assert md2.pose.encoder.width == 64 and md2.pose.decoder.squeeze.out_channels == 256
    for conv, start in zip(md2.decoder.dispconv.values(), plain.decoder.dispconv.values(), strict=True):
        assert float(conv.bias.abs().max()) < 0.5  # monodepth2's start: PyTorch's init, near the sigmoid's midpoint
        assert float(start.bias.max()) < -3  # ours: every head at 10 m
    deploy = build_model("mono_resnet", **md2.deploy_config())
    deploy.load_state_dict({k: v for k, v in md2.state_dict().items() if not k.startswith("pose.")})
    x = torch.rand(1, 3, 64, 128)
    torch.testing.assert_close(deploy.eval()(x)[0], md2.eval()(x)[0])
    with pytest.raises(ValueError, match="padding"):
        MonoDepthNet(height=64, width=128, decoder_padding="circular")
