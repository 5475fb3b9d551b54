"""sensor_msgs/Image <-> numpy: every encoding the nodes meet, byte order and row padding honoured, zero-copy views.

Arrays are (H, W) for one channel and (H, W, C) otherwise, in the encoding's element type and native byte order.
Reading returns a view into the message's buffer whenever the layout allows (native byte order); writing makes
one copy into the message. Depth follows REP 118 and depth_image_proc's depth_traits: `32FC1` metres, `16UC1`
millimetres with 0 meaning "no measurement"; in numpy, depth is float32 metres with NaN where unknown.
"""
from __future__ import annotations

import array
import re
import sys
from typing import Any

import numpy as np
from sensor_msgs.msg import Image

from ..geometry.depth_units import metres_to_millimetres, millimetres_to_metres

# encoding -> (numpy element type without byte order, channels); the sensor_msgs/image_encodings names.
_NAMED: dict[str, tuple[str, int]] = {
    "mono8": ("u1", 1), "mono16": ("u2", 1),
    "rgb8": ("u1", 3), "bgr8": ("u1", 3), "rgba8": ("u1", 4), "bgra8": ("u1", 4),
    "rgb16": ("u2", 3), "bgr16": ("u2", 3), "rgba16": ("u2", 4), "bgra16": ("u2", 4),
}
# The OpenCV-style generic encodings: 8UC1, 16SC3, 32FC1, 64FC1, ...
_GENERIC = re.compile(r"^(8|16|32|64)(U|S|F)C([1-4])$")
_KIND = {"U": "u", "S": "i", "F": "f"}
_NATIVE_BIG = sys.byteorder == "big"


def encoding_layout(encoding: str) -> tuple[np.dtype, int]:
    """(element dtype in native order, channels) of an image encoding; ValueError naming an unknown one."""
    if encoding in _NAMED:
        code, channels = _NAMED[encoding]
        return np.dtype(code), channels
    m = _GENERIC.match(encoding)
    if m is None or (m.group(2) == "F" and m.group(1) in ("8", "16")) or (m.group(2) == "U" and m.group(1) == "64"):
        raise ValueError(f"unsupported image encoding {encoding!r}")
    bits, kind, channels = int(m.group(1)), m.group(2), int(m.group(3))
    return np.dtype(f"{_KIND[kind]}{bits // 8}"), channels


def data_buffer(data: Any) -> Any:
    """The message's data as something np.frombuffer takes without copying (array.array, bytes, memoryview)."""
    if isinstance(data, (array.array, bytes, bytearray, memoryview, np.ndarray)):
        return data
    return bytes(data)  # a plain list, as a hand-built message may hold


def image_to_numpy(msg: Image) -> np.ndarray:
    """Image -> array (H, W) or (H, W, C) in native byte order; a view into `msg.data` where the layout allows.

    ValueError names the field for an unknown encoding, a zero size, a step shorter than a row, or data whose
    length is not height * step.
    """
    dtype, channels = encoding_layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"image has zero size: height={height} width={width}")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"image step={step} is shorter than a row of {width} {msg.encoding} pixels ({row_bytes} B)")
    data = data_buffer(msg.data)
    nbytes = memoryview(data).nbytes
    if nbytes != height * step:
        raise ValueError(f"image data has {nbytes} bytes, expected height * step = {height} * {step} = {height * step}")
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<") if dtype.itemsize > 1 else dtype
    raw = np.frombuffer(data, dtype=np.uint8)
    # Strides carry the row padding, so a padded image is still a view.
    shape = (height, width, channels) if channels > 1 else (height, width)
    strides = (step, channels * dtype.itemsize, dtype.itemsize) if channels > 1 else (step, dtype.itemsize)
    out = np.ndarray(shape, dtype=wire, buffer=raw, strides=strides)
    if wire.isnative:
        return out
    return out.astype(dtype)  # swapped bytes: one copy into native order


def numpy_to_image(array_in: np.ndarray, encoding: str, header: Any = None) -> Image:
    """Array (H, W) or (H, W, C) -> Image in `encoding`, native byte order, no row padding (one copy).

    The array's element type and channel count must be the encoding's: no silent conversions (ValueError).
    """
    dtype, channels = encoding_layout(encoding)
    arr = np.asarray(array_in)
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[..., 0]
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        raise ValueError(f"array shape {arr.shape} does not fit encoding {encoding!r} ({channels} channel(s))")
    if arr.dtype.newbyteorder("=") != dtype:
        raise ValueError(f"array dtype {arr.dtype} does not fit encoding {encoding!r} ({dtype})")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image has zero size: height={arr.shape[0]} width={arr.shape[1]}")
    arr = np.ascontiguousarray(arr, dtype=dtype)  # native order, C layout: copies only if needed
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIG and dtype.itemsize > 1)
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    set_uint8_data(msg, bytes_to_uint8_array(arr))
    return msg


def set_uint8_data(msg: Any, buf: array.array) -> None:
    """Hand `buf` to the message's uint8[] `data` field without a copy.

    rosidl's setter keeps an array.array('B') as is when it checks fields (Humble always does), but copies it when
    field checks are off (newer distros' default): a second fresh multi-megabyte buffer per frame, whose page faults
    cost more than the conversion itself. The setter's own fast path stores into the `_data` slot; so do we.
    """
    if getattr(msg, "_check_fields", True) is False and "_data" in getattr(type(msg), "__slots__", ()):
        msg._data = buf
    else:
        msg.data = buf


def bytes_to_uint8_array(arr: np.ndarray) -> array.array:
    """A C-contiguous array's bytes as the array.array('B') rclpy keeps for uint8[] fields: one memcpy."""
    buf = array.array("B")
    buf.frombytes(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return buf


# Colour layout of the encodings image_to_rgb reads; the generic 8UCn ones carry no colour order and are taken as RGB.
_COLOUR = {
    "mono8": "mono", "mono16": "mono", "8UC1": "mono",
    "rgb8": "rgb", "rgb16": "rgb", "8UC3": "rgb", "bgr8": "bgr", "bgr16": "bgr",
    "rgba8": "rgba", "rgba16": "rgba", "8UC4": "rgba", "bgra8": "bgra", "bgra16": "bgra",
}


def image_to_rgb(msg: Image) -> np.ndarray:
    """Any colour or mono encoding -> uint8 RGB (H, W, 3); a 16-bit image keeps its high byte (value / 256).

    rgb8 comes back as a view of the message; the other encodings as a new C-contiguous array.
    """
    layout = _COLOUR.get(msg.encoding)
    if layout is None:
        encoding_layout(msg.encoding)  # an unknown encoding says so; a known one is not a colour image
        raise ValueError(f"image encoding {msg.encoding!r} is not a colour or mono image")
    img = image_to_numpy(msg)
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if layout == "mono":
        return np.repeat(img[:, :, None], 3, axis=2)
    if layout == "rgb":
        return img  # a view of the message: rows may be padded, pixels are packed (OpenCV takes it as is)
    channels = {"bgr": slice(None, None, -1), "rgba": slice(0, 3), "bgra": slice(2, None, -1)}[layout]
    return np.ascontiguousarray(img[:, :, channels])  # packed pixels, positive strides: what cv2 accepts


def depth_image_to_numpy(msg: Image) -> np.ndarray:
    """Depth Image -> float32 metres, NaN where unknown: `32FC1` as is, `16UC1`/`mono16` millimetres with 0 -> NaN."""
    if msg.encoding == "32FC1":
        return image_to_numpy(msg)
    if msg.encoding in ("16UC1", "mono16"):
        return millimetres_to_metres(image_to_numpy(msg))
    raise ValueError(f"depth image encoding {msg.encoding!r} is not supported (32FC1 metres or 16UC1 millimetres)")


DEPTH_ENCODINGS = ("32FC1", "16UC1")  # REP 118: metres as float (NaN invalid), or millimetres as uint16 (0 invalid)


def depth_to_image(depth_m: np.ndarray, encoding: str = "32FC1", header: Any = None) -> Image:
    """float depth (H, W) in metres -> `32FC1` metres, or `16UC1` millimetres where unknown or out of range is 0."""
    depth = np.asarray(depth_m)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got shape {depth.shape}")
    if encoding == "32FC1":
        return numpy_to_image(depth.astype(np.float32, copy=False), "32FC1", header)
    if encoding == "16UC1":
        return numpy_to_image(metres_to_millimetres(depth), "16UC1", header)
    raise ValueError(f"depth encoding must be one of {DEPTH_ENCODINGS}, got {encoding!r}")
