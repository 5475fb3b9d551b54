"""sensor_msgs/PointCloud2 <-> numpy structured arrays; depth image -> organized xyz / xyzrgb cloud.

A cloud's fields become the structured dtype's fields at their offsets, with `point_step` as the item size, so
padding between and after fields is kept and a native-order cloud is read as a view of the message buffer
(row padding, `row_step > width * point_step`, goes into the strides). Organized clouds (height > 1) read as
(H, W), unorganized ones as (N,). An empty cloud (no points) is valid ROS and reads as an empty array.

Colour is packed as depth_image_proc writes it (point_cloud_xyzrgb): one float32 field `rgb` whose bits are the
uint32 0x00RRGGBB. Our clouds are compact: x, y, z at offsets 0, 4, 8 and rgb at 12 (point_step 12 or 16);
readers find fields by name, so this reads everywhere depth_image_proc's 32-byte PCL layout does.
"""
from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np
from sensor_msgs.msg import PointCloud2, PointField

from ..geometry.camera import PinholeCamera
from ..geometry.projection import backproject_into
from .image import data_buffer, set_uint8_data

_DATATYPES: dict[int, np.dtype] = {
    PointField.INT8: np.dtype("i1"), PointField.UINT8: np.dtype("u1"),
    PointField.INT16: np.dtype("i2"), PointField.UINT16: np.dtype("u2"),
    PointField.INT32: np.dtype("i4"), PointField.UINT32: np.dtype("u4"),
    PointField.FLOAT32: np.dtype("f4"), PointField.FLOAT64: np.dtype("f8"),
}
_DATATYPE_OF = {dt: code for code, dt in _DATATYPES.items()}
_NATIVE_BIG = sys.byteorder == "big"


def fields_to_dtype(fields: Any, point_step: int, is_bigendian: bool = False) -> np.dtype:
    """PointField list -> structured dtype with the fields' offsets and itemsize point_step (byte order as given)."""
    if point_step <= 0:
        raise ValueError(f"point_step must be positive, got {point_step}")
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for f in fields:
        if f.datatype not in _DATATYPES:
            raise ValueError(f"point field {f.name!r} has unknown datatype {f.datatype}")
        if f.name in names:
            raise ValueError(f"point field {f.name!r} appears twice")
        base = _DATATYPES[f.datatype].newbyteorder(order)
        count = max(int(f.count), 1)
        if f.offset + base.itemsize * count > point_step:
            raise ValueError(
                f"point field {f.name!r} (offset {f.offset}, {count} x {base.itemsize} B) does not fit in "
                f"point_step={point_step}"
            )
        names.append(f.name)
        formats.append(base if count == 1 else (base, (count,)))
        offsets.append(int(f.offset))
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": int(point_step)})


def pointcloud2_to_array(msg: PointCloud2) -> np.ndarray:
    """PointCloud2 -> structured array, (H, W) organized or (N,); a view into `msg.data` in native byte order.

    ValueError names the field: unknown datatype, a field outside point_step, a row_step shorter than a row,
    or data whose length is not height * row_step.
    """
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    wire = fields_to_dtype(msg.fields, point_step, bool(msg.is_bigendian))
    raw = np.frombuffer(data_buffer(msg.data), dtype=np.uint8)
    if height * width == 0:
        if raw.size:
            raise ValueError(f"cloud of height={height} width={width} has {raw.size} bytes of data")
        return np.zeros((height, width) if height > 1 else (width,), dtype=_native(wire))
    if row_step < width * point_step:
        raise ValueError(f"row_step={row_step} is shorter than width * point_step = {width} * {point_step}")
    if raw.size != height * row_step:
        raise ValueError(
            f"cloud data has {raw.size} bytes, expected height * row_step = {height} * {row_step} = {height * row_step}"
        )
    if height > 1:
        out = np.ndarray((height, width), dtype=wire, buffer=raw, strides=(row_step, point_step))
    else:
        out = np.ndarray((width,), dtype=wire, buffer=raw, strides=(point_step,))
    native = _native(wire)
    return out if native == wire else out.astype(native)


def _native(dtype: np.dtype) -> np.dtype:
    """The same structured layout with every field in native byte order."""
    fields = dtype.fields or {}
    return np.dtype({
        "names": list(fields),
        "formats": [fields[n][0].newbyteorder("=") if fields[n][0].subdtype is None
                    else (fields[n][0].subdtype[0].newbyteorder("="), fields[n][0].subdtype[1]) for n in fields],
        "offsets": [fields[n][1] for n in fields],
        "itemsize": dtype.itemsize,
    })


def _columns(msg: PointCloud2, names: tuple[str, ...], skip_nans: bool) -> np.ndarray:
    cloud = pointcloud2_to_array(msg).reshape(-1)
    available = cloud.dtype.names or ()
    for name in names:
        if name not in available:
            raise ValueError(f"point cloud has no field {name!r} (fields: {', '.join(available) or 'none'})")
    columns = [cloud[name] for name in names]
    keep = None
    if skip_nans:
        # Column by column: a NaN test across the short axis of an (N, 3) array is ten times slower.
        bad = np.zeros(cloud.shape[0], dtype=bool)
        for column in columns:
            if column.dtype.kind == "f":
                bad |= np.isnan(column)
        keep = np.flatnonzero(~bad) if bad.any() else None
    n = cloud.shape[0] if keep is None else keep.size
    out = np.empty((n, len(names)), dtype=np.float32)
    for k, column in enumerate(columns):
        out[:, k] = column if keep is None else column[keep]
    return out


def _point_fields(dtype: np.dtype) -> list[PointField]:
    """Structured dtype -> PointField list; ValueError naming a field PointCloud2 cannot carry."""
    fields = []
    for name in dtype.names:
        ftype, offset = dtype.fields[name][:2]
        base, shape = (ftype.subdtype[0], ftype.subdtype[1]) if ftype.subdtype else (ftype, ())
        code = _DATATYPE_OF.get(base.newbyteorder("<"))
        if code is None or len(shape) > 1:
            raise ValueError(f"field {name!r} has dtype {ftype}, which PointCloud2 cannot carry")
        fields.append(PointField(name=name, offset=int(offset), datatype=code, count=int(shape[0]) if shape else 1))
    return fields


def pointcloud2_to_xyz(msg: PointCloud2, skip_nans: bool = True) -> np.ndarray:
    """PointCloud2 -> float32 (N, 3) x, y, z; points with a NaN coordinate dropped unless skip_nans=False."""
    return _columns(msg, ("x", "y", "z"), skip_nans)


def pointcloud2_to_xyzi(msg: PointCloud2, skip_nans: bool = True) -> np.ndarray:
    """PointCloud2 -> float32 (N, 4) x, y, z, intensity (the LiDAR layout KITTI velodyne .bin files hold)."""
    return _columns(msg, ("x", "y", "z", "intensity"), skip_nans)


def array_to_pointcloud2(structured: np.ndarray, header: Any = None, is_dense: bool | None = None) -> PointCloud2:
    """Structured array (N,) or (H, W) -> PointCloud2 in native byte order (one copy); field offsets and padding kept.

    `is_dense` (no invalid points) is computed from the x, y, z fields when not given.
    """
    arr = np.asarray(structured)
    if arr.dtype.names is None:
        raise ValueError(f"array must be a structured array with named fields, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2):
        raise ValueError(f"array must be (N,) or (H, W), got shape {arr.shape}")
    native = _native(arr.dtype)
    arr = np.ascontiguousarray(arr, dtype=native)  # copies only for a non-native or non-contiguous input
    msg, _ = _empty_cloud(native, arr.shape, header)
    if arr.size:
        np.frombuffer(msg.data, dtype=np.uint8)[:] = arr.view(np.uint8).reshape(-1)
    if is_dense is None:
        is_dense = all(bool(np.isfinite(arr[n]).all()) for n in ("x", "y", "z") if n in native.names)
    msg.is_dense = bool(is_dense)
    return msg


XYZ_DTYPE = np.dtype({"names": ["x", "y", "z"], "formats": ["f4"] * 3, "offsets": [0, 4, 8], "itemsize": 12})
XYZRGB_DTYPE = np.dtype({"names": ["x", "y", "z", "rgb"], "formats": ["f4"] * 4, "offsets": [0, 4, 8, 12],
                         "itemsize": 16})


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> float32 (...) whose bits are 0x00RRGGBB, as depth_image_proc and PCL pack colour."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    packed = rgb[..., 0].astype(np.uint32) << 16
    packed |= rgb[..., 1].astype(np.uint32) << 8
    packed |= rgb[..., 2]
    return packed.view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """The inverse of pack_rgb: float32 (...) -> uint8 (..., 3)."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(np.uint8)


def depth_to_pointcloud2(
    depth_m: np.ndarray,
    camera: PinholeCamera,
    header: Any = None,
    rgb: np.ndarray | None = None,
    decimation: int = 1,
) -> PointCloud2:
    """Depth (H, W) metres -> organized cloud (H/d, W/d) of float32 x, y, z (+ packed rgb), NaN where depth is
    unknown (NaN, inf, <= 0), in the camera's optical frame, as depth_image_proc's point_cloud_xyz(rgb)."""
    depth = np.asarray(depth_m)
    if depth.shape != camera.shape:
        raise ValueError(f"depth shape {depth.shape} does not match camera {camera.shape}")
    if int(decimation) != decimation or decimation < 1:
        raise ValueError(f"decimation must be a positive integer, got {decimation}")
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != camera.shape + (3,) or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be uint8 {camera.shape + (3,)}, got {rgb.dtype} {rgb.shape}")
    d = int(decimation)
    if d > 1:
        # Pixel (u', v') of the decimated grid is pixel (d u', d v'): the same rays through a camera scaled by 1/d.
        depth = depth[::d, ::d]
        rgb = rgb[::d, ::d] if rgb is not None else None
        camera = PinholeCamera(depth.shape[1], depth.shape[0], camera.fx / d, camera.fy / d, camera.cx / d,
                               camera.cy / d)
    msg, cloud = _empty_cloud(XYZRGB_DTYPE if rgb is not None else XYZ_DTYPE, camera.shape, header)
    # Written straight into the message's buffer in one pass (geometry.projection.backproject_into): no temporary
    # cloud and no copy afterwards.
    xyz = cloud.view(np.float32).reshape(camera.height, camera.width, -1)
    msg.is_dense = backproject_into(depth, camera, xyz, rgb) == depth.size
    return msg


def _empty_cloud(dtype: np.dtype, shape: tuple[int, ...], header: Any = None) -> tuple[PointCloud2, np.ndarray]:
    """A PointCloud2 of `shape` points of `dtype` (native order) and a writable structured view of its data."""
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = (int(shape[0]), int(shape[1])) if len(shape) == 2 else (1, int(shape[0]))
    msg.fields = _point_fields(dtype)
    msg.is_bigendian = _NATIVE_BIG
    msg.point_step = int(dtype.itemsize)
    msg.row_step = int(dtype.itemsize * msg.width)
    set_uint8_data(msg, array.array("B", b"\0") * (msg.row_step * msg.height))  # zeroed: padding is defined
    return msg, np.frombuffer(msg.data, dtype=dtype).reshape(shape)


def transform_pointcloud2(cloud: PointCloud2, T: np.ndarray, frame_id: str) -> PointCloud2:
    """The same (organized) cloud with x, y, z mapped by T (4x4, target <- cloud frame) and its frame set to
    frame_id; the other fields (rgb, ...) unchanged."""
    from std_msgs.msg import Header

    from ..geometry.se3 import transform_points

    arr = pointcloud2_to_array(cloud)
    xyz = np.stack([arr["x"], arr["y"], arr["z"]], -1).astype(np.float64)
    out = transform_points(np.asarray(T, np.float64), xyz)
    arr = arr.copy()
    arr["x"], arr["y"], arr["z"] = out[..., 0], out[..., 1], out[..., 2]
    return array_to_pointcloud2(arr, header=Header(stamp=cloud.header.stamp, frame_id=frame_id))
