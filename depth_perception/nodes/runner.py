"""The node-set YAML (config/*.yaml) and running it in one process: what launch files do in a ROS install.

The file lists nodes by name, each with its kind, namespace, the remappings of its relative input topics and its
parameters:

    nodes:
      stereo_depth_node:
        kind: stereo
        namespace: /depth/stereo
        remappings: {left/image_rect: /kitti/camera_color_left/image_raw, ...}
        parameters: {engine: auto, max_depth: 80.0, ...}

(A ROS 2 `--params-file` cannot carry remappings, hence our own small schema; launch/*.launch.py read the same
file.) `start_nodes` builds the nodes in a context; `run_config` spins them in a MultiThreadedExecutor, optionally
replays a bag into them, and stops cleanly when told to.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from ..kinds import KINDS as REGISTRY
from ..kinds import load
from ..ros.qos import output_qos

NODE_CLASSES = REGISTRY  # kind -> registry entry (kinds.py)
# declared by rclpy itself on every node (start_type_description_service: Iron and newer)
EXTRA_PARAMETERS = {"use_sim_time": False, "start_type_description_service": True}


def node_class(kind: str) -> type:
    if kind not in REGISTRY:
        raise ValueError(f"node kind must be one of {sorted(REGISTRY)}, got {kind!r}")
    return load(REGISTRY[kind].node_class)


@dataclass
class NodeEntry:
    name: str
    kind: str
    namespace: str = ""
    remappings: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True


def coerce_parameter(kind: str, node: str, name: str, value: Any) -> Any:
    """Check a parameter name against the node's declarations and give the value the declared type (YAML's 80
    for a double is 80.0); ValueError naming node, parameter and value."""
    specs = node_class(kind).param_specs()
    if name in EXTRA_PARAMETERS:
        default = EXTRA_PARAMETERS[name]
    elif name in specs:
        default = specs[name].default
    else:
        raise ValueError(f"{node}: unknown parameter {name!r} (declared: {', '.join(sorted(specs))})")
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"{node}.{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if type(value) is not type(default):
        raise ValueError(f"{node}.{name} must be a {type(default).__name__}, got {value!r}")
    spec = specs.get(name)
    if spec is not None:
        spec.check(value)
    return value


def _read_node_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The file's `nodes` mapping, with `extends: OTHER.yaml` (relative to the file) merged underneath it: a node
    named in both takes the base's settings, then this file's remappings and parameters key by key."""
    if not path.is_file():
        raise FileNotFoundError(f"node config not found: {path}")
    if path.resolve() in seen:
        raise ValueError(f"{path}: 'extends' loops back to itself")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) or not data["nodes"]:
        raise ValueError(f"{path}: expected a top-level 'nodes' mapping of node name -> settings")
    unknown = set(data) - {"nodes", "extends"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} (expected 'nodes', 'extends')")
    if "extends" not in data:
        return data["nodes"]
    base = _read_node_yaml(path.parent / str(data["extends"]), (*seen, path.resolve()))
    merged = {name: dict(settings) if isinstance(settings, dict) else settings for name, settings in base.items()}
    for name, settings in data["nodes"].items():
        if not isinstance(settings, dict) or not isinstance(merged.get(name, {}), dict):
            raise ValueError(f"{path}: nodes.{name} must be a mapping")
        target = merged.setdefault(name, {})
        for key, value in settings.items():
            if key in ("remappings", "parameters") and isinstance(value, dict):
                target[key] = {**(target.get(key) or {}), **value}
            else:
                target[key] = value
    return merged


def load_node_config(path: str | Path) -> list[NodeEntry]:
    """Parse and check a node-set YAML; ValueError naming the file and the bad key."""
    path = Path(path)
    nodes = _read_node_yaml(path)
    entries = []
    for name, settings in nodes.items():
        if not isinstance(settings, dict):
            raise ValueError(f"{path}: nodes.{name} must be a mapping")
        unknown = set(settings) - {"kind", "namespace", "remappings", "parameters", "enabled"}
        if unknown:
            raise ValueError(f"{path}: nodes.{name} has unknown keys {sorted(unknown)}")
        kind = settings.get("kind")
        if kind not in NODE_CLASSES:
            raise ValueError(f"{path}: nodes.{name}.kind must be one of {sorted(NODE_CLASSES)}, got {kind!r}")
        remappings = settings.get("remappings") or {}
        parameters = settings.get("parameters") or {}
        if not isinstance(remappings, dict) or not isinstance(parameters, dict):
            raise ValueError(f"{path}: nodes.{name}.remappings and .parameters must be mappings")
        params = {k: coerce_parameter(kind, name, k, v) for k, v in parameters.items()}
        entries.append(NodeEntry(str(name), kind, str(settings.get("namespace", "") or ""),
                                 {str(k): str(v) for k, v in remappings.items()}, params,
                                 bool(settings.get("enabled", True))))
    return entries


def parse_set_option(text: str) -> tuple[str, str, Any]:
    """'node.param=value' -> (node, param, value as YAML reads it)."""
    key, sep, raw = text.partition("=")
    node, dot, param = key.strip().partition(".")
    if not sep or not dot or not node or not param:
        raise ValueError(f"--set takes NODE.PARAM=VALUE, got {text!r}")
    return node, param, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(entries: Sequence[NodeEntry], overrides: Mapping[str, Mapping[str, Any]] | None,
                    ) -> list[NodeEntry]:
    by_name = {e.name: e for e in entries}
    for node, params in (overrides or {}).items():
        if node not in by_name:
            raise ValueError(f"override for unknown node {node!r} (nodes: {', '.join(sorted(by_name))})")
        entry = by_name[node]
        for name, value in params.items():
            entry.parameters[name] = coerce_parameter(entry.kind, node, name, value)
    return list(entries)


def build_node(entry: NodeEntry, context: Context | None = None) -> Node:
    cli_args = ["--ros-args"] + [a for src, dst in entry.remappings.items() for a in ("-r", f"{src}:={dst}")]
    return node_class(entry.kind)(
        node_name=entry.name, namespace=entry.namespace or None, context=context, cli_args=cli_args,
        use_global_arguments=False,
        parameter_overrides=[Parameter(k, value=v) for k, v in entry.parameters.items()],
    )


def start_nodes(config_path: str | Path, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                context: Context | None = None) -> list[Node]:
    """Build the enabled nodes of a node-set YAML (namespaces, remappings, parameters; `overrides` per node name)
    in `context` (an initialized one; None = the default). The caller spins and destroys them."""
    entries = apply_overrides(load_node_config(config_path), overrides)
    nodes: list[Node] = []
    try:
        for entry in entries:
            if entry.enabled:
                nodes.append(build_node(entry, context))
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


@dataclass
class RunSummary:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    replay: Any = None
    replay_error: str | None = None
    elapsed_s: float = 0.0
    received: dict[str, int] = field(default_factory=dict)  # node -> depth images received (listen=True)


def node_summary(node: Node) -> dict[str, Any]:
    stats = getattr(node, "processing_ms", None)
    return {
        "frames_synchronized": getattr(getattr(node, "synced_rate", None), "count", 0),
        "frames_processed": getattr(node, "frames_processed", 0),
        "frames_failed": getattr(node, "frames_failed", 0),
        "frames_dropped": getattr(node, "frames_dropped", 0),
        "faults": dict(getattr(node, "fault_counts", {})),
        "processing_ms_p50": stats.summary()["p50"] if stats is not None else float("nan"),
        "state": node.diagnostic_state()[:2] if hasattr(node, "diagnostic_state") else ("", ""),
    }


def _idle(nodes: Sequence[Node]) -> bool:
    return all(getattr(n, "_pending", None) is None for n in nodes)


def run_config(config_path: str | Path, *, overrides: Mapping[str, Mapping[str, Any]] | None = None,
               bag: str | Path | None = None, rate: float = 1.0, loop: bool = False, clock: bool = False,
               duration_s: float | None = None, stop_event: threading.Event | None = None,
               drain_s: float = 5.0, listen: bool = False, log: Callable[[str], None] | None = None,
               ) -> RunSummary:
    """Start the nodes in a private context, spin them, replay `bag` into them if given; return when the bag ends
    (after the nodes drain), `duration_s` passes, or `stop_event` is set. listen=True subscribes to every node's
    depth (as RViz would), so the nodes compute even when nothing else listens; the counts land in the summary."""
    from rclpy.executors import MultiThreadedExecutor

    from ..ros.bag_replay import spin_replay
    from ..ros.recorder import init_context

    say = log or (lambda _msg: None)
    stop = stop_event or threading.Event()
    overrides = {k: dict(v) for k, v in (overrides or {}).items()}
    if clock:  # nodes follow the bag's /clock
        for entry in load_node_config(config_path):
            overrides.setdefault(entry.name, {}).setdefault("use_sim_time", True)
    summary = RunSummary()
    context = init_context()
    nodes: list[Node] = []
    extra_nodes: list[Node] = []
    executor = None
    spin_thread = None
    t0 = time.monotonic()
    try:
        nodes = start_nodes(config_path, overrides, context=context)
        executor = MultiThreadedExecutor(num_threads=max(2, 2 * len(nodes)), context=context)
        for node in nodes:
            executor.add_node(node)
        if listen:
            listener = Node("depth_perception_run_listener", context=context)
            counts = summary.received
            for node in nodes:
                topic_name = node.pub_depth.topic_name
                counts[node.get_fully_qualified_name()] = 0

                def count(_msg: Any, key: str = node.get_fully_qualified_name()) -> None:
                    counts[key] += 1

                listener.create_subscription(Image, topic_name, count, output_qos(10))
            executor.add_node(listener)
            extra_nodes.append(listener)
        spin_thread = threading.Thread(target=executor.spin, name="depth_nodes", daemon=True)
        spin_thread.start()
        say(f"started {', '.join(n.get_fully_qualified_name() for n in nodes)}")
        replay_thread, replay_result = None, {}
        if bag is not None:
            replay_stop = threading.Event()
            replay_thread, replay_result = spin_replay(bag, replay_stop, context=context, rate=rate, loop=loop,
                                                       clock=clock, wait_for_subscribers=5.0, log=say)
            say(f"replaying {bag} at rate {rate}")
        deadline = None if duration_s is None else t0 + duration_s
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if replay_thread is not None and not replay_thread.is_alive():
                break
            stop.wait(0.1)
        if replay_thread is not None:
            if replay_thread.is_alive():
                replay_stop.set()
                replay_thread.join(10.0)
            else:  # the bag ended: give the nodes a moment to finish the last frames
                drain_end = time.monotonic() + drain_s
                time.sleep(0.3)
                while time.monotonic() < drain_end and not stop.is_set() and not _idle(nodes):
                    time.sleep(0.1)
                time.sleep(0.5)
            summary.replay = replay_result.get("stats")
            if "error" in replay_result:
                summary.replay_error = f"{type(replay_result['error']).__name__}: {replay_result['error']}"
        summary.nodes = {n.get_fully_qualified_name(): node_summary(n) for n in nodes}
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=5.0)
        if spin_thread is not None:
            spin_thread.join(5.0)
        for node in [*nodes, *extra_nodes]:
            node.destroy_node()
        import rclpy

        rclpy.try_shutdown(context=context)
        summary.elapsed_s = time.monotonic() - t0
    return summary


__all__ = ["NODE_CLASSES", "NodeEntry", "RunSummary", "apply_overrides", "build_node", "coerce_parameter",
           "load_node_config", "node_class", "parse_set_option", "run_config", "start_nodes"]
