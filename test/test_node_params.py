"""Node parameters: declared up front with descriptions and ranges, every one settable at run time through the
SetParameters service of another node, bad values rejected with a reason (the old value kept), and a new engine
loaded off the callback thread."""
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.nodes.depth_completion_node import DepthCompletionNode
from depth_perception.nodes.mono_depth_node import MonoDepthNode
from depth_perception.nodes.stereo_depth_node import StereoDepthNode
from depth_perception.ros.image import depth_image_to_numpy
from depth_perception.ros.node_driver import (
    STEREO_INPUTS,
    Driver,
    PlaneScene,
    RosSession,
    exchange,
    stereo_messages,
    topic,
)

pytestmark = pytest.mark.slow  # not in `make test-fast`

NS = "/test_params"
FRAME = "cam_left"
CAMERA = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
SCENE = PlaneScene(CAMERA, baseline=0.5, depth=10.0)
T0 = 1_700_000_200 * 10**9

# A valid value different from the default for every parameter any node declares: a parameter added without an
# entry here fails test_every_declared_parameter_has_a_run_time_test_value.
NEW_VALUES = {
    "engine": "auto", "backend": "onnxruntime", "device": "cpu", "input_width": 80, "input_height": 48,
    "min_depth": 3.0, "max_depth": 60.0, "confidence_threshold": 0.05, "output_encoding": "16UC1",
    "colormap_min_depth": 2.0, "colormap_max_depth": 50.0, "cloud_decimation": 2, "cloud_rgb": False,
    "target_frame": FRAME, "qos_reliability": "reliable", "qos_depth": 3, "sync_slop": 0.02,
    "diagnostics_period": 0.5, "planes": 32, "multiview_frames": 1, "odom_frame": "world",
    "propagation_iterations": 4, "engine_fit": "tiles", "scale_recovery": "camera_height", "camera_height": 1.2,
    "sweep_width": 320, "edge_snap": False, "infill_coverage_px": 6.0,
}
START = {"engine": "classical", "min_depth": 2.0, "max_depth": 40.0, "planes": 48}


@pytest.mark.parametrize("cls", [StereoDepthNode, DepthCompletionNode, MonoDepthNode], ids=lambda c: c.NODE_NAME)
def test_every_declared_parameter_has_a_run_time_test_value(cls):
    specs = cls.param_specs()
    assert set(specs) <= set(NEW_VALUES), sorted(set(specs) - set(NEW_VALUES))
    for name, spec in specs.items():
        assert NEW_VALUES[name] != START.get(name, spec.default), name
        assert type(NEW_VALUES[name]) is type(spec.default), name


@pytest.mark.parametrize("cls", [StereoDepthNode, DepthCompletionNode, MonoDepthNode], ids=lambda c: c.NODE_NAME)
def test_parameters_have_descriptions_and_numeric_ones_have_ranges(cls):
    for name, spec in cls.param_specs().items():
        desc = spec.descriptor()
        assert len(desc.description) > 15, name
        if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
            assert desc.integer_range or desc.floating_point_range, f"{name} has no range"


@pytest.fixture(scope="module")
def rig():
    from rclpy.parameter import Parameter

    with RosSession() as session:
        node = session.add(StereoDepthNode(context=session.context, namespace=NS,
                                           parameter_overrides=[Parameter(k, value=v) for k, v in START.items()]))
        driver = session.add(Driver(session.context))
        driver.subscribe(topic(NS, "depth"), STEREO_INPUTS["left/image_rect"])
        assert node.wait_until_ready(30)
        assert driver.publisher_ready([topic(NS, k) for k in STEREO_INPUTS],
                                      {topic(NS, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        yield session, node, driver


def frame(k):
    return T0 + k * 100_000_000


def depth_of(driver, k):
    out = exchange(driver, NS, stereo_messages(SCENE, frame(k), FRAME))
    return None if out is None else depth_image_to_numpy(out["depth"])


def test_every_parameter_a_live_node_lists_is_one_a_config_file_may_set(rig):
    # rclpy declares some of its own (use_sim_time; start_type_description_service from Iron on): a node-set YAML
    # or `run --set` naming them must not be refused as unknown
    from depth_perception.nodes.runner import coerce_parameter

    _, node, _ = rig
    for name in node._parameters:
        value = node.get_parameter(name).value
        assert coerce_parameter("stereo", "stereo_depth_node", name, value) == value, name


def test_every_declared_parameter_of_a_node_can_be_set_at_run_time(rig):
    _, node, driver = rig
    fqn = node.get_fully_qualified_name()
    names = sorted(StereoDepthNode.param_specs())
    before = driver.get_remote_parameters(fqn, names)
    for name in names:
        result = driver.set_remote_parameters(fqn, {name: NEW_VALUES[name]})[0]
        assert result.successful, f"{name}: {result.reason}"
    after = driver.get_remote_parameters(fqn, names)
    assert after == {n: NEW_VALUES[n] for n in names}
    assert node.value("output_encoding") == "16UC1" and node._sync.slop_s == pytest.approx(0.02)
    # back to the start: the node still answers with correct depth
    for name in names:
        assert driver.set_remote_parameters(fqn, {name: before[name]})[0].successful, name
    assert node.wait_until_ready(30)
    depth = depth_of(driver, 1)
    assert depth is not None, node.diagnostic_state()
    assert abs(np.nanmedian(depth) - 10.0) < 0.5


def test_a_completion_node_accepts_its_own_parameters_at_run_time():
    from rclpy.parameter import Parameter

    with RosSession() as session:
        node = session.add(DepthCompletionNode(context=session.context, namespace="/test_params_completion",
                                               parameter_overrides=[Parameter("engine", value="classical")]))
        driver = session.add(Driver(session.context))
        fqn = node.get_fully_qualified_name()
        for name in ("propagation_iterations", "max_depth", "sync_slop"):
            result = driver.set_remote_parameters(fqn, {name: NEW_VALUES[name]})[0]
            assert result.successful, f"{name}: {result.reason}"
            assert driver.get_remote_parameters(fqn, [name]) == {name: NEW_VALUES[name]}


@pytest.mark.parametrize("name, bad, reason", [
    ("min_depth", 50.0, "max_depth must be > min_depth"),
    ("colormap_max_depth", 0.5, "colormap_max_depth must be > colormap_min_depth"),
    ("output_encoding", "rgb8", "output_encoding must be one of"),
    ("qos_reliability", "sometimes", "qos_reliability must be one of"),
    ("backend", "magic", "backend must be one of"),
    ("engine", "/nonexistent/stereo.onnx", "engine not found"),
    ("cloud_decimation", 0, ""),  # out of the declared range: rclpy rejects it
    ("sync_slop", 5.0, ""),
    ("planes", 2, ""),
    ("max_depth", "far", ""),  # wrong type
    ("multiview_frames", 99, ""),
])
def test_an_invalid_value_is_rejected_with_a_reason_and_the_old_value_kept(rig, name, bad, reason):
    _, node, driver = rig
    fqn = node.get_fully_qualified_name()
    old = driver.get_remote_parameters(fqn, [name])[name]
    result = driver.set_remote_parameters(fqn, {name: bad})[0]
    assert not result.successful
    assert result.reason
    assert reason in result.reason
    assert driver.get_remote_parameters(fqn, [name])[name] == old
    assert node.value(name) == old


def test_an_engine_that_fails_to_load_keeps_the_running_engine_and_its_parameter_value(rig, tmp_path: Path):
    _, node, driver = rig
    fqn = node.get_fully_qualified_name()
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx model")
    bad.with_suffix(".json").write_text('{"format": "depth_perception.engine/1", "kind": "stereo"}')
    failures = node.fault_counts.get("engine", 0)
    assert driver.set_remote_parameters(fqn, {"engine": str(bad)})[0].successful  # the load happens afterwards
    deadline = time.monotonic() + 30
    while node.fault_counts.get("engine", 0) == failures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.fault_counts.get("engine", 0) == failures + 1
    deadline = time.monotonic() + 10  # the revert runs on the loader thread: wait until the parameter says so
    while driver.get_remote_parameters(fqn, ["engine"]) != {"engine": "classical"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.get_remote_parameters(fqn, ["engine"]) == {"engine": "classical"}
    assert node.value("engine") == "classical"
    level, message, values = node.diagnostic_state()
    assert level == "WARN" and "broken.onnx" in message and "failed to load" in message
    depth = depth_of(driver, 2)
    assert depth is not None and abs(np.nanmedian(depth) - 10.0) < 0.5


def test_a_slow_engine_load_runs_off_the_callback_thread_while_the_old_engine_keeps_publishing(rig):
    _, node, driver = rig
    fqn = node.get_fully_qualified_name()
    real_build = node.build_pipeline

    def slow_build(config):  # an engine that takes seconds to load (a TensorRT build, a large ONNX)
        time.sleep(3.0)
        return real_build(config)

    node.build_pipeline = slow_build
    try:
        old_pipeline = node.pipeline
        t0 = time.monotonic()
        assert driver.set_remote_parameters(fqn, {"planes": 40})[0].successful
        assert time.monotonic() - t0 < 2.5  # the service answered before the load finished
        depth = depth_of(driver, 3)  # published by the old engine meanwhile
        assert depth is not None
        assert node.pipeline is old_pipeline
        assert node.wait_until_ready(30)
        assert node.pipeline is not old_pipeline and node.pipeline.config.planes == 40
    finally:
        node.build_pipeline = real_build
        driver.set_remote_parameters(fqn, {"planes": START["planes"]})
        node.wait_until_ready(30)


def test_the_readme_parameter_table_is_the_nodes_own_declarations():
    from pathlib import Path

    from depth_perception.nodes.launch_helpers import parameter_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert parameter_table() in readme, "README's parameter table is stale: paste parameter_table()'s output"


def test_each_pipeline_setting_is_named_once_on_its_config_field():
    from depth_perception.kinds import load
    from depth_perception.nodes.launch_helpers import REGISTRY
    from depth_perception.pipelines.settings import settings_of

    for entry in REGISTRY.values():
        node = load(entry.node_class)
        config = node.config_class()
        specs = node.param_specs()
        for name, (default, setting) in settings_of(config).items():
            spec = specs[name]  # the node parameter is the field: same default, words, range and choices
            assert (spec.default, spec.description, spec.low, spec.high, spec.choices) == \
                (default, setting.description, setting.low, setting.high, setting.choices)
        assert {"engine", "min_depth", "max_depth", "confidence_threshold"} <= set(settings_of(config))
        name = next(n for n, (_, s) in settings_of(config).items() if s.low is not None)
        low = settings_of(config)[name][1].low
        with pytest.raises(ValueError, match=name):  # the config itself refuses what the node would refuse
            config(**{name: type(settings_of(config)[name][0])(low - 1)})
