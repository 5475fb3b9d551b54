"""Launch files and the RViz config: each launch file parses and declares its arguments, the RViz file is valid YAML
showing what the nodes publish; with launch_ros installed (a ROS distro) the launch descriptions are built too."""
import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
LAUNCH_FILES = ["mono_depth.launch.py", "stereo_depth.launch.py", "depth_completion.launch.py",
                "pipeline.launch.py", "kitti_replay.launch.py"]
RVIZ = ROOT / "config" / "depth_perception.rviz"


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_each_launch_file_parses_and_defines_generate_launch_description(name):
    tree = ast.parse((LAUNCH / name).read_text(), filename=name)
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    assert ast.get_docstring(tree)


def test_the_launch_directory_holds_exactly_the_documented_files():
    assert sorted(p.name for p in LAUNCH.glob("*.py")) == sorted(LAUNCH_FILES)


def test_kitti_replay_plays_the_bag_with_clock_and_starts_rviz_with_our_config():
    src = (LAUNCH / "kitti_replay.launch.py").read_text()
    assert '"ros2", "bag", "play"' in src and '"--clock"' in src
    assert 'executable="rviz2"' in src and "depth_perception.rviz" in src and "kitti.yaml" in src


def test_launch_helpers_cover_every_input_topic_of_every_node():
    from depth_perception.nodes.launch_helpers import EXECUTABLES, TOPIC_ARGUMENTS, TOPICS_BY_KIND
    from depth_perception.nodes.runner import node_class

    for kind, topics in TOPICS_BY_KIND.items():
        assert {s.key for s in node_class(kind).INPUTS} == set(topics)
        assert set(topics) <= set(TOPIC_ARGUMENTS.values())
        assert node_class(kind).NODE_NAME == EXECUTABLES[kind]


def test_node_executables_are_console_entries_in_setup_py():
    setup = (ROOT / "setup.py").read_text()
    for module, executable in (("mono_depth_node", "mono_depth_node"), ("stereo_depth_node", "stereo_depth_node"),
                               ("depth_completion_node", "depth_completion_node")):
        assert f"{executable} = depth_perception.nodes.{module}:main" in setup


def rviz_displays():
    data = yaml.safe_load(RVIZ.read_text())
    return data, {d["Name"]: d for d in data["Visualization Manager"]["Displays"]}


def test_rviz_config_is_valid_yaml_with_a_kitti_fixed_frame():
    data, _ = rviz_displays()
    assert data["Visualization Manager"]["Global Options"]["Fixed Frame"] in ("base_link", "velo_link", "world")


def test_rviz_shows_camera_colorized_depth_rgb_clouds_lidar_and_tf():
    _, displays = rviz_displays()
    classes = {d["Class"] for d in displays.values()}
    assert {"rviz_default_plugins/Image", "rviz_default_plugins/PointCloud2", "rviz_default_plugins/TF"} <= classes
    topics = {d["Topic"]["Value"]: d for d in displays.values() if "Topic" in d}
    assert "/kitti/camera_color_left/image_raw" in topics
    assert "/kitti/velo/pointcloud" in topics
    for kind in ("stereo", "completion"):
        assert topics[f"/depth/{kind}/depth/colorized"]["Class"] == "rviz_default_plugins/Image"
        cloud = topics[f"/depth/{kind}/depth/points"]
        assert cloud["Color Transformer"] == "RGB8"


def test_rviz_subscribes_to_our_outputs_with_a_qos_our_publishers_offer():
    _, displays = rviz_displays()
    for d in displays.values():
        topic = d.get("Topic", {}).get("Value", "")
        if topic.startswith("/depth/"):
            assert d["Topic"]["Reliability Policy"] in ("Reliable", "Best Effort")
            assert d["Topic"]["Durability Policy"] == "Volatile"  # our publishers are volatile


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_launch_descriptions_build_where_launch_ros_is_installed(name):
    pytest.importorskip("launch_ros", reason="launch_ros is not a pip wheel; runs in a ROS 2 distro")
    import importlib.util

    from launch.actions import DeclareLaunchArgument

    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), LAUNCH / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    declared = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    assert "config" in declared


def test_missing_executables_are_named_before_anything_starts():
    from depth_perception.nodes.launch_helpers import missing_executables

    def nothing(_name):
        return None

    def no_package(name):
        raise LookupError(name)

    missing = missing_executables(True, which=nothing, package_prefix=no_package)
    assert len(missing) == 2 and "ros2 bag" in missing[0] and "rviz:=false" in missing[1]
    assert missing_executables(False, need_bag=False, which=nothing, package_prefix=no_package) == []


def test_kitti_replay_without_ros2_bag_or_rviz_stops_and_leaves_no_node_running(tmp_path):
    pytest.importorskip("launch_ros", reason="launch_ros is not a pip wheel; runs in a ROS 2 distro")
    import os
    import subprocess
    import sys

    source = str(LAUNCH / "kitti_replay.launch.py")
    code = ("import sys; from launch import LaunchService; from launch.actions import IncludeLaunchDescription\n"
            "from launch.launch_description_sources import PythonLaunchDescriptionSource as Source\n"
            "ls = LaunchService(argv=[])\n"
            f"ls.include_launch_description(IncludeLaunchDescription(Source({source!r}),"
            " launch_arguments={'bag': '/nonexistent.mcap'}.items()))\n"
            "sys.exit(ls.run())\n")
    env = dict(os.environ, PATH=str(tmp_path))  # no ros2 on the PATH, and no rviz2 package in the ament index
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    out = result.stdout + result.stderr
    assert "cannot start: missing" in out and "ros2 bag" in out, out[-3000:]
    assert "process started" not in out and "stereo_depth_node" not in out, out[-3000:]
