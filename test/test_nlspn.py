"""NLSPN: propagation invariants, affinity normalization, the deploy protocol, ONNX export parity."""
from pathlib import Path

import numpy as np
import pytest
import torch

from depth_perception.models.nlspn import NLSPN, NonLocalPropagation, normalize_affinities
from depth_perception.models.registry import build_model

TINY = dict(height=32, width=64, width_base=8, iterations=4, max_depth=40.0)


def _random_propagation(iterations=6, preserve=False, seed=0, h=12, w=16):
    torch.manual_seed(seed)
    prop = NonLocalPropagation(guide_ch=8, iterations=iterations, preserve_input=preserve)
    with torch.no_grad():
        prop.conv_offset_aff.weight.normal_(0, 0.5)  # any offsets and affinities, not the zero init
        prop.conv_offset_aff.bias.normal_(0, 1.0)
    guidance = torch.randn(2, 8, h, w)
    confidence = torch.rand(2, 1, h, w)
    return prop, guidance, confidence


def test_zero_affinities_return_the_initial_depth():
    prop = NonLocalPropagation(guide_ch=8, iterations=18)  # the zero-initialised head
    init = torch.rand(1, 1, 10, 14) * 30
    _, grid, aff = prop.offsets_affinities(torch.randn(1, 8, 10, 14), torch.rand(1, 1, 10, 14))
    assert torch.count_nonzero(aff) == 0
    torch.testing.assert_close(prop.propagate(init, grid, aff), init)


def test_constant_depth_stays_constant_under_any_normalized_affinities():
    prop, guidance, confidence = _random_propagation(iterations=10)
    offsets, grid, aff = prop.offsets_affinities(guidance, confidence)
    assert offsets.abs().max() > 0.1 and aff.abs().max() > 0.01  # a real, non-trivial propagation
    init = torch.full((2, 1, 12, 16), 7.5)
    torch.testing.assert_close(prop.propagate(init, grid, aff), init, atol=0, rtol=1e-4)  # float32 bilinear weights


def test_affinity_normalization_keeps_the_absolute_sum_at_most_one():
    raw = torch.randn(3, 8, 9, 9) * 5
    for gamma in (0.5, 1.0, 4.0):
        aff = normalize_affinities(raw, torch.tensor([gamma]), torch.rand(3, 8, 9, 9))
        assert float(aff.abs().sum(1).max()) <= 1.0 + 1e-6
    # Small affinities (sum below 1) are left as they are.
    small = normalize_affinities(torch.full((1, 8, 2, 2), 0.01), torch.tensor([4.0]))
    torch.testing.assert_close(small, torch.tanh(torch.tensor(0.01)).expand(1, 8, 2, 2) / 4.0)


def test_valid_measurements_are_preserved_when_the_option_is_on():
    prop, guidance, confidence = _random_propagation(iterations=5, preserve=True)
    _, grid, aff = prop.offsets_affinities(guidance, confidence)
    init = torch.rand(2, 1, 12, 16) * 20 + 1
    sparse = torch.where(torch.rand(2, 1, 12, 16) < 0.2, torch.rand(2, 1, 12, 16) * 50 + 1, torch.zeros(1))
    out = prop.propagate(init, grid, aff, sparse)
    valid = sparse > 0
    assert valid.sum() > 10
    torch.testing.assert_close(out[valid], sparse[valid])
    prop.preserve_input = False
    assert not torch.allclose(prop.propagate(init, grid, aff, sparse)[valid], sparse[valid])


def test_propagation_averages_towards_neighbours():
    """A single spike spreads into its 3x3 neighbourhood under positive affinities (the propagation mixes)."""
    prop = NonLocalPropagation(guide_ch=1, iterations=1)
    with torch.no_grad():
        prop.conv_offset_aff.bias[16:] = 10.0  # tanh -> 1: every neighbour weighs 1 / gamma before normalization
    _, grid, aff = prop.offsets_affinities(torch.zeros(1, 1, 7, 7), torch.ones(1, 1, 7, 7))
    init = torch.zeros(1, 1, 7, 7)
    init[0, 0, 3, 3] = 9.0
    out = prop.propagate(init, grid, aff).detach()
    assert float(out[0, 0, 3, 3]) < 9.0 and float(out[0, 0, 2, 2]) > 0.0 and float(out[0, 0, 0, 0]) == 0.0
    assert float(out.sum()) == pytest.approx(9.0, rel=1e-4)  # symmetric weights away from borders conserve mass


def test_registered_builders_follow_the_deploy_protocol():
    for name in ("nlspn", "nlspn_light"):
        model = build_model(name, **{**TINY, "width_base": 8}).eval()
        spec = model.io_spec()
        assert model.kind == "completion"
        assert [i["name"] for i in spec["inputs"]] == ["image", "sparse_depth"]
        assert [o["name"] for o in spec["outputs"]] == ["depth", "confidence"]
        inputs = model.example_inputs()
        assert [list(t.shape) for t in inputs] == [i["shape"] for i in spec["inputs"]]
        with torch.no_grad():
            depth, conf = model(*inputs)
        assert [list(depth.shape), list(conf.shape)] == [o["shape"] for o in spec["outputs"]]
        assert torch.all((depth >= 0) & (depth <= 40.0)) and torch.all((conf >= 0) & (conf <= 1))
        sparse = inputs[1]
        torch.testing.assert_close(depth[sparse > 0], sparse[sparse > 0])  # measurements come through
    light = build_model("nlspn_light", height=32, width=64)
    assert light.config["layers"] == 18 and light.config["width_base"] == 16
    assert sum(p.numel() for p in light.parameters()) * 4 < 5e6  # the shipped default stays a few MB


@pytest.mark.parametrize("kwargs, field", [(dict(height=16), "height"), (dict(max_depth=0.0), "max_depth"),
                                           (dict(prop_kernel=4), "prop_kernel"), (dict(iterations=-1), "iterations"),
                                           (dict(width_base=6), "width_base")])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NLSPN(**{**TINY, **kwargs})


def test_exports_to_onnx_within_the_tensorrt_op_list_and_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = NLSPN(**TINY).eval()
    with torch.no_grad():  # a trained-looking propagation head, so the exported sampling path is exercised
        model.propagation.conv_offset_aff.weight.normal_(0, 0.05)
    inputs = model.example_inputs()
    path = tmp_path / "nlspn.onnx"
    torch.onnx.export(model, inputs, str(path), input_names=["image", "sparse_depth"],
                      output_names=["depth", "confidence"], opset_version=18, dynamo=True)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    ops_file = Path(__file__).resolve().parents[1] / "depth_perception" / "engines" / "tensorrt_onnx_ops.txt"
    allowed = {line.split()[0] for line in ops_file.read_text().splitlines() if line.strip() and line[0] != "#"}
    assert ops <= allowed, f"ops outside TensorRT 8.5: {sorted(ops - allowed)}"
    assert "GridSample" in ops and "Loop" not in ops  # unrolled propagation
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": inputs[0].numpy(), "sparse_depth": inputs[1].numpy()})
    with torch.no_grad():
        want = model(*inputs)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-3)


def test_the_prior_variant_starts_as_its_in_fill_and_is_blind_to_the_depth_range():
    torch.manual_seed(0)
    model = build_model("nlspn_light", **{**TINY, "width_base": 8, "prior": "ipbasic"}).eval()
    spec = model.io_spec()
    assert [i["name"] for i in spec["inputs"]] == ["image", "sparse_depth", "prior_depth"]
    assert spec["prior"] == "ipbasic"
    image, sparse, prior = model.example_inputs()
    with torch.no_grad():
        depth, _ = model(image, sparse, prior)
        # untrained: the in-fill, with the measurements put back
        torch.testing.assert_close(depth, torch.where(sparse > 0, sparse, prior).clamp(0, 40.0))
        model.init_head[-1].weight.normal_(0, 0.1)  # a trained-looking correction and propagation
        model.propagation.conv_offset_aff.weight.normal_(0, 0.05)
        near, _ = model(image, 0.1 * sparse, 0.1 * prior)
        far, _ = model(image, sparse, prior)
    assert not torch.allclose(far, torch.where(sparse > 0, sparse, prior))
    torch.testing.assert_close(10.0 * near, far, rtol=1e-3, atol=1e-3)  # depth divided by the in-fill's scale
    with pytest.raises(ValueError, match="prior_depth"):
        model(image, sparse)
    with pytest.raises(ValueError, match="prior"):
        NLSPN(**{**TINY, "prior": "nearest"})
    assert "prior" not in NLSPN(**TINY).config  # the configs of engines made before it stay as they were


@pytest.mark.parametrize("guidance", ["deep", "local"])
def test_the_propagation_only_variant_has_no_correction_head_and_starts_as_its_in_fill(guidance):
    torch.manual_seed(0)
    model = build_model("nlspn_light", **{**TINY, "prior": "guided", "correction": False,
                                          "guidance": guidance}).eval()
    assert model.init_head is None and model.config["correction"] is False
    assert (model.encoder is None) == (guidance == "local") and model.config.get("guidance", "deep") == guidance
    assert not any(name.startswith("init_head") for name in model.state_dict())
    image, sparse, prior = model.example_inputs()
    kept = torch.where(sparse > 0, sparse, prior).clamp(0, 40.0)
    with torch.no_grad():
        depth, _ = model(image, sparse, prior)
        torch.testing.assert_close(depth, kept)  # untrained: the in-fill, measurements put back
        model.propagation.conv_offset_aff.weight.normal_(0, 0.05)  # a trained-looking propagation
        out = model.forward_train(image, sparse, prior)
        near, _ = model(image, 0.1 * sparse, 0.1 * prior)
    torch.testing.assert_close(out["init_depth"], prior)  # the propagation starts from the in-fill itself
    assert not torch.allclose(out["depth"], kept)
    torch.testing.assert_close(10.0 * near, out["depth"], rtol=1e-3, atol=1e-3)
    measured = sparse > 0
    torch.testing.assert_close(out["depth"][measured], sparse[measured])
    assert "correction" not in build_model("nlspn_light", **{**TINY, "prior": "guided"}).config
    with pytest.raises(ValueError, match="correction"):
        NLSPN(**{**TINY, "correction": False})
    with pytest.raises(ValueError, match="guidance"):
        NLSPN(**{**TINY, "guidance": "global"})
