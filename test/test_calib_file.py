"""The calibration file of the infer commands: every accepted form, and errors that name what is missing."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from depth_perception.data.calib_file import load_calib_file
from depth_perception.eval.real_scenes import find_opencv_samples

KITTI_SAMPLE = Path("/work/shared/kitti_samples/calib_cam_to_cam.txt")
if not KITTI_SAMPLE.exists():  # the repository's copy, where the shared folder is not mounted
    KITTI_SAMPLE = Path(__file__).parent / "fixtures" / "kitti" / "calib_cam_to_cam.txt"


def write(tmp_path, text, name="calib.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_simple_yaml_with_baseline(tmp_path):
    c = load_calib_file(write(tmp_path, "fx: 700\nfy: 701\ncx: 320\ncy: 96\nbaseline: 0.54\nwidth: 640\nheight: 192"))
    assert (c.camera.fx, c.camera.fy, c.camera.cx, c.camera.cy) == (700, 701, 320, 96)
    assert c.camera.shape == (192, 640)
    assert c.baseline == pytest.approx(0.54)
    np.testing.assert_allclose(c.T_right_left[:3, 3], [-0.54, 0, 0])
    assert c.T_cam_velo is None


def test_size_comes_from_the_image_when_the_file_has_none(tmp_path):
    p = write(tmp_path, "fx: 700\nfy: 700\ncx: 320\ncy: 96\nbaseline: 0.5\n")
    assert load_calib_file(p, image_size=(640, 192)).camera.shape == (192, 640)
    with pytest.raises(ValueError, match="width"):
        load_calib_file(p)


def test_camera_is_rescaled_for_another_image_size(tmp_path):
    text = "fx: 700\nfy: 700\ncx: 619.5\ncy: 187.5\nbaseline: 0.5\nwidth: 1240\nheight: 376\n"
    c = load_calib_file(write(tmp_path, text))
    half = c.camera_for(620, 188)
    assert half.fx == pytest.approx(350) and half.cx == pytest.approx(309.5)
    assert c.camera_for(1241, 375).shape == (375, 1241)  # KITTI's drives differ by a pixel or two: still scaled


def test_an_image_of_another_aspect_ratio_is_refused_not_stretched(tmp_path):
    text = "fx: 700\nfy: 700\ncx: 619.5\ncy: 187.5\nbaseline: 0.5\nwidth: 1240\nheight: 376\n"
    c = load_calib_file(write(tmp_path, text))
    for size in ((1240, 300), (640, 640)):  # a crop, another camera
        with pytest.raises(ValueError, match="is for 1240x376 images, the images are .*another aspect ratio"):
            c.camera_for(*size)
        with pytest.raises(ValueError, match="another aspect ratio"):
            c.right_camera_for(*size)


def test_full_matrices_with_projection_of_the_right_camera(tmp_path):
    text = (
        "P_left: [[700, 0, 320, 0], [0, 700, 96, 0], [0, 0, 1, 0]]\n"
        "P_right: [700, 0, 320, -378, 0, 700, 96, 0, 0, 0, 1, 0]\n"
        "width: 640\nheight: 192\n"
        "T_cam_velo: [[0, -1, 0, 0], [0, 0, -1, -0.08], [1, 0, 0, -0.27], [0, 0, 0, 1]]\n"
    )
    c = load_calib_file(write(tmp_path, text))
    assert c.baseline == pytest.approx(0.54)
    assert c.T_cam_velo.shape == (4, 4) and c.T_cam_velo[2, 0] == 1


def test_k_and_a_general_relative_pose(tmp_path):
    text = "K: [700, 0, 320, 0, 700, 96, 0, 0, 1]\nT_right_left: [1,0,0,-0.3, 0,1,0,0.01, 0,0,1,0.02, 0,0,0,1]\n" \
           "width: 640\nheight: 192\n"
    c = load_calib_file(write(tmp_path, text))
    assert c.T_right_left[1, 3] == pytest.approx(0.01)
    assert c.camera.fx == 700


def test_ros_camera_info_yaml(tmp_path):
    text = (
        "image_width: 640\nimage_height: 480\n"
        "camera_matrix: {rows: 3, cols: 3, data: [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]}\n"
        "projection_matrix: {rows: 3, cols: 4, data: [510, 0, 320, 0, 0, 510, 240, 0, 0, 0, 1, 0]}\n"
        "baseline: 0.12\n"
    )
    c = load_calib_file(write(tmp_path, text))
    assert c.camera.fx == 510 and c.camera.shape == (480, 640) and c.baseline == pytest.approx(0.12)


def test_kitti_calib_cam_to_cam_with_its_quirks(tmp_path):
    c = load_calib_file(KITTI_SAMPLE)
    assert c.camera.fx == pytest.approx(707.0493)
    assert c.camera.shape == (370, 1224)
    # Baseline between rectified cameras 02 and 03: (45.75831 + 334.1081) / 707.0493.
    assert c.baseline == pytest.approx((45.75831 + 334.1081) / 707.0493, rel=1e-6)
    assert c.T_cam_velo is None
    # calib_velo_to_cam.txt beside it adds the LiDAR extrinsics (identity rotation here, for checking).
    shutil.copy(KITTI_SAMPLE, tmp_path / "calib_cam_to_cam.txt")
    write(tmp_path, "calib_time: x\nR: 1 0 0 0 1 0 0 0 1\nT: 0.1 0.2 0.3\n", "calib_velo_to_cam.txt")
    c = load_calib_file(tmp_path / "calib_cam_to_cam.txt")
    assert c.T_cam_velo is not None
    P2 = np.array([7.070493e+02, 0, 6.040814e+02, 4.575831e+01, 0, 7.070493e+02, 1.805066e+02, -3.454157e-01,
                   0, 0, 1, 4.981016e-03]).reshape(3, 4)
    t2 = np.linalg.solve(P2[:, :3], P2[:, 3])
    R_rect = np.array([9.999128e-01, 1.009263e-02, -8.511932e-03, -1.012729e-02, 9.999406e-01, -4.037671e-03,
                       8.470675e-03, 4.123522e-03, 9.999556e-01]).reshape(3, 3)
    np.testing.assert_allclose(c.T_cam_velo[:3, 3], R_rect @ [0.1, 0.2, 0.3] + t2, atol=1e-9)


@pytest.mark.parametrize("text, missing", [
    ("fx: 700\nfy: 700\ncx: 320\nbaseline: 0.5\nwidth: 10\nheight: 10\n", "'cy'"),
    ("baseline: 0.5\nwidth: 10\nheight: 10\n", "intrinsics"),
    ("K: [1, 2, 3]\nwidth: 10\nheight: 10\n", "'K' must have 3x3"),
    ("fx: seven\nfy: 700\ncx: 320\ncy: 9\nwidth: 10\nheight: 10\n", "'fx' must be a number"),
    ("fx: 700\nfy: 700\ncx: 320\ncy: 9\nbaseline: -0.5\nwidth: 10\nheight: 10\n", "'baseline' must be > 0"),
    ("- just\n- a list\n", "mapping"),
])
def test_bad_files_name_the_problem(tmp_path, text, missing):
    with pytest.raises(ValueError, match=missing):
        load_calib_file(write(tmp_path, text))


def test_stereo_geometry_is_required_only_where_needed(tmp_path):
    c = load_calib_file(write(tmp_path, "fx: 700\nfy: 700\ncx: 320\ncy: 96\nwidth: 640\nheight: 192\n"))
    assert c.baseline is None
    with pytest.raises(ValueError, match="baseline"):
        c.require_stereo()
    with pytest.raises(FileNotFoundError):
        load_calib_file(tmp_path / "nope.yaml")
    bad = write(tmp_path, "calib_time: x\nP_rect_00: 1 0 0 0 0 1 0 0 0 0 1 0\n", "calib_cam_to_cam.txt")
    with pytest.raises(ValueError, match="P_rect_02"):
        load_calib_file(bad)


MIDDLEBURY_CALIB = """cam0=[994.978 0 311.193; 0 994.978 254.877; 0 0 1]
cam1=[994.978 0 342.279; 0 994.978 254.877; 0 0 1]
doffs=31.086
baseline=193.001
width=741
height=500
ndisp=70
isint=0
vmin=23
vmax=58
"""


def test_middlebury_calib_txt_keeps_both_principal_points_and_the_baseline_in_metres(tmp_path):
    c = load_calib_file(write(tmp_path, MIDDLEBURY_CALIB, "calib.txt"))
    assert c.camera.shape == (500, 741)
    assert (c.camera.fx, c.camera.cx, c.camera.cy) == (994.978, 311.193, 254.877)
    assert c.right_camera.cx == pytest.approx(342.279)
    assert c.baseline == pytest.approx(0.193001)
    np.testing.assert_allclose(c.require_stereo()[:3, 3], [-0.193001, 0, 0])
    assert c.right_camera_for(741 // 2, 250).cx == pytest.approx((342.279 + 0.5) * (370 / 741) - 0.5)


def test_middlebury_calib_with_a_doffs_that_contradicts_the_matrices_is_refused(tmp_path):
    with pytest.raises(ValueError, match="doffs"):
        load_calib_file(write(tmp_path, MIDDLEBURY_CALIB.replace("doffs=31.086", "doffs=12"), "calib.txt"))
    with pytest.raises(ValueError, match="cam1"):
        load_calib_file(write(tmp_path, MIDDLEBURY_CALIB.replace("0 994.978 254.877; 0 0 1]\ndoffs", "0 1]\ndoffs"),
                              "calib.txt"))


def test_kitti_right_projection_with_its_own_principal_point_is_kept(tmp_path):
    text = ("S_rect_02: 7.41e+02 5.00e+02\n"
            "P_rect_02: 994.978 0 311.193 0 0 994.978 254.877 0 0 0 1 0\n"
            "P_rect_03: 994.978 0 342.279 -192.0318 0 994.978 254.877 0 0 0 1 0\n")
    c = load_calib_file(write(tmp_path, text, "calib_cam_to_cam.txt"))
    assert c.camera.cx == pytest.approx(311.193) and c.right_camera.cx == pytest.approx(342.279)
    assert c.baseline == pytest.approx(0.193, abs=1e-4)


def test_kitti_file_without_the_right_camera_serves_a_monocular_command(tmp_path):
    text = "S_rect_02: 1.242e+03 3.75e+02\nP_rect_02: 721.5 0 609.6 44.9 0 721.5 172.9 0.2 0 0 1 0.003\n"
    c = load_calib_file(write(tmp_path, text, "calib_cam_to_cam.txt"))
    assert c.camera.fx == 721.5 and c.right_camera is None and c.baseline is None
    with pytest.raises(ValueError, match="no stereo geometry"):
        c.require_stereo()
    with pytest.raises(ValueError, match=r"P_rect_02"):
        load_calib_file(write(tmp_path, "S_rect_02: 1 2\n", "calib_cam_to_cam.txt"))


def test_binary_garbage_and_broken_yaml_give_one_line_naming_the_file(tmp_path):
    garbage = tmp_path / "calib.yaml"
    garbage.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError, match="calib.yaml is not a text file") as info:
        load_calib_file(garbage)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="not valid YAML") as info:
        load_calib_file(write(tmp_path, "fx: [1, 2\ncx: {\n  - 3\n"))
    assert "\n" not in str(info.value) and "calib.yaml" in str(info.value)
    with pytest.raises(ValueError, match="folder"):
        load_calib_file(tmp_path)


def _filestorage(path, **entries):
    """A calibration as OpenCV itself writes it (cv2.FileStorage, YAML): the format of OpenCV's calibration
    tools, with `%YAML:1.0` and `!!opencv-matrix` tags that plain YAML readers refuse."""
    import cv2

    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    for key, value in entries.items():
        fs.write(key, value)
    fs.release()
    return path


def test_opencv_filestorage_yaml_from_the_calibration_and_stereo_tools(tmp_path):
    K = np.array([[535.9, 0, 342.3], [0, 535.9, 235.6], [0, 0, 1]])
    mono = _filestorage(tmp_path / "out_camera_data.yml", image_width=640, image_height=480, camera_matrix=K,
                        distortion_coefficients=np.array([[-0.27, -0.04, 0.002, 0.0, 0.24]]))
    assert mono.read_text().startswith("%YAML") and "!!opencv-matrix" in mono.read_text()
    c = load_calib_file(mono)
    assert (c.camera.fx, c.camera.cx, c.camera.cy, c.camera.shape) == (535.9, 342.3, 235.6, (480, 640))
    assert c.baseline is None
    P1 = np.hstack([K, np.zeros((3, 1))])
    P2 = P1.copy()
    P2[0, 2] += 4.0  # the rectified right camera's own principal point (OpenCV's CALIB_ZERO_DISPARITY off)
    P2[0, 3] = -535.9 * 0.12
    stereo = _filestorage(tmp_path / "extrinsics.yml", R=np.eye(3), T=np.array([[-0.12], [0], [0]]), P1=P1, P2=P2)
    s = load_calib_file(stereo, image_size=(640, 480))
    assert s.baseline == pytest.approx(0.12) and s.right_camera.cx == pytest.approx(346.3)
    np.testing.assert_allclose(s.require_stereo()[:3, 3], [-0.12, 0, 0], atol=1e-9)
    with pytest.raises(ValueError, match="missing keys 'width' and 'height'"):
        load_calib_file(stereo)  # the stereo tool writes no image size
    # one file with the raw and the rectified matrices (intrinsics.yml and extrinsics.yml together): the
    # rectified images take P1 / P2, never the raw M1 beside P2's principal point
    raw = K.copy()
    raw[0, 0], raw[0, 2] = 530.0, 330.0
    both = _filestorage(tmp_path / "stereo.yml", M1=raw, D1=np.zeros((1, 5)), M2=raw, D2=np.zeros((1, 5)), P1=P1,
                        P2=P2)
    b = load_calib_file(both, image_size=(640, 480))
    assert (b.camera.fx, b.camera.cx) == (535.9, 342.3) and b.right_camera.cx == pytest.approx(346.3)
    with pytest.raises(ValueError, match="P2 without P1"):
        load_calib_file(_filestorage(tmp_path / "p2.yml", M1=raw, P2=P2), image_size=(640, 480))
    bom = tmp_path / "bom.yml"
    bom.write_text("\ufeff" + mono.read_text())
    assert load_calib_file(bom).camera.fx == 535.9
    flat = tmp_path / "flat.yml"  # nine numbers, but the mapping says 1x9: not a 3x3 matrix
    flat.write_text(mono.read_text().replace("rows: 3\n   cols: 3", "rows: 1\n   cols: 9", 1))
    with pytest.raises(ValueError, match="'camera_matrix' must be 3x3, its mapping says 1x9"):
        load_calib_file(flat)
    huge = tmp_path / "huge.yml"
    huge.write_text(mono.read_text() + "#" * (2 << 20))
    with pytest.raises(ValueError, match="too large for a calibration"):
        load_calib_file(huge)
    xml = _filestorage(tmp_path / "calib.xml", camera_matrix=K)
    with pytest.raises(ValueError, match="FileStorage XML is not read here"):
        load_calib_file(xml)


REAL_OPENCV = find_opencv_samples(lambda f: (Path(f) / "intrinsics.yml").is_file())


@pytest.mark.skipif(REAL_OPENCV is None, reason="OpenCV's sample data is not here: `bash tools/fetch_real_scenes.sh`")
def test_the_calibrations_opencvs_own_tools_wrote_in_its_sample_data_read():
    """left_intrinsics.yml (the calibration sample's output, 13 chessboard views) and intrinsics.yml (the stereo
    sample's, M1 / M2 with their own principal points), as Debian's opencv-doc ships them."""
    folder = REAL_OPENCV
    mono = load_calib_file(folder / "left_intrinsics.yml")
    assert mono.camera.shape == (480, 640) and mono.camera.fx == pytest.approx(535.9157, abs=1e-3)
    assert mono.camera.cy == pytest.approx(235.5708, abs=1e-3)
    pair = load_calib_file(folder / "intrinsics.yml", image_size=(640, 480))
    assert pair.camera.cx == pytest.approx(335.6864, abs=1e-3) and pair.right_camera.cx == pytest.approx(334.5574,
                                                                                                          abs=1e-3)
    with pytest.raises(ValueError, match="has no stereo geometry"):  # raw intrinsics only: no baseline
        pair.require_stereo()
