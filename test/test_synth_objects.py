"""The objects scene mode (synth --scene objects): random textured objects before a background, both views ray
cast exactly, drives in the KITTI layout that the stereo and completion datasets read and monocular training
refuses."""
import numpy as np
import pytest

from depth_perception.cli import main
from depth_perception.data.kitti import KittiRawDrive
from depth_perception.data.synth.objects import CARD, RECT, Rig, Thing, ray_cast, render_frame
from depth_perception.geometry import PinholeCamera

pytestmark = pytest.mark.slow  # not in `make test-fast`

W, H = 160, 64


def test_a_card_facing_the_camera_reads_its_own_distance_and_normal():
    cam = PinholeCamera(W, H, 100.0, 100.0, 79.5, 31.5)
    R = np.stack([np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), np.array([0, 0, -1.0])], 1)
    card = Thing(CARD, np.array([0.0, 0.0, 3.0]), R, np.array([0.5, 0.2, 0.0]), RECT, 0, 0.01, np.zeros(2),
                 np.ones(3))
    cast = ray_cast([card], cam, np.zeros(3))
    hit = cast["index"] == 0
    # half sizes 0.5 x 0.2 m at 3 m: 33 x 13 pixels either side of the principal point
    assert abs(hit.sum(1).max() - 2 * 100 * 0.5 / 3) <= 2 and abs(hit.sum(0).max() - 2 * 100 * 0.2 / 3) <= 2
    np.testing.assert_allclose(cast["depth"][hit], 3.0, rtol=1e-6)
    np.testing.assert_allclose(cast["normal"][hit], [[0, 0, -1.0]] * int(hit.sum()))
    assert (cast["depth"][~hit] == 0).all()


def test_both_views_agree_with_the_rig_and_frames_are_deterministic():
    rig = Rig.random(np.random.default_rng(3), W, H)
    a, b = render_frame(3, 0, rig), render_frame(3, 0, rig)
    np.testing.assert_array_equal(a["left"], b["left"])
    assert not np.array_equal(a["left"], render_frame(3, 1, rig)["left"])
    zl, zr = a["depth_left"], a["depth_right"]
    assert (zl > 0).mean() > 0.9 and rig.near * 0.5 < np.median(zl[zl > 0]) < rig.far * 1.01
    # a left pixel at depth Z is seen by the right camera f B / Z pixels to the left, at the same depth
    v, u = np.nonzero(zl > 0)
    ur = np.rint(u - rig.camera.fx * rig.baseline / zl[v, u]).astype(int)
    inside = (ur >= 0) & (ur < W)
    same = np.abs(zr[v[inside], ur[inside]] - zl[v[inside], u[inside]]) < 0.02 * zl[v[inside], u[inside]]
    assert same.mean() > 0.8  # the rest are occluded in the right view or on a depth edge


def test_drives_read_back_for_stereo_and_completion_and_monocular_training_refuses_them(tmp_path, capsys):
    from depth_perception.training.completion_data import CompletionDriveDataset
    from depth_perception.training.mono_data import MonoDataset
    from depth_perception.training.stereo_data import StereoDriveDataset

    assert main(["synth", "--scene", "objects", "--seed", "4", "--frames", "2", "--out", str(tmp_path),
                 "--width", str(W), "--height", str(H)]) == 0
    path = next((tmp_path / "objects_0004").glob("*/*_sync"))
    drive = KittiRawDrive(path)
    assert drive.num_frames == 2 and drive.image(2, 0).shape == (H, W, 3)
    rig = Rig.random(np.random.default_rng([4, 2**20]), W, H)
    assert drive.calib.baseline(2, 3) == pytest.approx(rig.baseline, rel=1e-6)
    assert drive.calib.cam(2).fx == pytest.approx(rig.camera.fx, rel=1e-6)
    gt = drive.groundtruth_depth(2, 0)
    sparse = drive.sparse_depth(2, 0)
    assert (sparse > 0).any() and np.allclose(sparse[sparse > 0], gt[sparse > 0], atol=1 / 128)
    assert drive.normals(2, 0).shape == (H, W, 3)
    assert len(CompletionDriveDataset([tmp_path], crop_height=32, crop_width=64)) == 4
    assert len(StereoDriveDataset([tmp_path], height=32, width=64)) == 2
    with pytest.raises(ValueError, match="not a video"):
        MonoDataset([tmp_path], height=32, width=64)
    assert main(["synth", "--scene", "objects", "--seed", "4", "--frames", "2", "--out", str(tmp_path)]) == 2
    assert "--overwrite" in capsys.readouterr().err
