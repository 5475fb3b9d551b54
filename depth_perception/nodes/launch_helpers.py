"""What launch/*.launch.py share: launch arguments and launch_ros Node actions built from a node-set YAML.

Only a ROS 2 install has launch / launch_ros; they are imported inside the functions, so this module imports
everywhere (and tests can check the plain parts).
"""
from __future__ import annotations

from typing import Any

from ..kinds import KIND_NAMES
from ..kinds import KINDS as REGISTRY
from ..resources import PACKAGE, share_file  # noqa: F401 - launch files import share_file from here

EXECUTABLES = {k.name: k.executable for k in REGISTRY.values()}
KINDS = KIND_NAMES
# launch argument -> the relative input topic it remaps (pipeline.launch.py)
TOPIC_ARGUMENTS = {
    "image": "image_rect", "camera_info": "camera_info",
    "left_image": "left/image_rect", "right_image": "right/image_rect",
    "left_camera_info": "left/camera_info", "right_camera_info": "right/camera_info",
    "points": "points",
}
TOPICS_BY_KIND = {
    "mono": ("image_rect", "camera_info"),
    "stereo": ("left/image_rect", "right/image_rect", "left/camera_info", "right/camera_info"),
    "completion": ("image_rect", "camera_info", "points"),
}


def dds_environment() -> list[Any]:
    """SetEnvironmentVariable actions pointing Fast DDS at our large-data profile (see ros/dds.py) for every
    process the launch starts, the bag player and RViz included; none where the user configured DDS."""
    from launch.actions import SetEnvironmentVariable

    from ..ros.dds import large_data_environment

    return [SetEnvironmentVariable(name, value) for name, value in large_data_environment().items()]


def node_arguments(default_config: str, kinds: tuple[str, ...] = KINDS, topics: bool = False) -> list[Any]:
    """DeclareLaunchArgument actions: config, use_sim_time, log_level, per kind <kind>_namespace / <kind>_engine
    (empty keeps the YAML's) and, with `topics`, one remapping argument per input topic (pipeline.launch.py)."""
    from launch.actions import DeclareLaunchArgument

    args = [
        DeclareLaunchArgument("config", default_value=default_config,
                              description="node-set YAML: namespaces, remappings and parameters of the nodes"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="follow /clock (bag replay)"),
        DeclareLaunchArgument("log_level", default_value="info", description="ROS log level of the nodes"),
    ]
    for kind in kinds:
        args += [
            DeclareLaunchArgument(f"{kind}_namespace", default_value="",
                                  description=f"namespace of the {kind} node (empty: as in the config)"),
            DeclareLaunchArgument(f"{kind}_engine", default_value="",
                                  description=f"engine of the {kind} node: a path, 'auto' or 'classical' "
                                              "(empty: as in the config)"),
        ]
    if len(kinds) > 1:
        args += [DeclareLaunchArgument(f"enable_{kind}", default_value="true", description=f"start the {kind} node")
                 for kind in kinds]
    if topics:
        args += [DeclareLaunchArgument(name, default_value="", description=f"remap the nodes' {rel} input "
                                                                          "(empty: as in the config)")
                 for name, rel in TOPIC_ARGUMENTS.items()]
    return args


def missing_executables(need_rviz: bool, need_bag: bool = True, which: Any = None, package_prefix: Any = None,
                        ) -> list[str]:
    """What kitti_replay.launch.py needs and this install lacks, each with how to get it: `ros2 bag` (rosbag2) and,
    when RViz is asked for, rviz2. Checked before anything starts, so a failed launch leaves no node behind."""
    import importlib.util
    import shutil

    which = which or shutil.which
    missing = []
    if need_bag and (which("ros2") is None or importlib.util.find_spec("ros2bag") is None):
        missing.append("`ros2 bag` (install ros-$ROS_DISTRO-rosbag2, or replay with `depth-perception run "
                       "config/kitti.yaml --bag BAG`)")
    if need_rviz:
        if package_prefix is None:
            from ament_index_python.packages import get_package_prefix as package_prefix
        try:
            package_prefix("rviz2")
        except Exception:  # PackageNotFoundError, or no ament index at all
            missing.append("rviz2 (install ros-$ROS_DISTRO-rviz2, or pass rviz:=false)")
    return missing


def node_actions(context: Any, kinds: tuple[str, ...] = KINDS, topics: bool = False) -> list[Any]:
    """launch_ros Node actions for the config's enabled nodes of the given kinds (an OpaqueFunction body)."""
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    from .runner import coerce_parameter, load_node_config

    def arg(name: str, default: str = "") -> str:
        try:
            return LaunchConfiguration(name).perform(context)
        except Exception:  # an argument this launch file does not declare
            return default

    config = arg("config")
    use_sim_time = arg("use_sim_time", "false").lower() in ("true", "1", "yes")
    actions = []
    for entry in load_node_config(config):
        if entry.kind not in kinds or not entry.enabled:
            continue
        if len(kinds) > 1 and arg(f"enable_{entry.kind}", "true").lower() in ("false", "0", "no"):
            continue
        params = dict(entry.parameters)
        engine = arg(f"{entry.kind}_engine")
        if engine:
            params["engine"] = coerce_parameter(entry.kind, entry.name, "engine", engine)
        params["use_sim_time"] = use_sim_time
        remaps = dict(entry.remappings)
        if topics:
            for name, rel in TOPIC_ARGUMENTS.items():
                value = arg(name)
                if value and rel in TOPICS_BY_KIND[entry.kind]:
                    remaps[rel] = value
        actions.append(Node(
            package=PACKAGE, executable=EXECUTABLES[entry.kind], name=entry.name,
            namespace=arg(f"{entry.kind}_namespace") or entry.namespace, parameters=[params],
            remappings=list(remaps.items()), output="screen",
            arguments=["--ros-args", "--log-level", arg("log_level", "info")],
        ))
    return actions


def parameter_table() -> str:
    """The README's parameter table (markdown), from the nodes' declarations: one source for both."""
    from ..kinds import load

    rows: dict[str, list] = {}
    for entry in REGISTRY.values():
        for name, spec in load(entry.node_class).param_specs().items():
            text = spec.description + (f" (one of: {', '.join(spec.choices)})" if spec.choices else "")
            row = rows.setdefault(name, [[], {}, text])
            row[0].append(entry.name)
            row[1][entry.name] = spec.default
    lines = ["| parameter | nodes | default | meaning |", "| --- | --- | --- | --- |"]
    for name, (kinds, defaults, text) in rows.items():
        where = "all" if len(kinds) == len(REGISTRY) else ", ".join(kinds)
        values = list(defaults.values())
        shown = f"`{values[0]}`" if all(v == values[0] for v in values) else \
            ", ".join(f"{k} `{v}`" for k, v in defaults.items())  # a per-node default: say which
        lines.append(f"| `{name}` | {where} | {shown} | {text} |")
    return "\n".join(lines)
