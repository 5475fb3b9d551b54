"""sensor_msgs/CameraInfo <-> CameraModel: every field survives, the rectified camera comes from P with ROI and
binning applied, bad messages are refused naming the field."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import CameraInfo

from depth_perception.geometry import PinholeCamera
from depth_perception.ros.camera_info import (
    CameraModel,
    Roi,
    camera_info_to_model,
    model_to_camera_info,
    pinhole_to_camera_info,
)

# KITTI raw 2011_09_26 colour camera 2, rectified: P_rect_02.
P_RECT_02 = np.array([[721.5377, 0.0, 609.5593, 44.85728], [0.0, 721.5377, 172.854, 0.2163791],
                      [0.0, 0.0, 1.0, 0.002745884]])
finite = st.floats(-1e4, 1e4, allow_nan=False)


@st.composite
def models(draw):
    model_name, n = draw(st.sampled_from([("plumb_bob", 5), ("rational_polynomial", 8), ("equidistant", 4),
                                          ("plumb_bob", 0)]))
    K = np.array(draw(st.lists(finite, min_size=9, max_size=9))).reshape(3, 3)
    return CameraModel(
        width=draw(st.integers(1, 4096)), height=draw(st.integers(1, 4096)), K=K,
        D=np.array(draw(st.lists(finite, min_size=n, max_size=n))),
        R=np.array(draw(st.lists(finite, min_size=9, max_size=9))).reshape(3, 3),
        P=np.array(draw(st.lists(finite, min_size=12, max_size=12))).reshape(3, 4),
        distortion_model=model_name, binning_x=draw(st.integers(0, 4)), binning_y=draw(st.integers(0, 4)),
        roi=Roi(*draw(st.tuples(*[st.integers(0, 2000)] * 4)), do_rectify=draw(st.booleans())),
    )


@settings(max_examples=50, deadline=None)
@given(model=models())
def test_every_field_round_trips_through_a_camera_info(model):
    msg = model_to_camera_info(model)
    assert isinstance(msg, CameraInfo)
    assert camera_info_to_model(msg) == model


def test_the_rectified_camera_comes_from_p():
    model = CameraModel(1242, 375, K=np.eye(3) * 5, P=P_RECT_02)
    cam = model.pinhole()
    assert cam == PinholeCamera(1242, 375, 721.5377, 721.5377, 609.5593, 172.854)


def test_roi_then_binning_give_the_camera_of_the_received_pixels():
    model = CameraModel(1242, 375, K=P_RECT_02[:, :3], P=P_RECT_02, binning_x=2, binning_y=2,
                        roi=Roi(x_offset=100, y_offset=50, height=300, width=1000))
    cam = model.pinhole()
    assert (cam.width, cam.height) == (500, 150)
    assert cam.fx == pytest.approx(721.5377 / 2) and cam.cx == pytest.approx((609.5593 - 100) / 2)
    assert cam.cy == pytest.approx((172.854 - 50) / 2)


def test_an_uncalibrated_p_falls_back_to_k():
    K = np.array([[500.0, 0, 320], [0, 510, 240], [0, 0, 1]])
    assert CameraModel(640, 480, K=K).pinhole() == PinholeCamera(640, 480, 500, 510, 320, 240)


def test_a_pinhole_camera_becomes_an_undistorted_camera_info_and_back():
    cam = PinholeCamera(64, 32, 50.0, 52.0, 31.5, 15.5)
    msg = pinhole_to_camera_info(cam)
    assert msg.distortion_model == "plumb_bob" and list(msg.d) == [0.0] * 5
    np.testing.assert_array_equal(np.asarray(msg.r).reshape(3, 3), np.eye(3))
    assert camera_info_to_model(msg).pinhole() == cam


def test_header_is_kept():
    msg = CameraInfo()
    msg.header.frame_id = "camera_color_left"
    msg.header.stamp.sec = 12
    out = pinhole_to_camera_info(PinholeCamera(8, 6, 5.0, 5.0, 4.0, 3.0), msg.header)
    assert out.header.frame_id == "camera_color_left" and out.header.stamp.sec == 12


def test_bad_camera_infos_are_refused_naming_the_field():
    msg = pinhole_to_camera_info(PinholeCamera(8, 6, 5.0, 5.0, 4.0, 3.0))
    msg.width = 0
    with pytest.raises(ValueError, match="width=0"):
        camera_info_to_model(msg)
    msg = pinhole_to_camera_info(PinholeCamera(8, 6, 5.0, 5.0, 4.0, 3.0))
    msg.d = [0.1, 0.2, 0.3]
    with pytest.raises(ValueError, match="D has 3 coefficients.*plumb_bob"):
        camera_info_to_model(msg)
    msg = CameraInfo(width=8, height=6)
    with pytest.raises(ValueError, match="focal length"):
        camera_info_to_model(msg).pinhole()
