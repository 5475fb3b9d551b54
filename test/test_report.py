"""Report files: PLY clouds a viewer can read back, panels and bird's-eye plots written as PNG."""
import numpy as np

from depth_perception.eval.report import birds_eye_plot, depth_panel, error_map, write_ply


def read_ply(path):
    data = path.read_bytes()
    head, body = data.split(b"end_header\n", 1)
    lines = head.decode().splitlines()
    n = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    has_rgb = any("red" in line for line in lines)
    dtype = [("xyz", "<f4", 3)] + ([("rgb", "u1", 3)] if has_rgb else [])
    return np.frombuffer(body, dtype=dtype, count=n)


def test_ply_round_trip_drops_non_finite_points(tmp_path):
    pts = np.array([[1, 2, 3], [np.nan, 0, 0], [4, 5, 6]], np.float32)
    cols = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    assert write_ply(tmp_path / "c.ply", pts, cols) == 2
    rec = read_ply(tmp_path / "c.ply")
    np.testing.assert_array_equal(rec["xyz"], pts[[0, 2]])
    np.testing.assert_array_equal(rec["rgb"], cols[[0, 2]])


def test_error_map_marks_missing_ground_truth_black_and_exact_depth_green():
    gt = np.array([[10.0, 0.0]], np.float32)
    rgb = error_map(np.array([[10.0, 5.0]], np.float32), gt)
    assert tuple(rgb[0, 0]) == (0, 255, 0) and tuple(rgb[0, 1]) == (0, 0, 0)


def test_panel_and_birds_eye_pictures_are_png(tmp_path):
    img = np.zeros((20, 60, 3), np.uint8)
    gt = np.full((20, 60), 10.0, np.float32)
    depth_panel(tmp_path / "p.png", img, gt, {"a": gt * 1.1, "b": gt})
    pts = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32) + [0, 0, 10]
    birds_eye_plot(tmp_path / "b.png", {"a": pts}, reference=pts)
    for name in ("p.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_picture_is_written_in_the_format_its_name_says(tmp_path):
    img = np.zeros((20, 60, 3), np.uint8)
    gt = np.full((20, 60), 10.0, np.float32)
    depth_panel(tmp_path / "p.jpg", img, gt, {"a": gt})
    birds_eye_plot(tmp_path / "b.JPEG", {"a": np.array([[0.0, 0.0, 10.0]], np.float32)})
    assert (tmp_path / "p.jpg").read_bytes()[:3] == (tmp_path / "b.JPEG").read_bytes()[:3] == b"\xff\xd8\xff"
    depth_panel(tmp_path / "noext", img, gt, {"a": gt})
    assert (tmp_path / "noext").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
