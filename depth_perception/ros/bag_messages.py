"""rosbags messages -> rclpy messages: a generic field-by-field converter, fast for numeric arrays.

rosbags deserializes a bag with the bag's own message definitions into dataclasses whose numeric arrays are
numpy; rclpy classes list their fields with `get_fields_and_field_types()`. Fields are matched by name, so a
bag recorded with an older definition still converts where the fields agree.
"""
from __future__ import annotations

import array
import importlib
import re
from collections.abc import Callable
from typing import Any

import numpy as np

_TYPECODES = {
    "float": "f", "double": "d", "int8": "b", "uint8": "B", "int16": "h", "uint16": "H",
    "int32": "i", "uint32": "I", "int64": "q", "uint64": "Q", "char": "B",
}
_NUMPY = {"float": np.float32, "double": np.float64, "int8": np.int8, "uint8": np.uint8, "int16": np.int16,
          "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32, "int64": np.int64, "uint64": np.uint64,
          "char": np.uint8}
_INTS = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "char"}
_FLOATS = {"float", "double", "long double"}
_TYPE = re.compile(r"^(?:(sequence)<(?P<seq>[^,>]+)(?:,\s*\d+)?>|(?P<arr>[^\[]+)\[(?P<n>\d+)\]|(?P<one>.+))$")


class UnknownMessageType(LookupError):
    """No rclpy class for a message type (its package is not installed or not built)."""


def rclpy_message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/Image' (or 'sensor_msgs/Image') -> the rclpy class; UnknownMessageType naming it."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise UnknownMessageType(f"not a message type name: {msgtype!r}")
    pkg, kind, name = parts
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        cls = getattr(module, name)
    except (ImportError, AttributeError):
        raise UnknownMessageType(f"unknown message type {msgtype} (no Python package '{pkg}' with {name})") from None
    if not hasattr(cls, "get_fields_and_field_types"):
        raise UnknownMessageType(f"{msgtype} is not a ROS message class")
    return cls


def _converter(type_str: str) -> Callable[[Any], Any]:
    m = _TYPE.match(type_str.strip())
    assert m is not None, type_str
    seq, arr, one = m.group("seq"), m.group("arr"), m.group("one")
    base = (seq or arr or one).strip()
    if base.startswith("string") or base.startswith("wstring"):
        base = "string"
    nested = "/" in base
    if one is not None:
        if nested:
            cls = rclpy_message_class(base)
            return lambda v: to_rclpy(v, cls)
        if base == "boolean":
            return bool
        if base in _INTS:
            return int
        if base in _FLOATS:
            return float
        if base == "octet":
            return lambda v: bytes([int(v)]) if not isinstance(v, bytes) else v
        return str
    if nested:
        cls = rclpy_message_class(base)
        return lambda v: [to_rclpy(x, cls) for x in v]
    if arr is not None and base in _NUMPY:  # fixed-size numeric arrays are numpy in rclpy
        dtype = _NUMPY[base]
        return lambda v: np.array(v, dtype=dtype).reshape(-1)
    if seq is not None and base in _TYPECODES:  # numeric sequences are array.array in rclpy: one memcpy
        code, dtype = _TYPECODES[base], _NUMPY[base]

        def to_array(v: Any) -> array.array:
            out = array.array(code)
            out.frombytes(np.ascontiguousarray(v, dtype=dtype).tobytes())
            return out

        return to_array
    if base == "boolean":
        return lambda v: [bool(x) for x in v]
    if base == "octet":
        return lambda v: [bytes([int(x)]) for x in v]
    return lambda v: [str(x) for x in v]


_PLANS: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}


def _plan(cls: type) -> list[tuple[str, Callable[[Any], Any]]]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = [(name, _converter(t)) for name, t in cls.get_fields_and_field_types().items()]
        _PLANS[cls] = plan
    return plan


def to_rclpy(src: Any, cls: type) -> Any:
    """Convert a rosbags message object (any object with the same field names) to an instance of rclpy `cls`."""
    msg = cls()
    for name, convert in _plan(cls):
        if hasattr(src, name):
            setattr(msg, name, convert(getattr(src, name)))
    return msg
