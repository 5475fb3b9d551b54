"""stereo_depth_node over real DDS: a textured plane 10 m ahead of a rectified pair comes back as depth 10 m,
with confidence, colorized depth, camera_info and an organized point cloud, all stamped like the inputs."""
import math
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.nodes.stereo_depth_node import StereoDepthNode
from depth_perception.ros.camera_info import camera_info_to_model
from depth_perception.ros.image import depth_image_to_numpy, image_to_numpy
from depth_perception.ros.node_driver import (
    OUTPUTS,
    STEREO_INPUTS,
    Driver,
    PlaneScene,
    RosSession,
    exchange,
    stereo_messages,
    topic,
)
from depth_perception.ros.pointcloud import pointcloud2_to_array, unpack_rgb

pytestmark = pytest.mark.slow  # not in `make test-fast`

NS = "/test_stereo"
FRAME = "cam_left"
CAMERA = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
SCENE = PlaneScene(CAMERA, baseline=0.5, depth=10.0)  # disparity 5 px
PARAMS = {"engine": "classical", "planes": 48, "min_depth": 2.0, "max_depth": 40.0}
T0 = 1_700_000_000 * 10**9


@pytest.fixture(scope="module")
def rig():
    from rclpy.parameter import Parameter

    with RosSession() as session:
        node = session.add(StereoDepthNode(context=session.context, namespace=NS,
                                           parameter_overrides=[Parameter(k, value=v) for k, v in PARAMS.items()]))
        driver = session.add(Driver(session.context))
        for name, cls in OUTPUTS.items():
            driver.subscribe(topic(NS, name), cls)
        assert node.wait_until_ready(30)
        assert driver.publisher_ready([topic(NS, k) for k in STEREO_INPUTS],
                                      {topic(NS, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        yield node, driver


def frame(k):
    return T0 + k * 100_000_000


def test_plane_at_10m_comes_back_as_depth_10m_with_the_input_stamp_and_frame(rig):
    node, driver = rig
    out = exchange(driver, NS, stereo_messages(SCENE, frame(1), FRAME), outputs=list(OUTPUTS))
    assert out is not None, node.diagnostic_state()
    depth_msg = out["depth"]
    assert depth_msg.encoding == "32FC1"
    assert depth_msg.header.frame_id == FRAME
    assert (depth_msg.header.stamp.sec, depth_msg.header.stamp.nanosec) == divmod(frame(1), 10**9)
    depth = depth_image_to_numpy(depth_msg)
    assert depth.shape == CAMERA.shape
    valid = np.isfinite(depth)
    assert valid.mean() > 0.8
    assert abs(np.median(depth[valid]) - 10.0) < 0.5
    assert np.mean(np.abs(depth[valid] - 10.0) < 1.0) > 0.9


def test_a_right_camera_whose_principal_point_differs_still_gives_the_true_depth(rig):
    # cx_right = cx_left + 3 px (a real rig's rectification, Middlebury's doffs): the images then move 2 px, not 5;
    # a node that reads only the baseline would see 25 m
    node, driver = rig
    scene = PlaneScene(CAMERA, baseline=0.5, depth=10.0, right_cx_offset=3)
    msgs = stereo_messages(scene, frame(20), FRAME)
    assert camera_info_to_model(msgs["right/camera_info"]).P[0, 2] == CAMERA.cx + 3
    out = exchange(driver, NS, msgs, outputs=["depth"])
    assert out is not None, node.diagnostic_state()
    depth = depth_image_to_numpy(out["depth"])
    valid = np.isfinite(depth)
    assert valid.mean() > 0.7
    assert abs(np.median(depth[valid]) - 10.0) < 0.5


def test_confidence_colorized_and_camera_info_match_the_depth_image(rig):
    _, driver = rig
    out = exchange(driver, NS, stereo_messages(SCENE, frame(2), FRAME), outputs=list(OUTPUTS))
    assert out is not None
    conf = image_to_numpy(out["depth/confidence"])
    assert out["depth/confidence"].encoding == "32FC1" and conf.shape == CAMERA.shape
    assert np.nanmin(conf) >= 0.0 and np.nanmax(conf) <= 1.0
    colour = image_to_numpy(out["depth/colorized"])
    assert out["depth/colorized"].encoding == "rgb8" and colour.shape == CAMERA.shape + (3,)
    assert len({tuple(c) for c in colour[48, 40:120]}) <= 4  # one depth, (almost) one colour
    model = camera_info_to_model(out["depth/camera_info"])
    assert (model.width, model.height) == (CAMERA.width, CAMERA.height)
    np.testing.assert_allclose(model.K, CAMERA.K)
    assert out["depth/camera_info"].header.frame_id == FRAME


def test_points_are_an_organized_xyzrgb_cloud_on_the_plane_in_the_optical_frame(rig):
    _, driver = rig
    msgs = stereo_messages(SCENE, frame(3), FRAME)
    out = exchange(driver, NS, msgs, outputs=["depth", "depth/points"])
    assert out is not None
    cloud = out["depth/points"]
    assert (cloud.height, cloud.width) == CAMERA.shape and cloud.header.frame_id == FRAME
    arr = pointcloud2_to_array(cloud)
    depth = depth_image_to_numpy(out["depth"])
    np.testing.assert_allclose(arr["z"], depth, equal_nan=True)
    ok = np.isfinite(arr["z"])
    v, u = np.nonzero(ok)
    np.testing.assert_allclose(arr["x"][ok], (u - CAMERA.cx) / CAMERA.fx * arr["z"][ok], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(arr["y"][ok], (v - CAMERA.cy) / CAMERA.fy * arr["z"][ok], rtol=1e-4, atol=1e-4)
    left = image_to_numpy(msgs["left/image_rect"])
    np.testing.assert_array_equal(unpack_rgb(arr["rgb"]), left)


def test_millimetre_output_decimated_cloud_and_input_resolution_by_parameter(rig):
    node, driver = rig
    results = driver.set_remote_parameters(node.get_fully_qualified_name(), {
        "output_encoding": "16UC1", "cloud_decimation": 2, "cloud_rgb": False, "input_width": 80,
        "input_height": 48})
    assert all(r.successful for r in results), [r.reason for r in results]
    try:
        out = exchange(driver, NS, stereo_messages(SCENE, frame(4), FRAME),
                       outputs=["depth", "depth/points", "depth/camera_info"])
        assert out is not None, node.diagnostic_state()
        assert out["depth"].encoding == "16UC1" and (out["depth"].height, out["depth"].width) == (48, 80)
        mm = image_to_numpy(out["depth"])
        assert abs(np.median(mm[mm > 0]) - 10000) < 600
        info = out["depth/camera_info"]
        assert (info.width, info.height) == (80, 48)
        assert math.isclose(info.k[0], 50.0)
        cloud = out["depth/points"]
        assert (cloud.height, cloud.width) == (24, 40)
        assert [f.name for f in cloud.fields] == ["x", "y", "z"]
    finally:
        results = driver.set_remote_parameters(node.get_fully_qualified_name(), {
            "output_encoding": "32FC1", "cloud_decimation": 1, "cloud_rgb": True, "input_width": 0,
            "input_height": 0})
        assert all(r.successful for r in results)


def test_points_in_a_target_frame_go_through_tf(rig):
    node, driver = rig
    T_base_cam = np.array([[0.0, 0.0, 1.0, 1.5], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.2], [0, 0, 0, 1.0]])
    driver.send_tf(T_base_cam, "base_link", FRAME, 0, static=True)
    assert driver.set_remote_parameters(node.get_fully_qualified_name(), {"target_frame": "base_link"})[0].successful
    try:
        deadline = time.monotonic() + 10
        while not node.tf.can_transform("base_link", FRAME) and time.monotonic() < deadline:
            time.sleep(0.05)
        out = exchange(driver, NS, stereo_messages(SCENE, frame(5), FRAME), outputs=["depth/points"])
        assert out is not None, node.diagnostic_state()
        cloud = out["depth/points"]
        assert cloud.header.frame_id == "base_link"
        arr = pointcloud2_to_array(cloud)
        ok = np.isfinite(arr["x"])
        # the plane 10 m ahead of the camera is 11.5 m ahead of base_link along x
        assert abs(np.median(arr["x"][ok]) - 11.5) < 0.5
        assert abs(np.median(arr["z"][ok]) - 1.2) < 0.3
    finally:
        driver.set_remote_parameters(node.get_fully_qualified_name(), {"target_frame": ""})


def test_multiview_mode_adds_previous_frames_posed_by_tf(rig):
    node, driver = rig
    fqn = node.get_fully_qualified_name()
    assert driver.set_remote_parameters(fqn, {"multiview_frames": 1, "odom_frame": "odom"})[0].successful
    try:
        for k in range(3):  # the rig slides 0.5 m right per frame: 5 px at 10 m
            stamp = frame(10 + k)
            T_odom_cam = np.eye(4)
            T_odom_cam[0, 3] = 0.5 * k
            driver.send_tf(T_odom_cam, "odom", FRAME, stamp)
            out = exchange(driver, NS, stereo_messages(SCENE, stamp, FRAME, shift_px=5 * k))
            assert out is not None, node.diagnostic_state()
        depth = depth_image_to_numpy(out["depth"])
        assert abs(np.nanmedian(depth) - 10.0) < 0.5
        assert node.extra_diagnostics()["source_views"] == 2
    finally:
        driver.set_remote_parameters(fqn, {"multiview_frames": 0})


def test_diagnostics_report_ok_with_input_rates_and_latency(rig):
    from diagnostic_msgs.msg import DiagnosticArray

    from depth_perception.ros.diagnostics import level_name, status_values

    node, driver = rig
    driver.subscribe("/diagnostics", DiagnosticArray)
    for k in range(3):
        assert exchange(driver, NS, stereo_messages(SCENE, frame(20 + k), FRAME)) is not None
    name = f"{node.get_name()}: depth"
    msg = driver.wait_for("/diagnostics", lambda m: any(s.name == name and level_name(s.level) == "OK"
                                                        for s in m.status), timeout=10)
    assert msg is not None, node.diagnostic_state()
    status = next(s for s in msg.status if s.name == name)
    values = status_values(status)
    assert status.hardware_id == node.get_fully_qualified_name()
    assert float(values["input_rate_hz/left/image_rect"]) > 0
    assert float(values["processing_ms/p50"]) > 0
    assert values["engine"] == "classical"


def test_a_slow_engine_processes_the_newest_set_and_drops_the_stale_ones(rig):
    node, driver = rig
    real_infer = node.infer

    def slow_infer(pipeline, frame):  # an engine slower than the sensors
        time.sleep(0.6)
        return real_infer(pipeline, frame)

    node.infer = slow_infer
    try:
        dropped = node.frames_dropped
        stamps = [frame(30 + k) for k in range(6)]
        for stamp in stamps:
            for name, msg in stereo_messages(SCENE, stamp, FRAME).items():
                driver.publish(topic(NS, name), msg)
            time.sleep(0.1)
        last = driver.wait_for(topic(NS, "depth"), lambda m: m.header.stamp.sec * 10**9 + m.header.stamp.nanosec
                               == stamps[-1], timeout=20)
        assert last is not None, node.diagnostic_state()
        got = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in driver.messages(topic(NS, "depth"))]
        published = [s for s in stamps if s in got]
        assert len(published) < len(stamps)  # stale sets were skipped, not queued
        assert published == sorted(published)
        assert node.frames_dropped > dropped
    finally:
        node.infer = real_infer


def test_a_node_nobody_listens_to_does_no_work(rig):
    from rclpy.parameter import Parameter

    _, driver = rig
    ns = "/test_stereo_idle"
    idle = StereoDepthNode(context=driver.context, namespace=ns,
                           parameter_overrides=[Parameter(k, value=v) for k, v in PARAMS.items()])
    driver.executor.add_node(idle)
    try:
        assert idle.wait_until_ready(30)
        assert driver.publisher_ready([topic(ns, k) for k in STEREO_INPUTS],
                                      {topic(ns, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        deadline = time.monotonic() + 15
        while idle.frames_idle == 0 and time.monotonic() < deadline:
            for name, msg in stereo_messages(SCENE, frame(40), FRAME).items():
                driver.publish(topic(ns, name), msg)
            time.sleep(0.3)
        assert idle.frames_idle > 0 and idle.frames_processed == 0
        assert idle.diagnostic_state()[1] == "idle: no subscribers"
    finally:
        driver.executor.remove_node(idle)
        idle.destroy_node()


def test_the_plane_spacing_in_pixels_is_in_diagnostics_and_follows_the_planes_parameter(rig):
    """fx 100 px, baseline 0.5 m, 2-40 m: 25 to 1.25 px of disparity. 48 planes are 0.51 px apart; 8 planes
    3.4 px (over the 2 px the node warns about, once per setting), and the plane at 10 m still comes back."""
    node, driver = rig
    fqn = node.get_fully_qualified_name()
    span = 100.0 * 0.5 * (1 / 2.0 - 1 / 40.0)
    out = exchange(driver, NS, stereo_messages(SCENE, frame(40), FRAME))
    assert out is not None, node.diagnostic_state()
    assert node.extra_diagnostics()["plane_step_px"] == pytest.approx(span / 47, rel=1e-3)
    assert driver.set_remote_parameters(fqn, {"planes": 8})[0].successful
    try:
        for k in range(41, 61):  # until a frame swept with the new setting is back
            out = exchange(driver, NS, stereo_messages(SCENE, frame(k), FRAME))
            if out is not None and node.extra_diagnostics()["plane_step_px"] > 1:
                break
        assert out is not None and abs(np.nanmedian(depth_image_to_numpy(out["depth"])) - 10.0) < 1.0
        assert node.extra_diagnostics()["plane_step_px"] == pytest.approx(span / 7, rel=1e-3)
        assert node._coarse_warned == (8, 2.0, 40.0, 0, round(span / 7, 1))
        _, _, values = node.diagnostic_state()
        assert values["plane_step_px"] == pytest.approx(span / 7, rel=1e-3)
    finally:
        driver.set_remote_parameters(fqn, {"planes": 48})
