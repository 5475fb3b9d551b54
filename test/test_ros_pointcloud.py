"""sensor_msgs/PointCloud2 <-> numpy: every field layout round-trips, padding, organized clouds and big-endian data
read right, a depth image becomes depth_image_proc's organized xyz(rgb) cloud; equal to sensor_msgs_py if present."""
import array

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import PointCloud2, PointField

from depth_perception.geometry import PinholeCamera, backproject
from depth_perception.ros.pointcloud import (
    array_to_pointcloud2,
    depth_to_pointcloud2,
    pack_rgb,
    pointcloud2_to_array,
    pointcloud2_to_xyz,
    pointcloud2_to_xyzi,
    unpack_rgb,
)

FAST = settings(max_examples=50, deadline=None)
CAM = PinholeCamera(8, 6, 10.0, 12.0, 3.5, 2.5)
# Field layouts met in practice: name -> (numpy type, PointField datatype, count).
LAYOUTS = {
    "xyz": [("x", "f4", 7, 1), ("y", "f4", 7, 1), ("z", "f4", 7, 1)],
    "xyzi": [("x", "f4", 7, 1), ("y", "f4", 7, 1), ("z", "f4", 7, 1), ("intensity", "f4", 7, 1)],
    "xyzrgb": [("x", "f4", 7, 1), ("y", "f4", 7, 1), ("z", "f4", 7, 1), ("rgb", "f4", 7, 1)],
    "velodyne": [("x", "f4", 7, 1), ("y", "f4", 7, 1), ("z", "f4", 7, 1), ("intensity", "f4", 7, 1),
                 ("ring", "u2", 4, 1), ("time", "f8", 8, 1)],
    "mixed": [("x", "f8", 8, 1), ("y", "f8", 8, 1), ("z", "f8", 8, 1), ("label", "i1", 1, 1), ("flags", "u1", 2, 1),
              ("s", "i2", 3, 1), ("id", "i4", 5, 1), ("t", "u4", 6, 1), ("normal", "f4", 7, 3)],
}


@st.composite
def clouds(draw):
    """(structured array in native order, PointFields, point_step, shape) with gaps between and after fields."""
    layout = LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))]
    names, formats, offsets, fields, offset = [], [], [], [], 0
    for name, code, datatype, count in layout:
        offset += draw(st.integers(0, 3))  # a gap before the field
        names.append(name)
        formats.append(code if count == 1 else (code, (count,)))
        offsets.append(offset)
        fields.append(PointField(name=name, offset=offset, datatype=datatype, count=count))
        offset += np.dtype(code).itemsize * count
    point_step = offset + draw(st.integers(0, 8))
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    shape = draw(st.sampled_from([(draw(st.integers(1, 12)),), (draw(st.integers(2, 4)), draw(st.integers(1, 5)))]))
    values = {}
    for name, code, _, count in layout:
        kind = np.dtype(code)
        elements = st.floats(-1e5, 1e5, width=kind.itemsize * 8) if kind.kind == "f" else None
        values[name] = draw(hnp.arrays(kind, shape + ((count,) if count > 1 else ()), elements=elements))
    arr = np.zeros(shape, dtype)
    for name, v in values.items():
        arr[name] = v
    return arr, fields, point_step


def hand_built(arr, fields, point_step, bigendian=False, row_pad=0):
    """A PointCloud2 built byte by byte as another driver might send it."""
    wire = arr.astype(np.dtype({
        "names": arr.dtype.names,
        "formats": [arr.dtype.fields[n][0].newbyteorder(">" if bigendian else "<") for n in arr.dtype.names],
        "offsets": [arr.dtype.fields[n][1] for n in arr.dtype.names], "itemsize": point_step}))
    height, width = (arr.shape[0], arr.shape[1]) if arr.ndim == 2 else (1, arr.shape[0])
    rows = np.frombuffer(wire.tobytes(), np.uint8).reshape(height, width * point_step)
    rows = np.concatenate([rows, np.full((height, row_pad), 0xCD, np.uint8)], axis=1)
    return PointCloud2(height=height, width=width, fields=fields, is_bigendian=bigendian, point_step=point_step,
                       row_step=rows.shape[1], data=array.array("B", rows.tobytes()), is_dense=False)


def assert_same_cloud(a, b):
    assert a.shape == b.shape and a.dtype.names == b.dtype.names
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name])


@FAST
@given(cloud=clouds())
def test_every_field_layout_round_trips_through_a_message(cloud):
    arr, _, point_step = cloud
    msg = array_to_pointcloud2(arr)
    assert msg.point_step == point_step and msg.row_step * msg.height == len(msg.data)
    assert_same_cloud(pointcloud2_to_array(msg), arr)


@FAST
@given(cloud=clouds(), bigendian=st.booleans(), row_pad=st.integers(0, 9))
def test_big_endian_and_padded_clouds_read_as_the_same_points(cloud, bigendian, row_pad):
    arr, fields, point_step = cloud
    back = pointcloud2_to_array(hand_built(arr, fields, point_step, bigendian, row_pad))
    assert all(back.dtype.fields[n][0].base.isnative for n in back.dtype.names)
    assert_same_cloud(back, arr)


def test_native_clouds_read_as_views_of_the_message():
    arr = np.zeros(5, LAYOUTS_DTYPE := np.dtype([("x", "f4"), ("y", "f4"), ("z", "f4")]))
    arr["x"] = np.arange(5)
    msg = array_to_pointcloud2(arr)
    view = pointcloud2_to_array(msg)
    assert view.dtype == LAYOUTS_DTYPE and np.shares_memory(view, np.frombuffer(msg.data, np.uint8))


def test_xyz_and_xyzi_drop_points_with_nan_unless_asked_not_to():
    arr = np.zeros(3, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")])
    arr["x"], arr["z"], arr["intensity"] = [1, np.nan, 3], [4, 5, 6], [0.1, 0.2, 0.3]
    msg = array_to_pointcloud2(arr)
    assert not msg.is_dense
    np.testing.assert_array_equal(pointcloud2_to_xyz(msg), [[1, 0, 4], [3, 0, 6]])
    assert pointcloud2_to_xyz(msg, skip_nans=False).shape == (3, 3)
    np.testing.assert_allclose(pointcloud2_to_xyzi(msg)[:, 3], [0.1, 0.3])


def test_a_missing_field_is_named():
    msg = array_to_pointcloud2(np.zeros(2, [("x", "f4"), ("y", "f4"), ("z", "f4")]))
    with pytest.raises(ValueError, match="'intensity'"):
        pointcloud2_to_xyzi(msg)


def test_an_empty_cloud_reads_as_no_points():
    msg = array_to_pointcloud2(np.zeros(0, [("x", "f4"), ("y", "f4"), ("z", "f4")]))
    assert pointcloud2_to_xyz(msg).shape == (0, 3)


def _good():
    return array_to_pointcloud2(np.zeros(4, [("x", "f4"), ("y", "f4"), ("z", "f4")]))


def test_bad_clouds_are_refused_naming_the_field():
    msg = _good()
    msg.fields[2].datatype = 42
    with pytest.raises(ValueError, match="'z' has unknown datatype 42"):
        pointcloud2_to_array(msg)
    msg = _good()
    msg.fields[2].offset = 10
    with pytest.raises(ValueError, match="'z'.*point_step=12"):
        pointcloud2_to_array(msg)
    msg = _good()
    msg.data = array.array("B", bytes(47))
    with pytest.raises(ValueError, match="47 bytes"):
        pointcloud2_to_array(msg)
    msg = _good()
    msg.row_step = 40
    with pytest.raises(ValueError, match="row_step=40"):
        pointcloud2_to_array(msg)
    msg = _good()
    msg.point_step = 0
    with pytest.raises(ValueError, match="point_step"):
        pointcloud2_to_array(msg)


def test_depth_becomes_an_organized_cloud_with_nan_where_depth_is_unknown():
    depth = np.full(CAM.shape, 4.0, np.float32)
    depth[0, 0], depth[1, 1], depth[2, 2], depth[3, 3] = np.nan, 0.0, -2.0, np.inf
    msg = depth_to_pointcloud2(depth, CAM)
    assert (msg.height, msg.width, msg.point_step) == (6, 8, 12) and not msg.is_dense
    assert [f.name for f in msg.fields] == ["x", "y", "z"]
    cloud = pointcloud2_to_array(msg)
    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], -1)
    bad = np.zeros(CAM.shape, bool)
    bad[[0, 1, 2, 3], [0, 1, 2, 3]] = True
    assert np.isnan(xyz[bad]).all()
    np.testing.assert_array_equal(xyz[~bad], backproject(np.full(CAM.shape, 4.0, np.float32), CAM)[~bad])
    assert depth_to_pointcloud2(np.ones(CAM.shape, np.float32), CAM).is_dense


def test_rgb_is_packed_as_depth_image_proc_does():
    rgb = np.zeros(CAM.shape + (3,), np.uint8)
    rgb[2, 3] = (255, 128, 1)
    msg = depth_to_pointcloud2(np.ones(CAM.shape, np.float32), CAM, rgb=rgb)
    rgb_field = next(f for f in msg.fields if f.name == "rgb")
    assert rgb_field.datatype == PointField.FLOAT32
    raw = np.frombuffer(msg.data, np.uint8).reshape(6, 8, msg.point_step)
    # depth_image_proc writes b, g, r at the field's bytes 0, 1, 2 (little-endian 0x00RRGGBB), leaving byte 3 zero.
    assert list(raw[2, 3, rgb_field.offset:rgb_field.offset + 4]) == [1, 128, 255, 0]
    cloud = pointcloud2_to_array(msg)
    assert cloud["rgb"][2:3, 3:4].view(np.uint32)[0, 0] == 0x00FF8001
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), rgb)


@FAST
@given(rgb=hnp.arrays(np.uint8, st.tuples(st.integers(1, 5), st.integers(1, 5), st.just(3))))
def test_packed_rgb_unpacks_to_the_same_colours(rgb):
    np.testing.assert_array_equal(unpack_rgb(pack_rgb(rgb)), rgb)


def test_the_compiled_cloud_writer_and_its_numpy_twin_write_the_same_bytes():
    from depth_perception.geometry import compiled, projection

    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 90, CAM.shape).astype(np.float32)
    depth[0, :4] = (np.nan, 0.0, -1.0, np.inf)
    rgb = rng.integers(0, 256, CAM.shape + (3,), dtype=np.uint8)
    rx, ry = projection.pixel_rays(CAM)
    for colour, channels in ((rgb, 4), (np.zeros((0, 0, 3), np.uint8), 3)):
        outs = [np.full(CAM.shape + (channels,), 7.0, np.float32) for _ in range(2)]
        counts = [projection._cloud_into_loops(depth, rx, ry, colour, outs[0]),
                  projection._cloud_into_numpy(depth, rx, ry, colour, outs[1])]
        if compiled.NUMBA:  # and the compiled kernel itself
            outs.append(np.full(CAM.shape + (channels,), 7.0, np.float32))
            counts.append(projection._cloud_into(depth, rx, ry, colour, outs[2]))
        assert counts == [depth.size - 4] * len(counts)
        for out in outs[1:]:
            np.testing.assert_array_equal(out.view(np.uint32), outs[0].view(np.uint32))


def test_the_header_of_a_serialized_message_reads_without_deserializing_it():
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    from depth_perception.ros.node_driver import serialized_header

    msg = depth_to_pointcloud2(np.ones(CAM.shape, np.float32), CAM)
    msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec = "camera_color_left", 1_700_000_123, 999
    for m in (msg, Image(header=msg.header), Image()):
        assert serialized_header(serialize_message(m)) == m.header
    with pytest.raises(ValueError, match="not a CDR"):
        serialized_header(b"\x01\x02" + bytes(20))
    with pytest.raises(ValueError, match="overruns"):
        serialized_header(serialize_message(msg)[:20])


def test_decimation_keeps_every_nth_pixel_on_its_own_ray():
    depth = np.random.default_rng(1).uniform(1, 9, CAM.shape).astype(np.float32)
    msg = depth_to_pointcloud2(depth, CAM, decimation=2)
    cloud = pointcloud2_to_array(msg)
    assert cloud.shape == (3, 4)
    full = backproject(depth, CAM)[::2, ::2]
    np.testing.assert_allclose(np.stack([cloud["x"], cloud["y"], cloud["z"]], -1), full, rtol=1e-6)
    with pytest.raises(ValueError, match="decimation"):
        depth_to_pointcloud2(depth, CAM, decimation=0)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="does not match camera"):
        depth_to_pointcloud2(np.ones((5, 8), np.float32), CAM)
    with pytest.raises(ValueError, match="rgb"):
        depth_to_pointcloud2(np.ones(CAM.shape, np.float32), CAM, rgb=np.zeros((6, 8, 3), np.float32))


def test_matches_sensor_msgs_py():
    pc2 = pytest.importorskip("sensor_msgs_py.point_cloud2")
    arr = np.zeros(4, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4")])
    for k, name in enumerate(arr.dtype.names):
        arr[name] = np.arange(4) * (k + 1)
    arr["y"][1] = np.nan
    ours = array_to_pointcloud2(arr)
    theirs = pc2.create_cloud(ours.header, ours.fields, [tuple(p) for p in arr])
    assert bytes(ours.data) == bytes(theirs.data)
    np.testing.assert_array_equal(pointcloud2_to_xyz(theirs),
                                  pc2.read_points_numpy(theirs, field_names=("x", "y", "z"), skip_nans=True))
