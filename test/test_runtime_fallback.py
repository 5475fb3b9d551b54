"""A ROS install whose rosdep step brought no engine runtime (neither onnxruntime nor torch imports): the stereo and
completion nodes with `engine: auto` publish classical depth and say why, once; the mono node names what is missing.

The missing runtimes are simulated by making `depth_perception.engines` find neither module: the pipelines and
nodes under test are the real ones."""
import numpy as np
import pytest

from depth_perception.engines import EngineError, missing_runtime
from depth_perception.pipelines.completion import CompletionPipeline, CompletionPipelineConfig
from depth_perception.pipelines.mono import MonoPipeline, MonoPipelineConfig
from depth_perception.pipelines.stereo import StereoPipeline, StereoPipelineConfig

pytestmark = pytest.mark.slow  # not in `make test-fast`


@pytest.fixture
def no_runtime(monkeypatch):
    import depth_perception.engines as engines

    real = engines._importable
    monkeypatch.setattr(engines, "_importable", lambda name: False if name in ("onnxruntime", "torch") else real(name))
    assert "onnxruntime" in missing_runtime()


def test_with_a_runtime_nothing_falls_back():
    assert missing_runtime() is None
    assert StereoPipeline(StereoPipelineConfig(engine="auto")).fallback == ""


def test_stereo_and_completion_fall_back_to_their_classical_engines_saying_why(no_runtime):
    for pipe in (StereoPipeline(StereoPipelineConfig(engine="auto")),
                 CompletionPipeline(CompletionPipelineConfig(engine="auto"))):
        assert pipe.name == "classical"
        assert "fell back to the classical engine" in pipe.fallback and "onnxruntime" in pipe.fallback


def test_mono_has_no_classical_engine_and_names_the_missing_runtime(no_runtime):
    with pytest.raises(EngineError, match="neither onnxruntime nor torch"):
        MonoPipeline(MonoPipelineConfig(engine="auto"))


def test_a_stereo_node_with_engine_auto_and_no_runtime_publishes_classical_depth(no_runtime):
    pytest.importorskip("tf2_msgs.msg")
    from rclpy.parameter import Parameter

    from depth_perception.geometry import PinholeCamera
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

    ns = "/test_fallback"
    scene = PlaneScene(PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5), baseline=0.5, depth=10.0)
    params = [Parameter("engine", value="auto"), Parameter("planes", value=32), Parameter("min_depth", value=2.0),
              Parameter("max_depth", value=40.0)]
    with RosSession() as session:
        node = session.add(StereoDepthNode(context=session.context, namespace=ns, parameter_overrides=params))
        driver = session.add(Driver(session.context))
        driver.subscribe(topic(ns, "depth"), STEREO_INPUTS["left/image_rect"])
        assert node.wait_until_ready(30)
        assert driver.publisher_ready([topic(ns, k) for k in STEREO_INPUTS],
                                      {topic(ns, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        out = exchange(driver, ns, stereo_messages(scene, 1_700_001_000 * 10**9, "cam_left"))
        assert out is not None, node.diagnostic_state()
        assert abs(float(np.nanmedian(depth_image_to_numpy(out["depth"]))) - 10.0) < 0.5
        values = node.diagnostic_state()[2]
        assert values["engine"] == "classical" and "onnxruntime" in values["engine_fallback"]
