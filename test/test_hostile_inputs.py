"""The hostile-input catalogue, rerun on every CI run: inputs a user or another tool may hand us, each answered
with one clear line naming what is wrong (a CLI exits 2, a node logs and keeps running or, at start-up, exits 2),
and nothing lost (an existing output survives a failed or killed replacement).

Bags from other tools and bags that lie (CRCs, type strings, *.bag folders) are in test_foreign_bags.py; the
calibration forms in test_calib_file.py.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from depth_perception.cli import main

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]
MAIN = "import sys; from depth_perception.cli import main; sys.exit(main(sys.argv[1:]))"
sys.path.insert(0, str(Path(__file__).parent))


def cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="default")
    return subprocess.run([sys.executable, "-c", MAIN, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def one_line_error(result):
    """The CLI failed with exit 2 and its stderr ends in one line (returned) with no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    return result.stderr.strip().splitlines()[-1]


# -- 1. data loss: synth --overwrite --------------------------------------------------------------------------

SYNTH = ["synth", "--seed", "21", "--width", "64", "--height", "24", "--no-lidar", "--normals", "none"]


def _drive_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".partial" not in str(p))


def test_synth_overwrite_with_a_bad_size_keeps_the_existing_drive(tmp_path):
    assert main([*SYNTH, "--frames", "2", "--out", str(tmp_path)]) == 0
    before = _drive_files(tmp_path)
    line = one_line_error(cli(*SYNTH, "--frames", "2", "--out", tmp_path, "--overwrite", "--width", "96"))
    assert "another --out" in line
    assert _drive_files(tmp_path) == before


def test_synth_overwrite_killed_mid_render_keeps_the_existing_drive(tmp_path):
    assert main([*SYNTH, "--frames", "2", "--out", str(tmp_path)]) == 0
    before = _drive_files(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", MAIN, *SYNTH, "--frames", "400", "--out", str(tmp_path),
                             "--overwrite"], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.rglob("*.partial")) and time.monotonic() < deadline:  # rendering has begun
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert _drive_files(tmp_path) == before


# -- 2. a bad parameter at start-up -----------------------------------------------------------------------------

@pytest.mark.parametrize("arg, words", [
    ("min_depth:=-5.0", "min_depth"), ("min_depth:=abc", "min_depth"),
    ("output_encoding:=8UC1", "output_encoding"), ("device:=cuda:banana", "device"),
])
def test_a_node_given_a_bad_parameter_at_start_up_exits_2_naming_it(arg, words, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), ROS_LOG_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "depth_perception.nodes.mono_depth_node", "--ros-args", "-p",
                             arg], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "AttributeError" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "bad parameter at start-up" in line and words in line


@pytest.mark.parametrize("setting", ["mono_depth_node.min_depth=-5", "mono_depth_node.device=gpu"])
def test_run_with_a_bad_start_up_parameter_fails_with_one_line(setting):
    line = one_line_error(cli("run", ROOT / "config" / "kitti.yaml", "--set", setting, "--duration", "1"))
    assert setting.split(".")[1].split("=")[0] in line


def test_a_run_config_with_bad_values_or_broken_yaml_fails_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes:\n  mono_depth_node:\n    kind: mono\n    parameters:\n      min_depth: -5\n")
    assert "min_depth" in one_line_error(cli("run", bad, "--duration", "1"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("nodes:\n  mono: [1, 2\n    kind: {\n")
    assert "not valid YAML" in one_line_error(cli("run", broken, "--duration", "1"))
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\nnodes:\n  a:\n    kind: mono\n")
    assert "extends" in one_line_error(cli("run", loop, "--duration", "1"))


# -- 3. security: covered in test_foreign_bags (type strings never import a module) --------------------------

# -- 4. kitti2bag: an image of the wrong size -----------------------------------------------------------------

def test_kitti2bag_refuses_an_image_whose_size_disagrees_with_the_calibration(tmp_path):
    import cv2
    from helpers.kitti_drive import write_tiny_drive

    drive = write_tiny_drive(tmp_path / "kitti", frames=2, width=64, height=32)
    png = drive / "image_02" / "data" / "0000000001.png"
    cv2.imwrite(str(png), np.zeros((50, 100, 3), np.uint8))
    line = one_line_error(cli("kitti2bag", drive, tmp_path / "out"))
    assert "0000000001.png" in line and "100x50" in line and "64x32" in line
    assert not (tmp_path / "out").exists()


# -- 5. messages that are one clear line ------------------------------------------------------------------------

@pytest.fixture
def stereo_files(tmp_path):
    import cv2

    img = np.random.default_rng(0).integers(0, 255, (48, 96, 3), np.uint8)
    for name in ("l.png", "r.png"):
        cv2.imwrite(str(tmp_path / name), img)
    return tmp_path


def test_binary_garbage_as_calibration_gives_one_line_naming_the_file(stereo_files):
    garbage = stereo_files / "calib.yaml"
    garbage.write_bytes(bytes([0xCC, 0xFF, 0x00, 0x81]) * 300)
    line = one_line_error(cli("infer", "stereo", "--left", stereo_files / "l.png", "--right", stereo_files / "r.png",
                              "--calib", garbage, "--out", stereo_files / "d.npy", "--engine", "classical"))
    assert "calib.yaml" in line and "not a text file" in line


def test_a_yaml_error_in_a_calibration_is_one_line(stereo_files):
    calib = stereo_files / "calib.yaml"
    calib.write_text("fx: [700, \ncx: {\n  - 3\n")
    line = one_line_error(cli("infer", "stereo", "--left", stereo_files / "l.png", "--right", stereo_files / "r.png",
                              "--calib", calib, "--out", stereo_files / "d.npy", "--engine", "classical"))
    assert "not valid YAML" in line and "calib.yaml" in line


def test_a_bag_with_broken_metadata_is_one_line(tmp_path):
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information:\n  version: [9\n  storage: {\n")
    line = one_line_error(cli("play", bag))
    assert "cannot read bag" in line and str(bag) in line


def _copy_engine(tmp_path, kind, edit):
    model = ROOT / "engines" / f"{kind}_default.onnx"
    dst = tmp_path / model.name
    shutil.copy(model, dst)
    spec = json.loads(model.with_suffix(".json").read_text())
    edit(spec)
    dst.with_suffix(".json").write_text(json.dumps(spec))
    return dst


@pytest.mark.parametrize("shape, words", [(["x", -1], "shape"), ([1, 3, 96, 320], "ONNX graph")])
def test_a_sidecar_shape_that_is_malformed_or_disagrees_with_the_model_is_one_line(tmp_path, shape, words):
    import cv2

    def edit(spec):
        spec["inputs"][0]["shape"] = shape

    engine = _copy_engine(tmp_path, "mono", edit)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((96, 320, 3), np.uint8))
    line = one_line_error(cli("infer", "mono", "--image", tmp_path / "a.png", "--engine", engine, "--backend",
                              "onnxruntime", "--out", tmp_path / "out.npy"))
    assert words in line and "image" in line


# -- 6. device at run time: see test_a_node_rejects_a_device_it_cannot_use_at_run_time below ---------------------

# -- 7. silent soft failures ------------------------------------------------------------------------------------

@pytest.fixture
def completion_files(tmp_path):
    import cv2

    rng = np.random.default_rng(1)
    cv2.imwrite(str(tmp_path / "img.png"), rng.integers(0, 255, (64, 160, 3), np.uint8))
    (tmp_path / "calib.yaml").write_text(
        "fx: 100\nfy: 100\ncx: 79.5\ncy: 31.5\nT_cam_velo: [0,-1,0,0, 0,0,-1,0, 1,0,0,0, 0,0,0,1]\n")
    return tmp_path


@pytest.mark.parametrize("points", ["empty", "nan", "zero", "behind"])
def test_completion_without_usable_lidar_says_so(completion_files, points):
    n = 500
    pts = {"empty": np.zeros((0, 4)), "nan": np.full((n, 4), np.nan), "zero": np.zeros((n, 4)),
           "behind": np.tile([-10.0, 0.0, 0.0, 1.0], (n, 1))}[points].astype(np.float32)
    pts.tofile(completion_files / "velo.bin")
    result = cli("infer", "completion", "--image", completion_files / "img.png", "--points",
                 completion_files / "velo.bin", "--calib", completion_files / "calib.yaml", "--out",
                 completion_files / "d.npy")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no depth measurement" in result.stderr and "network's guess" in result.stderr


def test_an_infinite_point_is_left_out_without_a_numpy_warning(completion_files):
    pts = np.tile([10.0, 0.0, 0.0, 1.0], (50, 1)).astype(np.float32)
    pts[::5, 0] = np.inf
    pts.tofile(completion_files / "velo.bin")
    result = cli("infer", "completion", "--image", completion_files / "img.png", "--points",
                 completion_files / "velo.bin", "--calib", completion_files / "calib.yaml", "--out",
                 completion_files / "d.npy", "--engine", "classical")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RuntimeWarning" not in result.stderr
    assert "10 of 50 points are NaN or infinite" in result.stderr


# -- 6 and 8: a running node: device at run time, out-of-order and duplicate stamps -------------------------------

NS, FRAME = "/test_hostile", "cam_left"


@pytest.fixture(scope="module")
def stereo_rig():
    pytest.importorskip("tf2_msgs.msg")
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image

    from depth_perception.geometry import PinholeCamera
    from depth_perception.nodes.stereo_depth_node import StereoDepthNode
    from depth_perception.ros.node_driver import STEREO_INPUTS, Driver, PlaneScene, RosSession, topic

    camera = PinholeCamera(160, 96, 100.0, 100.0, 79.5, 47.5)
    params = {"engine": "classical", "planes": 32, "min_depth": 2.0, "max_depth": 40.0}
    with RosSession() as session:
        node = session.add(StereoDepthNode(context=session.context, namespace=NS,
                                           parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
        driver = session.add(Driver(session.context))
        driver.subscribe(topic(NS, "depth"), Image)
        assert node.wait_until_ready(30)
        assert driver.publisher_ready([topic(NS, k) for k in STEREO_INPUTS],
                                      {topic(NS, k): v for k, v in STEREO_INPUTS.items()}, timeout=20)
        yield node, driver, PlaneScene(camera, baseline=0.5, depth=10.0)


def test_a_node_rejects_a_device_it_cannot_use_at_run_time(stereo_rig):
    node, driver, _ = stereo_rig
    name = node.get_fully_qualified_name()
    assert driver.set_remote_parameters(name, {"engine": "auto"})[0].successful
    try:
        for device in ("gpu", "cuda:banana", "cuda"):
            if device == "cuda":
                import torch

                if torch.cuda.is_available():
                    continue
            result = driver.set_remote_parameters(name, {"device": device})[0]
            assert not result.successful and "device" in result.reason, (device, result.reason)
        assert driver.get_remote_parameters(name, ["device"])["device"] == "auto"
    finally:
        assert driver.set_remote_parameters(name, {"engine": "classical"})[0].successful
        assert node.wait_until_ready(30)


def test_sets_older_than_the_last_published_and_duplicate_stamps_are_dropped_and_counted(stereo_rig):
    from depth_perception.ros.node_driver import exchange, publish_set, stamp_of, stereo_messages, topic

    node, driver, scene = stereo_rig
    t = 1_700_000_900 * 10**9
    assert exchange(driver, NS, stereo_messages(scene, t, FRAME)) is not None
    before = node.diagnostic_state()[2]["out_of_order_dropped"]
    publish_set(driver, NS, stereo_messages(scene, t - 500_000_000, FRAME))  # 0.5 s late
    publish_set(driver, NS, stereo_messages(scene, t, FRAME))  # the same stamp again
    time.sleep(2.0)
    stamps = [stamp_of(m) for m in driver.messages(topic(NS, "depth"))]
    assert stamps.count(t) == 1 and t - 500_000_000 not in stamps
    assert node.diagnostic_state()[2]["out_of_order_dropped"] >= before + 8  # two sets of four inputs
    # a clock that jumps back (a bag loop) still gets depth at once
    assert exchange(driver, NS, stereo_messages(scene, t - 30 * 10**9, FRAME)) is not None


# -- 9. outputs that cannot be written, benchmarks that cannot run --------------------------------------------------

@pytest.mark.parametrize("where", ["a_file/out.json", "a_folder"])
def test_an_output_that_cannot_be_written_is_named_as_given_and_leaves_nothing(tmp_path, where):
    from depth_perception.utils import write_json

    (tmp_path / "a_file").write_text("keep")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(OSError, match=f"cannot write {tmp_path / where}"):
        write_json(tmp_path / where, {"x": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "a_folder"]  # no .partial left behind
    assert (tmp_path / "a_file").read_text() == "keep"


@pytest.mark.parametrize("args, words", [
    (["--seconds", "inf"], "finite"),
    (["--rate", "nan"], "finite"),
    (["--kinds", "stereo", "--engine", "mono=engines/mono_default.onnx"], "--kinds does not run"),
])
def test_bench_node_refuses_a_run_it_could_not_finish_or_an_engine_it_would_not_use(args, words, capsys):
    assert main(["bench", "node", *args]) == 2
    assert words in capsys.readouterr().err


def test_completion_on_a_scene_needs_pixels_left_to_score(capsys):
    assert main(["eval", "completion", "--scene", "motorcycle", "--engine", "classical", "--density", "1"]) == 2
    assert "(0, 1)" in capsys.readouterr().err
