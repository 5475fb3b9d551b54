"""tools/diagnose_mono_pose.py on a tiny monocular run and a synthetic drive: the true pose and depth warp the next
frame onto this one better than no motion does (the geometry the tool reports against is right), and every pair
gets its figures."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from depth_perception.cli import main

pytestmark = pytest.mark.slow  # not in `make test-fast`

ROOT = Path(__file__).resolve().parents[1]


def test_the_diagnosis_reports_pose_depth_and_photometric_errors(tmp_path, capsys):
    assert main(["synth", "--seed", "3", "--frames", "6", "--width", "128", "--height", "64", "--out",
                 str(tmp_path / "data"), "--normals", "none"]) == 0
    drive = next((tmp_path / "data").glob("*/*_sync"))
    run = tmp_path / "run"
    assert main(["train", "mono", "--data", str(drive), "--out", str(run), "--mode", "mono", "--arch", "narrow",
                 "--height", "64", "--width", "128", "--steps", "2", "--batch-size", "2", "--workers", "0",
                 "--device", "cpu"]) == 0
    capsys.readouterr()
    out = tmp_path / "diag.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "diagnose_mono_pose.py"), str(run), str(drive),
                           "--pairs", "3", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "verdict:" in proc.stdout
    report = json.loads(out.read_text())
    assert len(report["pairs"]) == 3
    for row in report["pairs"]:
        assert row["photometric_true"] < row["photometric_identity"]  # the car drives forward
        assert row["t_true"][2] < -0.1  # points move closer: the next camera is ahead along +z
        assert -1.0 <= row["cos"] <= 1.0
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "diagnose_mono_pose.py"), str(run),
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "poses_cam02.txt" in bad.stderr
