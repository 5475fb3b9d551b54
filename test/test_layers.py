"""docs/ARCHITECTURE.md's layering, checked on the real import graph: every import of every module (module level and
inside functions, relative imports resolved, importlib.import_module with a literal name) between top-level parts
goes to a lower rank; only ros/ and nodes/ import ROS; nothing below commands/ raises CliError. The checker's
own tests build small packages that break each rule and must be caught."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "depth_perception"
ROS_MODULES = {
    "rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "stereo_msgs", "tf2_ros", "tf2_msgs",
    "diagnostic_msgs", "rosgraph_msgs", "builtin_interfaces", "rcl_interfaces", "cv_bridge",
    "sensor_msgs_py", "message_filters", "launch", "launch_ros", "visualization_msgs", "nav_msgs",
}
ROS_ALLOWED = {"nodes", "ros"}


def read_rank(doc: Path = ROOT / "docs" / "ARCHITECTURE.md") -> dict[str, int]:
    """part -> rank, from the list between the rank markers of the architecture document."""
    text = doc.read_text()
    block = text[text.index("<!-- rank"):text.index("<!-- /rank -->")]
    rank = {}
    for number, names in re.findall(r"^- (\d+): (.+)$", block, re.M):
        for name in names.split(","):
            rank[name.strip()] = int(number)
    return rank


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, package: Path) -> set[str]:
    """Every module of `package` this file imports (targets of `from X import name` include X.name)."""
    name = package.name
    mod = module_name(path, package)
    base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                prefix = base[:len(base) - (node.level - 1)]
                target = ".".join(prefix + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == name or target.startswith(name + "."):
                out.add(target)
                out.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == name or a.name.startswith(name + "."))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and node.args[0].value.startswith(name + ".")):
            out.add(node.args[0].value)
    return out


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(package: Path, rank: dict[str, int]) -> list[str]:
    """'a.b -> c.d (rank x -> y)' for every import between parts that does not go to a lower rank."""
    modules = {module_name(p, package) for p in package.rglob("*.py")}
    bad = []
    for path in sorted(package.rglob("*.py")):
        src = module_name(path, package)
        src_part = part_of(src)
        if src_part not in rank:
            bad.append(f"{src}: part '{src_part}' has no rank in the architecture document")
            continue
        for target in sorted(imports_of(path, package)):
            if target not in modules:
                continue  # `from pkg.mod import name` also yields pkg.mod.name, which is no module
            dst_part = part_of(target)
            if dst_part in (src_part, "__init__"):
                continue
            if dst_part not in rank or rank[dst_part] >= rank[src_part]:
                bad.append(f"{src} -> {target} (rank {rank[src_part]} -> {rank.get(dst_part)})")
    return bad


def ros_violations(package: Path) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        if path.relative_to(package).parts[0] in ROS_ALLOWED:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            bad += [f"{path.relative_to(package)} imports {n}" for n in names if n.split(".")[0] in ROS_MODULES]
    return bad


def cli_error_violations(package: Path) -> list[str]:
    """Modules below the command line that raise CliError (they should raise ValueError and the like)."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        part = path.relative_to(package).parts[0]
        if part in ("commands", "cli.py", "errors.py"):
            continue
        if re.search(r"\bCliError\b", path.read_text()):
            bad.append(str(path.relative_to(package)))
    return bad


def test_every_part_of_the_package_has_a_rank():
    rank = read_rank()
    parts = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert parts <= set(rank), sorted(parts - set(rank))


def test_no_import_goes_against_the_documented_rank():
    assert layer_violations(PACKAGE, read_rank()) == []


def test_ros_is_imported_only_in_nodes_and_ros():
    assert ros_violations(PACKAGE) == []


def test_only_the_command_line_raises_cli_errors():
    assert cli_error_violations(PACKAGE) == []


def test_setup_py_entry_points_are_the_registry_executables():
    from depth_perception.kinds import KINDS

    setup = (ROOT / "setup.py").read_text()
    entries = dict(re.findall(r'"(\w+) = (depth_perception\.[\w.]+):main"', setup))
    assert {k: v for k, v in entries.items() if k != "depth-perception"} == {
        k.executable: k.node_module for k in KINDS.values()}


# -- the checker catches what it should -------------------------------------------------------------------------

def make_package(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "depth_perception"
    for rel, text in {"__init__.py": "", **files}.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != pkg and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return pkg


RANK = {"__init__": 0, "geometry": 1, "training": 4, "ros": 7, "nodes": 8, "cli": 11, "errors": 0}


@pytest.mark.parametrize("files, words", [
    ({"training/checkpoint.py": "from ..ros.image import x\n", "ros/image.py": "x = 1\n"},
     "depth_perception.training.checkpoint -> depth_perception.ros.image"),
    ({"geometry/camera.py": "def f():\n    from ..nodes.base import Node\n", "nodes/base.py": "Node = 1\n"},
     "depth_perception.geometry.camera -> depth_perception.nodes.base"),
    ({"ros/dds.py": "from depth_perception.nodes import launch_helpers\n", "nodes/launch_helpers.py": ""},
     "depth_perception.ros.dds -> depth_perception.nodes.launch_helpers"),
    ({"geometry/a.py": "import importlib\nm = importlib.import_module('depth_perception.cli')\n", "cli.py": ""},
     "depth_perception.geometry.a -> depth_perception.cli"),
    ({"training/t.py": "from .. import ros\n", "ros/__init__.py": "\n"}, "depth_perception.training.t -> "),
    ({"widgets/w.py": ""}, "part 'widgets' has no rank"),
])
def test_the_checker_catches_an_import_against_the_rank(tmp_path, files, words):
    bad = layer_violations(make_package(tmp_path, files), RANK)
    assert any(words in b for b in bad), bad


def test_the_checker_accepts_imports_down_the_rank_and_within_a_part(tmp_path):
    pkg = make_package(tmp_path, {"nodes/base.py": "from ..ros.image import x\nfrom . import other\n",
                                  "nodes/other.py": "", "ros/image.py": "from ..geometry import camera\nx = 1\n",
                                  "geometry/camera.py": ""})
    assert layer_violations(pkg, RANK) == []


def test_a_cycle_between_two_parts_is_caught_in_one_direction_at_least(tmp_path):
    pkg = make_package(tmp_path, {"ros/a.py": "from ..nodes.b import y\nx = 1\n",
                                  "nodes/b.py": "from ..ros.a import x\ny = 1\n"})
    assert layer_violations(pkg, RANK) == ["depth_perception.ros.a -> depth_perception.nodes.b (rank 7 -> 8)"]


def test_the_ros_and_cli_error_rules_catch_their_violations(tmp_path):
    pkg = make_package(tmp_path, {"training/t.py": "def f():\n    from sensor_msgs.msg import Image\n",
                                  "engines/bench.py": "from ..errors import CliError\n", "commands/c.py": "CliError\n"})
    assert ros_violations(pkg) == ["training/t.py imports sensor_msgs.msg"]
    assert cli_error_violations(pkg) == ["engines/bench.py"]
