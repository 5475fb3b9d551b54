"""Real rclpy publish/subscribe between two nodes of the messages we build: Image, CameraInfo, PointCloud2 and
TFMessage arrive intact, and TfListener fills its buffer from /tf and the latched /tf_static."""
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402

from depth_perception.geometry import PinholeCamera  # noqa: E402
from depth_perception.geometry.se3 import axis_angle_to_matrix, make_transform  # noqa: E402
from depth_perception.ros.camera_info import camera_info_to_model, pinhole_to_camera_info  # noqa: E402
from depth_perception.ros.image import depth_image_to_numpy, depth_to_image, image_to_rgb, numpy_to_image  # noqa: E402
from depth_perception.ros.pointcloud import depth_to_pointcloud2, pointcloud2_to_array, unpack_rgb  # noqa: E402
from depth_perception.ros.qos import output_qos, qos_from_params, sensor_qos, tf_static_qos  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ros]
TFMessage = pytest.importorskip("tf2_msgs.msg").TFMessage
from depth_perception.ros.tf import TfListener, matrix_to_transform_stamped  # noqa: E402

CAM = PinholeCamera(64, 32, 50.0, 50.0, 31.5, 15.5)


@pytest.fixture
def ros():
    """A private context with a talker and a listener node and an executor spinning both."""
    ctx = Context()
    rclpy.init(context=ctx)
    talker = rclpy.create_node("dp_test_talker", context=ctx)
    listener = rclpy.create_node("dp_test_listener", context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(talker)
    executor.add_node(listener)
    yield talker, listener, executor
    executor.shutdown()
    talker.destroy_node()
    listener.destroy_node()
    rclpy.try_shutdown(context=ctx)


def spin_until(executor, done, timeout_s=5.0, every=None):
    """Spin until done() is true; `every` (publish again) runs each 0.1 s while discovery settles."""
    deadline = time.monotonic() + timeout_s
    last = 0.0
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("nothing arrived in time")
        if every is not None and time.monotonic() - last > 0.1:
            every()
            last = time.monotonic()
        executor.spin_once(timeout_sec=0.02)


def test_image_camera_info_and_cloud_arrive_intact(ros):
    talker, listener, executor = ros
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, CAM.shape + (3,), dtype=np.uint8)
    depth = rng.uniform(0.5, 40.0, CAM.shape).astype(np.float32)
    depth[3, 4] = np.nan
    got = {}
    for topic, cls in (("image", Image), ("depth", Image), ("camera_info", CameraInfo), ("points", PointCloud2)):
        listener.create_subscription(cls, topic, lambda m, t=topic: got.__setitem__(t, m), sensor_qos("reliable", 5))
    pubs = {t: talker.create_publisher(c, t, output_qos()) for t, c in
            (("image", Image), ("depth", Image), ("camera_info", CameraInfo), ("points", PointCloud2))}
    header = Image().header
    header.frame_id = "camera_color_left"
    header.stamp.sec, header.stamp.nanosec = 7, 250
    msgs = {
        "image": numpy_to_image(rgb[..., ::-1].copy(), "bgr8", header),
        "depth": depth_to_image(depth, "32FC1", header),
        "camera_info": pinhole_to_camera_info(CAM, header),
        "points": depth_to_pointcloud2(depth, CAM, header, rgb=rgb),
    }

    def publish():
        for topic, msg in msgs.items():
            if topic not in got:
                pubs[topic].publish(msg)

    spin_until(executor, lambda: len(got) == 4, every=publish)
    assert got["image"].header.frame_id == "camera_color_left" and got["image"].header.stamp.nanosec == 250
    np.testing.assert_array_equal(image_to_rgb(got["image"]), rgb)
    np.testing.assert_array_equal(depth_image_to_numpy(got["depth"]), depth)
    assert camera_info_to_model(got["camera_info"]).pinhole() == CAM
    cloud = pointcloud2_to_array(got["points"])
    assert cloud.shape == CAM.shape and not got["points"].is_dense
    np.testing.assert_array_equal(cloud["z"], depth)
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), rgb)


def test_tf_listener_gets_static_transforms_sent_before_it_started_and_dynamic_ones(ros):
    talker, listener, executor = ros
    T_base_cam = make_transform(axis_angle_to_matrix([0.1, -0.2, 0.3]), [0.3, 0.0, 1.6])
    static_pub = talker.create_publisher(TFMessage, "/tf_static", tf_static_qos())
    static_pub.publish(TFMessage(transforms=[matrix_to_transform_stamped(T_base_cam, "base_link", "camera", 0)]))
    executor.spin_once(timeout_sec=0.05)

    tf = TfListener(listener)
    static_sub = next(s for s in listener.subscriptions if s.topic_name == "/tf_static")
    assert static_sub.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert static_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    spin_until(executor, lambda: tf.can_transform("base_link", "camera"))  # latched: no second publish
    np.testing.assert_allclose(tf.lookup("base_link", "camera"), T_base_cam, atol=1e-12)

    tf_pub = talker.create_publisher(TFMessage, "/tf", output_qos(100))
    odom = [make_transform(axis_angle_to_matrix([0, 0, 0.2 * k]), [k, 0, 0]) for k in range(2)]
    stamps = [1_000_000_000, 2_000_000_000]
    msg = TFMessage(transforms=[matrix_to_transform_stamped(T, "odom", "base_link", s)
                                for T, s in zip(odom, stamps, strict=True)])
    spin_until(executor, lambda: tf.can_transform("odom", "camera", stamps[1]), every=lambda: tf_pub.publish(msg))
    np.testing.assert_allclose(tf.lookup("odom", "camera", stamps[1]), odom[1] @ T_base_cam, atol=1e-9)
    mid = tf.lookup("odom", "base_link", 1_500_000_000)
    np.testing.assert_allclose(mid[:3, 3], [0.5, 0, 0], atol=1e-12)
    with pytest.raises(LookupError, match="outside"):
        tf.lookup("odom", "camera", 3_000_000_000)
    tf.destroy()
    assert not [s for s in listener.subscriptions if s.topic_name in ("/tf", "/tf_static")]


def test_qos_profiles_follow_the_design():
    assert sensor_qos().reliability == ReliabilityPolicy.BEST_EFFORT and sensor_qos().depth == 5
    assert output_qos().reliability == ReliabilityPolicy.RELIABLE
    assert qos_from_params("reliable", 3).reliability == ReliabilityPolicy.RELIABLE
    assert qos_from_params("RELIABLE", 3).depth == 3
    with pytest.raises(ValueError, match="'fast'"):
        qos_from_params("fast", 5)
    with pytest.raises(ValueError, match="depth"):
        qos_from_params("reliable", 0)
