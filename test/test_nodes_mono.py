"""mono_depth_node over real DDS with a tiny untrained mono network (a checkpoint folder, or an exported ONNX engine
where the engine runtime exists): the node publishes exactly what MonoPipeline computes for the same image."""
import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

pytestmark = pytest.mark.slow  # not in `make test-fast`
torch = pytest.importorskip("torch")
import depth_perception.models.mono as models_mono  # noqa: E402
from depth_perception.geometry import PinholeCamera  # noqa: E402
from depth_perception.nodes.mono_depth_node import MonoDepthNode  # noqa: E402
from depth_perception.ros.image import depth_image_to_numpy  # noqa: E402
from depth_perception.ros.node_driver import (  # noqa: E402
    MONO_INPUTS,
    OUTPUTS,
    Driver,
    PlaneScene,
    RosSession,
    exchange,
    header,
    image_msg,
    topic,
)

NS = "/test_mono"
FRAME = "cam_left"
CAMERA = PinholeCamera(128, 64, 80.0, 80.0, 63.5, 31.5)
T0 = 1_700_000_500 * 10**9


def tiny_engine(folder):
    """A 64x32 monodepth2-style network saved as a checkpoint folder (metric: its sigmoid depth range)."""
    from depth_perception.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = models_mono.build_mono_resnet(height=32, width=64, encoder_width=8, decoder_width=4, min_depth=1.0,
                                          max_depth=50.0)
    save_checkpoint(folder, model.eval(), None, 0, {"model": {"name": "mono_resnet", "config": model.config},
                                                    "metric": True, "mode": "supervised"})
    return folder


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    from rclpy.parameter import Parameter

    engine = tiny_engine(tmp_path_factory.mktemp("mono_engine"))
    with RosSession() as session:
        node = session.add(MonoDepthNode(context=session.context, namespace=NS, parameter_overrides=[
            Parameter("engine", value=str(engine)), Parameter("min_depth", value=1.0),
            Parameter("max_depth", value=50.0)]))
        driver = session.add(Driver(session.context))
        for name, cls in OUTPUTS.items():
            driver.subscribe(topic(NS, name), cls)
        assert node.wait_until_ready(60), node.diagnostic_state()
        assert driver.publisher_ready([topic(NS, k) for k in MONO_INPUTS],
                                      {topic(NS, k): v for k, v in MONO_INPUTS.items()}, timeout=20)
        yield node, driver


def mono_messages(stamp_ns):
    left, _ = PlaneScene(CAMERA, 0.5, 10.0).images()
    info, _ = PlaneScene(CAMERA, 0.5, 10.0).camera_infos(header(stamp_ns, FRAME))
    return {"image_rect": image_msg(left, stamp_ns, FRAME), "camera_info": info}, left


def test_the_node_publishes_what_the_mono_pipeline_computes_for_the_image(rig):
    from depth_perception.pipelines.mono import MonoPipeline

    node, driver = rig
    msgs, left = mono_messages(T0)
    out = exchange(driver, NS, msgs, outputs=list(OUTPUTS), timeout=60)
    assert out is not None, node.diagnostic_state()
    depth = depth_image_to_numpy(out["depth"])
    assert depth.shape == CAMERA.shape and out["depth"].header.frame_id == FRAME
    expected = MonoPipeline(node.pipeline.config).process(left, CAMERA).depth
    np.testing.assert_allclose(depth, expected, rtol=1e-4, equal_nan=True)
    valid = np.isfinite(depth)
    assert valid.any() and depth[valid].min() >= 1.0 and depth[valid].max() <= 50.0
    assert (out["depth/points"].height, out["depth/points"].width) == CAMERA.shape
    values = node.diagnostic_state()[2]  # which runtime `backend: auto` chose is reported
    assert (values["backend"], values["device"]) == (node.pipeline.engine.backend, "cpu")


def test_camera_height_and_scale_recovery_are_run_time_parameters(rig):
    node, driver = rig
    fqn = node.get_fully_qualified_name()
    results = driver.set_remote_parameters(fqn, {"scale_recovery": "camera_height", "camera_height": 1.2})
    assert all(r.successful for r in results), [r.reason for r in results]
    assert node.wait_until_ready(60)
    assert node.pipeline.config.camera_height == 1.2 and node.pipeline.uses_camera_height
    msgs, _ = mono_messages(T0 + 100_000_000)
    assert exchange(driver, NS, msgs, timeout=60) is not None, node.diagnostic_state()
    bad = driver.set_remote_parameters(fqn, {"scale_recovery": "guess"})[0]
    assert not bad.successful and "scale_recovery" in bad.reason
