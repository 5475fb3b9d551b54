"""DESIGN.md §3: only nodes/ and ros/ import rclpy or ROS message packages; models/ and training/ never do."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "depth_perception"
ROS_MODULES = {
    "rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "stereo_msgs", "tf2_ros", "tf2_msgs",
    "diagnostic_msgs", "rosgraph_msgs", "builtin_interfaces", "rcl_interfaces", "cv_bridge",
    "sensor_msgs_py", "message_filters", "launch", "launch_ros", "visualization_msgs", "nav_msgs",
}
ROS_ALLOWED = {"nodes", "ros"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def package_files():
    return sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_ros_is_imported_only_in_nodes_and_ros(path):
    layer = path.relative_to(PACKAGE).parts[0]
    if layer in ROS_ALLOWED:
        return
    assert not (imported_roots(path) & ROS_MODULES), f"{path.relative_to(PACKAGE)} imports ROS outside nodes/ and ros/"


def test_the_rule_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom sensor_msgs.msg import Image\n")
    assert imported_roots(bad) & ROS_MODULES == {"sensor_msgs"}


def test_models_and_training_never_import_ros_even_indirectly():
    for layer in ("models", "training", "geometry"):
        for path in (PACKAGE / layer).rglob("*.py"):
            src = path.read_text()
            assert "depth_perception.ros" not in src and "depth_perception.nodes" not in src, path
