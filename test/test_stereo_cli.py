"""`depth-perception train stereo` and `eval stereo` end to end on a drive written in the KITTI raw layout."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from depth_perception.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from helpers.stereo_scene import PlaneDrive, write_plane_drive


@pytest.fixture(scope="module")
def drive_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("drives")
    write_plane_drive(root, frames=3)
    return root


def test_written_drive_reads_back_through_kitti_raw_drive(drive_root):
    from depth_perception.data.kitti import KittiRawDrive
    from depth_perception.training.stereo_data import drive_baseline, find_drives

    (path,) = find_drives([drive_root])
    drive = KittiRawDrive(path)
    ref = PlaneDrive(frames=3)
    assert drive.num_frames == 3 and drive_baseline(drive) == pytest.approx(0.5)
    np.testing.assert_allclose(drive.groundtruth_depth(2, 1), ref.groundtruth_depth(2, 1), atol=1 / 256)
    np.testing.assert_allclose(drive.cam_poses(2), ref.cam_poses(2), atol=1e-6)


def test_train_stereo_runs_both_stages_and_resumes(tmp_path, drive_root, capsys):
    s1, s2 = tmp_path / "s1", tmp_path / "s2"
    common = ["--data", str(drive_root), "--height", "32", "--width", "64", "--planes", "8", "--min-depth", "2",
              "--max-depth", "40", "--batch-size", "2", "--workers", "0", "--device", "cpu", "--log-every", "1"]
    assert main(["train", "stereo", "--out", str(s1), "--steps", "2", *common]) == 0
    assert main(["train", "stereo", "--out", str(s1), "--steps", "3", *common]) == 0  # resumes at step 2
    rows = [json.loads(line) for line in (s1 / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and {"depth", "coarse", "normal"} <= set(rows[0])
    assert main(["train", "stereo", "--out", str(s2), "--stage", "2", "--init", str(s1), "--steps", "1",
                 "--data", str(drive_root), "--batch-size", "2", "--workers", "0", "--device", "cpu"]) == 0
    meta = json.loads((s2 / "checkpoint.json").read_text())
    assert meta["stage"] == 2 and meta["model"]["config"]["planes"] == 8
    assert main(["train", "stereo", "--out", str(tmp_path / "x"), "--stage", "2", *common]) == 2
    assert "--init" in capsys.readouterr().err
    # A checkpoint folder runs as an engine: eval scores it beside SGBM, with normals against the drive's.
    out = tmp_path / "eval.json"
    assert main(["eval", "stereo", "--data", str(drive_root), "--engine", str(s2), "--height", "48", "--width", "128",
                 "--min-depth", "2", "--max-depth", "40", "--max-frames", "1", "--device", "cpu",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["methods"]
    assert set(rows) == {"sgbm", "learned:s2"}
    assert 0 <= rows["learned:s2"]["normal_deg"] <= 180 and rows["learned:s2"]["density"] == 1.0


def test_eval_stereo_writes_the_table_and_json(tmp_path, drive_root, capsys):
    out = tmp_path / "eval.json"
    assert main(["eval", "stereo", "--data", str(drive_root), "--engine", "classical", "--height", "48",
                 "--width", "128", "--min-depth", "2", "--max-depth", "40", "--planes", "32",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["frames"] == 3 and set(report["methods"]) == {"sgbm", "classical"}
    assert report["methods"]["classical"]["abs_rel"] < 0.05
    text = capsys.readouterr().out
    assert "sgbm" in text and "classical" in text and "bad3" in text


def test_eval_stereo_without_drives_is_a_one_line_error(tmp_path, capsys):
    assert main(["eval", "stereo", "--data", str(tmp_path)]) == 2
    assert "no KITTI-layout drives" in capsys.readouterr().err
