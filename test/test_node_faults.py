"""Bad input never stops a node: each fault is named in a throttled warning and in /diagnostics, nothing is
published for that frame, and the next good frame comes out as usual."""
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.nodes.depth_completion_node import DepthCompletionNode
from depth_perception.nodes.stereo_depth_node import StereoDepthNode
from depth_perception.ros.camera_info import camera_info_to_model, model_to_camera_info
from depth_perception.ros.node_driver import (
    COMPLETION_INPUTS,
    STEREO_INPUTS,
    T_CAM_LIDAR,
    Driver,
    PlaneScene,
    RosSession,
    cloud_msg,
    completion_messages,
    exchange,
    publish_set,
    stamp_of,
    stereo_messages,
    topic,
)

pytestmark = pytest.mark.slow  # not in `make test-fast`

STEREO_NS, COMPLETION_NS = "/test_faults_stereo", "/test_faults_completion"
FRAME, LIDAR = "cam_left", "velo_link"
CAMERA = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
SCENE = PlaneScene(CAMERA, baseline=0.5, depth=10.0)
T0 = 1_700_000_300 * 10**9


@pytest.fixture(scope="module")
def rig():
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    overrides = [Parameter("engine", value="classical"), Parameter("min_depth", value=2.0),
                 Parameter("max_depth", value=40.0), Parameter("planes", value=48)]
    with RosSession() as session:
        stereo = session.add(StereoDepthNode(context=session.context, namespace=STEREO_NS,
                                             parameter_overrides=overrides))
        completion = session.add(DepthCompletionNode(context=session.context, namespace=COMPLETION_NS,
                                                     parameter_overrides=overrides[:3]))
        driver = session.add(Driver(session.context))
        driver.subscribe(topic(STEREO_NS, "depth"), Image)
        driver.subscribe(topic(COMPLETION_NS, "depth"), Image)
        driver.subscribe("/diagnostics", DiagnosticArray)
        driver.send_tf(T_CAM_LIDAR, FRAME, LIDAR, 0, static=True)
        inputs = {topic(STEREO_NS, k): v for k, v in STEREO_INPUTS.items()}
        inputs.update({topic(COMPLETION_NS, k): v for k, v in COMPLETION_INPUTS.items()})
        assert stereo.wait_until_ready(30) and completion.wait_until_ready(30)
        assert driver.publisher_ready(list(inputs), inputs, timeout=20)
        deadline = time.monotonic() + 10
        while not completion.tf.can_transform(FRAME, LIDAR) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield {"stereo": (stereo, STEREO_NS), "completion": (completion, COMPLETION_NS)}, driver


def frame(k):
    return T0 + k * 100_000_000


def good_messages(kind, k):
    if kind == "stereo":
        return stereo_messages(SCENE, frame(k), FRAME)
    return completion_messages(SCENE, frame(k), FRAME, LIDAR)


def bad_encoding(kind, k):
    msgs = good_messages(kind, k)
    key = "left/image_rect" if kind == "stereo" else "image_rect"
    msgs[key].encoding = "yuv422_yuy2"
    return msgs


def size_mismatch(kind, k):
    msgs = good_messages(kind, k)
    key = "left/camera_info" if kind == "stereo" else "camera_info"
    model = camera_info_to_model(msgs[key])
    small = type(model)(80, 48, K=model.K, D=model.D, R=model.R, P=model.P)
    msgs[key] = model_to_camera_info(small, msgs[key].header)
    return msgs


def zero_calibration(kind, k):
    msgs = good_messages(kind, k)
    key = "left/camera_info" if kind == "stereo" else "camera_info"
    msgs[key].k = np.zeros(9)
    msgs[key].p = np.zeros(12)
    return msgs


def zero_baseline(kind, k):
    msgs = good_messages(kind, k)
    msgs["right/camera_info"].p = msgs["left/camera_info"].p
    return msgs


def truncated_image(kind, k):
    msgs = good_messages(kind, k)
    key = "right/image_rect" if kind == "stereo" else "image_rect"
    msgs[key].data = msgs[key].data[:100]
    return msgs


def empty_cloud(kind, k):
    msgs = good_messages(kind, k)
    msgs["points"] = cloud_msg(np.zeros((0, 3), np.float32), frame(k), LIDAR)
    return msgs


def nan_cloud(kind, k):
    msgs = good_messages(kind, k)
    msgs["points"] = cloud_msg(np.full((50, 3), np.nan, np.float32), frame(k), LIDAR)
    return msgs


def missing_transform(kind, k):
    msgs = good_messages(kind, k)
    msgs["points"] = cloud_msg(SCENE.lidar_points(), frame(k), "unknown_lidar")
    return msgs


CASES = [
    ("stereo", bad_encoding, "image", "yuv422_yuy2"),
    ("stereo", size_mismatch, "size", "80x48"),
    ("stereo", zero_calibration, "camera_info", "focal length"),
    ("stereo", zero_baseline, "camera_info", "baseline"),
    ("stereo", truncated_image, "image", "right image"),
    ("completion", bad_encoding, "image", "yuv422_yuy2"),
    ("completion", size_mismatch, "size", "80x48"),
    ("completion", empty_cloud, "cloud", "no finite points"),
    ("completion", nan_cloud, "cloud", "no finite points"),
    ("completion", missing_transform, "transform", "unknown_lidar"),
]


@pytest.mark.parametrize("kind, make_bad, cause, words", CASES,
                         ids=[f"{c[0]}-{c[1].__name__}" for c in CASES])
def test_a_bad_frame_is_reported_and_dropped_and_the_node_keeps_publishing(rig, kind, make_bad, cause, words):
    nodes, driver = rig
    node, ns = nodes[kind]
    k = 10 * (CASES.index((kind, make_bad, cause, words)) + 1)
    before = node.fault_counts.get(cause, 0)
    bad = make_bad(kind, k)
    deadline = time.monotonic() + 20
    while node.fault_counts.get(cause, 0) == before and time.monotonic() < deadline:
        publish_set(driver, ns, bad)
        time.sleep(0.5)
    assert node.fault_counts.get(cause, 0) > before, node.diagnostic_state()
    level, message, values = node.diagnostic_state()
    assert level == "WARN" and message.startswith(cause) and words in message
    assert words in values["last_fault"]
    # alive and well: the next good frame is published, the bad one never was
    assert exchange(driver, ns, good_messages(kind, k + 1)) is not None, node.diagnostic_state()
    assert frame(k) not in [stamp_of(m) for m in driver.messages(topic(ns, "depth"))]


def test_faults_are_published_on_diagnostics_as_warn_with_the_reason(rig):
    from depth_perception.ros.diagnostics import level_name, status_values

    nodes, driver = rig
    node, ns = nodes["completion"]
    before = node.fault_counts.get("cloud", 0)
    publish_set(driver, ns, empty_cloud("completion", 500))
    deadline = time.monotonic() + 10
    while node.fault_counts.get("cloud", 0) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    name = f"{node.get_name()}: depth"
    msg = driver.wait_for("/diagnostics", lambda m: any(
        s.name == name and level_name(s.level) == "WARN" and "no finite points" in s.message for s in m.status),
        timeout=10)
    assert msg is not None
    status = next(s for s in msg.status if s.name == name)
    assert int(status_values(status)["faults/cloud"]) >= 1


def test_a_warning_names_the_cause_once_per_throttle_period(rig, capfd):
    nodes, driver = rig
    node, ns = nodes["stereo"]
    node._warned_at.pop("image", None)
    before = node.fault_counts.get("image", 0)
    for k in range(3):
        publish_set(driver, ns, bad_encoding("stereo", 900 + k))
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while node.fault_counts.get("image", 0) < before + 3 and time.monotonic() < deadline:
        publish_set(driver, ns, bad_encoding("stereo", 950))
        time.sleep(0.3)
    time.sleep(0.2)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "unsupported image encoding 'yuv422_yuy2'" in line]
    assert len(lines) == 1, err[-2000:]
    assert "WARN" in lines[0] and "image:" in lines[0]


def test_an_engine_that_fails_to_load_leaves_the_node_running_with_an_error_until_a_good_engine_is_set(
        rig, tmp_path):
    from rclpy.parameter import Parameter

    _, driver = rig
    session_context = driver.context
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00garbage")
    bad.with_suffix(".json").write_text("{not json")
    ns = "/test_faults_engine"
    node = StereoDepthNode(context=session_context, namespace=ns,
                           parameter_overrides=[Parameter("engine", value=str(bad)),
                                                Parameter("min_depth", value=2.0),
                                                Parameter("max_depth", value=40.0)])
    executor = driver.executor
    executor.add_node(node)
    try:
        assert not node.wait_until_ready(30)
        level, message, _ = node.diagnostic_state()
        assert level == "ERROR" and "broken.onnx" in message and "failed to load" in message
        from sensor_msgs.msg import Image

        driver.subscribe(topic(ns, "depth"), Image)
        assert driver.publisher_ready([topic(ns, k) for k in STEREO_INPUTS],
                                      {topic(ns, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        before = node.fault_counts.get("engine", 0)
        deadline = time.monotonic() + 10
        while node.fault_counts.get("engine", 0) == before and time.monotonic() < deadline:
            publish_set(driver, ns, stereo_messages(SCENE, frame(1000), FRAME))
            time.sleep(0.3)
        assert node.fault_counts.get("engine", 0) > before  # each frame is dropped, naming the engine
        assert driver.messages(topic(ns, "depth")) == []
        # setting the same engine again retries the load (and fails again: the file is still broken)
        engine_faults = node.fault_counts.get("engine", 0)
        assert driver.set_remote_parameters(node.get_fully_qualified_name(), {"engine": str(bad)})[0].successful
        assert not node.wait_until_ready(30)
        deadline = time.monotonic() + 10
        while node.fault_counts.get("engine", 0) == engine_faults and time.monotonic() < deadline:
            time.sleep(0.05)
        assert node.fault_counts.get("engine", 0) > engine_faults
        result = driver.set_remote_parameters(node.get_fully_qualified_name(), {"engine": "classical"})[0]
        assert result.successful
        assert node.wait_until_ready(30)
        assert exchange(driver, ns, stereo_messages(SCENE, frame(1001), FRAME)) is not None
        assert node.diagnostic_state()[0] in ("OK", "WARN")
    finally:
        executor.remove_node(node)
        node.destroy_node()
