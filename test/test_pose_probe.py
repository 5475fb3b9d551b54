"""The pose probe: fixed synthetic frame pairs with their true motion, a cosine and scale that follow the pose
network (right, reversed, shortened), BatchNorm statistics left untouched, and the figures in a training run's
scalar log."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from depth_perception.cli import main
from depth_perception.models.mono import MonoDepthNet
from depth_perception.training.pose_probe import PoseProbe

sys.path.insert(0, str(Path(__file__).parent))
from helpers.mono_scene import write_corridor_drive

pytestmark = pytest.mark.slow  # not in `make test-fast`

H, W = 64, 128


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    assert main(["synth", "--seed", "3", "--frames", "6", "--width", str(W), "--height", str(H), "--out",
                 str(root / "data"), "--normals", "none"]) == 0
    return next((root / "data").glob("*/*_sync"))


class FixedPose(nn.Module):
    """Stands in for the pose network: returns the given translations (the probe is what is tested)."""

    def __init__(self, translation: np.ndarray) -> None:
        super().__init__()
        self.translation = torch.as_tensor(translation, dtype=torch.float32)

    def forward(self, a, b):
        return torch.zeros_like(self.translation), self.translation


def test_the_probe_pairs_move_forward_and_the_figures_follow_the_pose(drive):
    probe = PoseProbe.from_drives([drive.parent.parent], H, W, pairs=4)
    assert len(probe.pairs) == 4
    assert all(p.t_true[2] < -0.1 for p in probe.pairs)  # the next camera is ahead: the scene comes closer
    assert all((p.gt_depth > 0).mean() > 0.5 for p in probe.pairs)
    net = MonoDepthNet(height=H, width=W, pose_net=True)
    for translation, cos, scale in ((probe.t_true, 1.0, 1.0), (-2.0 * probe.t_true, -1.0, 0.5),
                                    (0.1 * probe.t_true, 1.0, 10.0)):
        net.pose = FixedPose(translation)
        figures = probe(net)
        assert figures["pose_cos"] == pytest.approx(cos, abs=1e-5)
        assert figures["pose_cos_train"] == pytest.approx(cos, abs=1e-5)
        assert figures["pose_scale"] == pytest.approx(scale, rel=1e-4)
        assert figures["depth_scale"] > 0


def test_the_probe_leaves_the_networks_state_as_it_was(drive):
    probe = PoseProbe.from_drives([drive], H, W, pairs=3)
    net = MonoDepthNet(height=H, width=W, pose_net=True).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    figures = probe(net)
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert -1.0 <= figures["pose_cos"] <= 1.0 and -1.0 <= figures["pose_cos_train"] <= 1.0
    with pytest.raises(ValueError, match="pose net"):
        probe(MonoDepthNet(height=H, width=W, pose_net=False))


def test_a_monocular_run_logs_the_probe_and_a_probe_without_synthetic_drives_is_refused(drive, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "mono", "--data", str(drive), "--out", str(run), "--mode", "mono", "--arch", "narrow",
                 "--height", str(H), "--width", str(W), "--steps", "4", "--batch-size", "2", "--workers", "0",
                 "--device", "cpu", "--log-every", "1", "--probe-every", "2", "--probe-pairs", "3"]) == 0
    rows = [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines()]
    probed = [r["step"] for r in rows if "pose_cos" in r]
    assert probed == [2, 4]
    assert all(np.isfinite(r["pose_scale"]) and -1 <= r["pose_cos"] <= 1 for r in rows if "pose_cos" in r)
    capsys.readouterr()
    recorded = write_corridor_drive(tmp_path / "recorded", frames=4, width=W, height=H)
    (recorded / "synthetic" / "poses_cam02.txt").unlink()  # as a recorded drive: no true poses
    assert main(["train", "mono", "--data", str(drive), "--out", str(tmp_path / "run2"), "--mode", "mono",
                 "--height", str(H), "--width", str(W), "--steps", "2", "--batch-size", "2", "--workers", "0",
                 "--device", "cpu", "--probe-data", str(recorded)]) == 2
    assert "no synthetic drive" in capsys.readouterr().err


def test_the_ablation_script_trains_probes_and_scores_each_variant(drive, tmp_path):
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHON": sys.executable, "HEIGHT": str(H), "WIDTH": str(W), "BATCH": "2", "STEPS": "2",
           "PROBE_EVERY": "1", "EVAL_FRAMES": "2", "JOBS": "2"}
    proc = subprocess.run(["bash", str(root / "tools" / "mono_ablations.sh"), str(drive), str(drive),
                           str(tmp_path / "out"), "1", "base", "reflect"], capture_output=True, text=True, env=env,
                          cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rows = {line.split()[0]: line.split() for line in (tmp_path / "out" / "summary.txt").read_text().splitlines()[1:]}
    assert set(rows) == {"base", "reflect"}
    for cells in rows.values():
        assert int(cells[1]) == 2 and -1 <= float(cells[2]) <= 1 and float(cells[6]) > 0  # steps, cos, AbsRel
    bad = subprocess.run(["bash", str(root / "tools" / "mono_ablations.sh"), str(drive), str(drive),
                          str(tmp_path / "bad"), "1", "nonsense"], capture_output=True, text=True, env=env, cwd=root)
    assert bad.returncode == 2 and "unknown variant nonsense" in bad.stderr
