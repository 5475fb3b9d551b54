"""rosbags messages -> rclpy messages: a generic field-by-field converter, fast for numeric arrays.

rosbags deserializes a bag with the bag's own message definitions into dataclasses whose numeric arrays are
numpy; rclpy classes list their fields with `get_fields_and_field_types()`. Fields are matched by name, so a
bag recorded with an older definition still converts where the fields agree.
"""
from __future__ import annotations

import array
import importlib
import os
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
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


_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _ament_prefixes() -> list[Path]:
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    return prefixes + [Path(sys.prefix)]  # the pip environment's wheels register in the venv's own share/


@lru_cache(maxsize=256)
def _interfaces_of(pkg: str, prefixes: tuple[Path, ...]) -> frozenset[str]:
    """'msg/Image', ... as the ament index lists them for an interface package (empty: not one)."""
    for prefix in prefixes:
        entry = prefix / "share" / "ament_index" / "resource_index" / "rosidl_interfaces" / pkg
        if entry.is_file():
            lines = entry.read_text(errors="replace").split()
            return frozenset(line.rsplit(".", 1)[0] for line in lines)
    return frozenset()


def rclpy_message_class(msgtype: str) -> type:
    """'sensor_msgs/msg/Image' (or 'sensor_msgs/Image') -> the rclpy class; UnknownMessageType naming it.

    The type string comes from a bag, an untrusted file: only a package that the ament index lists as a ROS
    interface package (resource type `rosidl_interfaces`) with that interface is imported, never an arbitrary
    module (a bag naming `os/msg/X` or `this/msg/Foo` imports nothing).
    """
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(_NAME.match(p) for p in parts) or parts[1] != "msg":
        raise UnknownMessageType(f"not a message type name: {msgtype!r}")
    pkg, kind, name = parts
    if f"{kind}/{name}" not in _interfaces_of(pkg, tuple(_ament_prefixes())):
        raise UnknownMessageType(f"unknown message type {msgtype} (no ROS interface package '{pkg}' with "
                                 f"{kind}/{name} in the ament index)")
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
