"""depth_completion_node over real DDS: a LiDAR grid on a plane 10 m ahead, moved into the camera through TF,
comes back as dense depth 10 m; points can be published in the LiDAR frame through TF."""
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg")

from depth_perception.geometry import PinholeCamera
from depth_perception.nodes.depth_completion_node import DepthCompletionNode
from depth_perception.ros.image import depth_image_to_numpy
from depth_perception.ros.node_driver import (
    COMPLETION_INPUTS,
    OUTPUTS,
    T_CAM_LIDAR,
    Driver,
    PlaneScene,
    RosSession,
    completion_messages,
    exchange,
    topic,
)
from depth_perception.ros.pointcloud import pointcloud2_to_array

pytestmark = pytest.mark.slow  # not in `make test-fast`

NS = "/test_completion"
FRAME, LIDAR = "cam_left", "velo_link"
CAMERA = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
SCENE = PlaneScene(CAMERA, baseline=0.5, depth=10.0)
T0 = 1_700_000_100 * 10**9


@pytest.fixture(scope="module")
def rig():
    from rclpy.parameter import Parameter

    with RosSession() as session:
        node = session.add(DepthCompletionNode(
            context=session.context, namespace=NS,
            parameter_overrides=[Parameter("engine", value="classical"), Parameter("max_depth", value=40.0)]))
        driver = session.add(Driver(session.context))
        for name, cls in OUTPUTS.items():
            driver.subscribe(topic(NS, name), cls)
        driver.send_tf(T_CAM_LIDAR, FRAME, LIDAR, 0, static=True)
        assert node.wait_until_ready(30)
        assert driver.publisher_ready([topic(NS, k) for k in COMPLETION_INPUTS],
                                      {topic(NS, k): v for k, v in COMPLETION_INPUTS.items()}, timeout=20)
        deadline = time.monotonic() + 10
        while not node.tf.can_transform(FRAME, LIDAR) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield node, driver


def frame(k):
    return T0 + k * 100_000_000


def test_lidar_on_a_plane_at_10m_completes_to_dense_depth_10m(rig):
    node, driver = rig
    out = exchange(driver, NS, completion_messages(SCENE, frame(1), FRAME, LIDAR), outputs=list(OUTPUTS))
    assert out is not None, node.diagnostic_state()
    depth = depth_image_to_numpy(out["depth"])
    assert out["depth"].header.frame_id == FRAME
    assert (out["depth"].header.stamp.sec, out["depth"].header.stamp.nanosec) == divmod(frame(1), 10**9)
    assert depth.shape == CAMERA.shape
    assert np.isfinite(depth).mean() > 0.95  # dense
    np.testing.assert_allclose(np.nanmedian(depth), 10.0, atol=0.05)
    assert np.nanmax(np.abs(depth - 10.0)) < 0.5
    diag = node.extra_diagnostics()  # IP-Basic: no engine to skip; the LiDAR sits beside the camera (from TF)
    offset = np.linalg.norm(T_CAM_LIDAR[:3, 3])
    assert diag == {"infill_only": False, "sensor_offset_m": pytest.approx(offset, abs=1e-3)}
    assert diag["sensor_offset_m"] > 0.2
    cloud = out["depth/points"]
    assert (cloud.height, cloud.width) == CAMERA.shape and cloud.header.frame_id == FRAME


def test_lidar_and_camera_stamps_within_sync_slop_are_matched(rig):
    node, driver = rig
    msgs = completion_messages(SCENE, frame(2), FRAME, LIDAR)
    late = completion_messages(SCENE, frame(2) + 30_000_000, FRAME, LIDAR)  # LiDAR 30 ms after the camera
    msgs["points"] = late["points"]
    assert node.value("sync_slop") >= 0.03
    out = exchange(driver, NS, msgs)
    assert out is not None, node.diagnostic_state()


def test_points_published_in_the_lidar_frame_are_back_on_the_lidar_grid_plane(rig):
    node, driver = rig
    fqn = node.get_fully_qualified_name()
    assert driver.set_remote_parameters(fqn, {"target_frame": LIDAR, "cloud_decimation": 4})[0].successful
    try:
        out = exchange(driver, NS, completion_messages(SCENE, frame(3), FRAME, LIDAR), outputs=["depth/points"])
        assert out is not None, node.diagnostic_state()
        cloud = out["depth/points"]
        assert cloud.header.frame_id == LIDAR and (cloud.height, cloud.width) == (24, 40)
        arr = pointcloud2_to_array(cloud)
        ok = np.isfinite(arr["x"])
        # camera z = 10 m is LiDAR x = 10.27 m (the LiDAR sits 0.27 m behind the camera)
        np.testing.assert_allclose(np.median(arr["x"][ok]), 10.27, atol=0.05)
    finally:
        driver.set_remote_parameters(fqn, {"target_frame": "", "cloud_decimation": 1})


def test_a_cloud_with_a_scanner_ring_field_in_the_cameras_frame_is_never_taken_as_registered(rig):
    """A LiDAR cloud that another tool moved into the camera's frame reads as offset 0 from TF; its `ring` field
    says a scanner measured it, so the node hands the pipeline no offset (the engine always runs) and says why in
    /diagnostics. The same cloud without the field is taken as measured from the camera's viewpoint."""
    from depth_perception.ros.pointcloud import array_to_pointcloud2

    node, driver = rig
    pts = SCENE.lidar_points()
    cam = (T_CAM_LIDAR[:3, :3] @ pts[:, :3].T).T + T_CAM_LIDAR[:3, 3]  # already in the camera's frame
    for k, ring in ((4, True), (5, False)):
        msgs = completion_messages(SCENE, frame(k), FRAME, LIDAR)
        dtype = [("x", "f4"), ("y", "f4"), ("z", "f4")] + ([("ring", "u2")] if ring else [])
        arr = np.zeros(len(cam), dtype)
        arr["x"], arr["y"], arr["z"] = cam.T
        if ring:
            arr["ring"] = np.arange(len(cam)) % 64
        msgs["points"] = array_to_pointcloud2(arr, header=msgs["points"].header)
        msgs["points"].header.frame_id = FRAME
        frame_in = node.prepare(msgs)
        assert frame_in.args["sensor_offset_m"] == (None if ring else 0.0)
        out = exchange(driver, NS, msgs)
        assert out is not None, node.diagnostic_state()
        diag = node.extra_diagnostics()
        offset_key = "frame_offset_m" if ring else "sensor_offset_m"
        assert diag[offset_key] == 0.0 and diag.get("scanner_field") == ("ring" if ring else None), diag
        assert ("sensor_offset_m" in diag) != ring
        np.testing.assert_allclose(np.nanmedian(depth_image_to_numpy(out["depth"])), 10.0, atol=0.05)
