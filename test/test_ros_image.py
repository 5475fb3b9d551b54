"""sensor_msgs/Image <-> numpy: every encoding round-trips, byte order and row padding are honoured, bad input
is refused naming the field; equal to cv_bridge where it is installed."""
import array
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import Image

from depth_perception.ros.image import (
    depth_image_to_numpy,
    depth_to_image,
    encoding_layout,
    image_to_numpy,
    image_to_rgb,
    numpy_to_image,
)

ENCODINGS = {
    "mono8": (np.uint8, 1), "mono16": (np.uint16, 1), "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4), "8UC1": (np.uint8, 1), "8UC3": (np.uint8, 3),
    "16UC1": (np.uint16, 1), "32FC1": (np.float32, 1),
}
FAST = settings(max_examples=50, deadline=None)


def arrays_for(encoding):
    dtype, channels = ENCODINGS[encoding]
    shape = st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda hw: hw if channels == 1 else hw + (channels,))
    elements = st.floats(-1e6, 1e6, width=32, allow_nan=False) if dtype == np.float32 else None
    return hnp.arrays(dtype, shape, elements=elements)


def hand_built(arr, encoding, bigendian, pad):
    """An Image as another driver might send it: chosen byte order and `pad` bytes after each row."""
    wire = arr.astype(arr.dtype.newbyteorder(">" if bigendian else "<"))
    rows = wire.reshape(arr.shape[0], -1).view(np.uint8).reshape(arr.shape[0], -1)
    padded = np.concatenate([rows, np.full((arr.shape[0], pad), 0xAB, np.uint8)], axis=1)
    return Image(height=arr.shape[0], width=arr.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                 step=padded.shape[1], data=array.array("B", padded.tobytes()))


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_encoding_round_trips_through_a_message(encoding):
    @FAST
    @given(arr=arrays_for(encoding))
    def check(arr):
        msg = numpy_to_image(arr, encoding)
        assert (msg.height, msg.width, msg.encoding) == (arr.shape[0], arr.shape[1], encoding)
        assert msg.step * msg.height == len(msg.data)
        back = image_to_numpy(msg)
        assert back.dtype == arr.dtype and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)

    check()


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_big_endian_and_padded_rows_read_as_the_same_pixels(encoding):
    @FAST
    @given(arr=arrays_for(encoding), bigendian=st.booleans(), pad=st.integers(0, 7))
    def check(arr, bigendian, pad):
        back = image_to_numpy(hand_built(arr, encoding, bigendian, pad))
        assert back.dtype.isnative
        np.testing.assert_array_equal(back, arr)

    check()


def test_native_order_reads_are_views_of_the_message_even_with_row_padding():
    arr = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    msg = hand_built(arr, "rgb8", bigendian=False, pad=3)
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(view, arr)


def test_written_messages_use_native_order_and_no_padding():
    msg = numpy_to_image(np.zeros((3, 4), np.uint16), "16UC1")
    assert msg.step == 8 and msg.is_bigendian == int(sys.byteorder == "big")


def test_colour_encodings_convert_to_rgb():
    rgb = np.array([[[10, 20, 30], [40, 50, 60]]], np.uint8)
    assert np.array_equal(image_to_rgb(numpy_to_image(rgb, "rgb8")), rgb)
    assert np.array_equal(image_to_rgb(numpy_to_image(rgb[..., ::-1].copy(), "bgr8")), rgb)
    rgba = np.concatenate([rgb, np.full((1, 2, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb(numpy_to_image(rgba, "rgba8")), rgb)
    bgra = np.concatenate([rgb[..., ::-1], np.full((1, 2, 1), 255, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb(numpy_to_image(bgra, "bgra8")), rgb)
    grey = np.array([[7, 200]], np.uint8)
    assert np.array_equal(image_to_rgb(numpy_to_image(grey, "mono8")), np.repeat(grey[..., None], 3, 2))
    assert np.array_equal(image_to_rgb(numpy_to_image(grey.astype(np.uint16) * 256, "mono16")),
                          np.repeat(grey[..., None], 3, 2))


def test_a_depth_image_is_not_a_colour_image():
    with pytest.raises(ValueError, match="32FC1"):
        image_to_rgb(numpy_to_image(np.zeros((2, 2), np.float32), "32FC1"))


def test_16uc1_millimetres_read_as_metres_with_zero_unknown():
    msg = numpy_to_image(np.array([[0, 1500, 65535]], np.uint16), "16UC1")
    depth = depth_image_to_numpy(msg)
    assert depth.dtype == np.float32 and np.isnan(depth[0, 0])
    np.testing.assert_allclose(depth[0, 1:], [1.5, 65.535], rtol=1e-6)


def test_depth_writes_millimetres_with_unknown_and_out_of_range_as_zero():
    depth = np.array([[np.nan, 1.2344, -1.0, 70.0, np.inf, 0.0005]], np.float32)
    msg = depth_to_image(depth, "16UC1")
    np.testing.assert_array_equal(image_to_numpy(msg), [[0, 1234, 0, 0, 0, 1]])
    metres = depth_to_image(depth, "32FC1")
    np.testing.assert_array_equal(depth_image_to_numpy(metres), depth)


@FAST
@given(depth=hnp.arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 6)),
                        elements=st.floats(0.0625, 65.0, width=32)))
def test_depth_round_trips_through_16uc1_to_the_millimetre(depth):
    back = depth_image_to_numpy(depth_to_image(depth, "16UC1"))
    np.testing.assert_allclose(back, depth, atol=0.0005 + 1e-6)


@pytest.mark.parametrize("field,msg,pattern", [
    ("encoding", Image(height=1, width=1, encoding="yuv422_yuy2", step=2, data=[0, 0]), "yuv422_yuy2"),
    ("height", Image(height=0, width=4, encoding="mono8", step=4, data=[]), "height=0"),
    ("step", Image(height=1, width=4, encoding="rgb8", step=6, data=[0] * 6), "step=6"),
    ("data", Image(height=2, width=2, encoding="mono8", step=2, data=[0] * 5), "5 bytes"),
])
def test_bad_images_are_refused_naming_the_field(field, msg, pattern):
    with pytest.raises(ValueError, match=pattern):
        image_to_numpy(msg)


def test_writing_refuses_an_array_that_does_not_fit_the_encoding():
    with pytest.raises(ValueError, match="float64"):
        numpy_to_image(np.zeros((2, 2)), "32FC1")
    with pytest.raises(ValueError, match="channel"):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), "mono8")
    with pytest.raises(ValueError, match="zero size"):
        numpy_to_image(np.zeros((0, 2), np.uint8), "mono8")
    with pytest.raises(ValueError, match="'32FC3x'"):
        encoding_layout("32FC3x")


def test_generic_opencv_encodings_are_understood():
    assert encoding_layout("16SC1") == (np.dtype(np.int16), 1)
    assert encoding_layout("64FC1") == (np.dtype(np.float64), 1)
    arr = np.array([[-3, 4]], np.int16)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(arr, "16SC1")), arr)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_matches_cv_bridge(encoding):
    cv_bridge = pytest.importorskip("cv_bridge")
    bridge = cv_bridge.CvBridge()
    dtype, channels = ENCODINGS[encoding]
    arr = (np.random.default_rng(0).random((5, 7, channels)[: 2 if channels == 1 else 3]) * 200).astype(dtype)
    ours = numpy_to_image(arr, encoding)
    theirs = bridge.cv2_to_imgmsg(arr, encoding=encoding)
    assert (ours.height, ours.width, ours.step, bytes(ours.data)) == (
        theirs.height, theirs.width, theirs.step, bytes(theirs.data))
    np.testing.assert_array_equal(image_to_numpy(theirs), bridge.imgmsg_to_cv2(theirs))


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8", "mono8"])
def test_converted_colour_images_are_packed_arrays_opencv_accepts(encoding):
    dtype, channels = ENCODINGS[encoding]
    arr = np.zeros((3, 4, channels)[: 2 if channels == 1 else 3], dtype)
    rgb = image_to_rgb(numpy_to_image(arr, encoding))
    assert rgb.flags.c_contiguous and rgb.shape == (3, 4, 3)
