"""The shared training loop: loss goes down, checkpoints resume exactly, DDP runs on CPU with gloo."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from depth_perception.training.checkpoint import load_weights, read_meta
from depth_perception.training.trainer import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).parent))
from helpers.ddp_train import Pairs, loss_fn

pytestmark = pytest.mark.slow  # not in `make test-fast`


def make(out, steps):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    cfg = TrainConfig(out_dir=str(out), steps=steps, batch_size=8, lr=0.2, log_every=5, ckpt_every=10, device="cpu")
    return model, Trainer(model, loss_fn, Pairs(), cfg, {"name": "linear", "config": {"n": 4}})


def test_training_lowers_the_loss_and_writes_a_checkpoint(tmp_path):
    model, trainer = make(tmp_path, 60)
    hist = trainer.fit()
    assert hist[-1]["loss"] < 0.2 * hist[0]["loss"]
    meta = read_meta(tmp_path)
    assert meta["step"] == 60 and meta["model"]["name"] == "linear"
    fresh = torch.nn.Linear(4, 1)
    load_weights(tmp_path, fresh)
    assert torch.equal(fresh.weight, model.weight)
    rows = [json.loads(line) for line in (tmp_path / "scalars.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(5, 65, 5))


def test_resume_continues_from_the_checkpoint(tmp_path):
    _, first = make(tmp_path, 20)
    first.fit()
    model, second = make(tmp_path, 40)
    hist = second.fit()
    assert read_meta(tmp_path)["step"] == 40
    assert hist[0]["step"] == 5 and hist[-1]["step"] == 40  # earlier rows kept, new rows appended
    assert len(hist) == 8


def test_time_budget_stops_early_with_a_checkpoint_and_decays_the_lr(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    cfg = TrainConfig(out_dir=str(tmp_path), steps=10**7, batch_size=8, lr=0.2, log_every=1, ckpt_every=10**6,
                      device="cpu", max_seconds=0.5, lr_milestones=(5 * 10**6,))
    trainer = Trainer(model, loss_fn, Pairs(), cfg, {"name": "linear", "config": {"n": 4}})
    hist = trainer.fit()
    stopped = trainer.stopped_early
    assert stopped is not None and 0 < stopped < 10**7
    assert read_meta(tmp_path)["step"] == stopped  # the budget's end is checkpointed, not lost
    assert hist[0]["lr"] == pytest.approx(0.2) and hist[-1]["lr"] == pytest.approx(0.02)  # milestone by time


def test_a_resumed_time_boxed_run_keeps_its_decayed_learning_rate(tmp_path):
    def run(seconds):
        torch.manual_seed(0)
        cfg = TrainConfig(out_dir=str(tmp_path), steps=10**7, batch_size=8, lr=0.2, log_every=1, ckpt_every=10**6,
                          device="cpu", max_seconds=seconds, lr_milestones=(5 * 10**6,))
        trainer = Trainer(torch.nn.Linear(4, 1), loss_fn, Pairs(), cfg, {"name": "linear", "config": {"n": 4}})
        return trainer.fit()

    first = run(0.5)
    assert first[-1]["lr"] == pytest.approx(0.02)
    second = run(0.3)
    assert [h["lr"] for h in second[len(first):]] == pytest.approx([0.02] * (len(second) - len(first)))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(out_dir="x", steps=0)


def test_corrupt_checkpoint_is_an_error_not_a_crash(tmp_path):
    _, trainer = make(tmp_path, 10)
    trainer.fit()
    (tmp_path / "checkpoint.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="unreadable"):
        load_weights(tmp_path, torch.nn.Linear(4, 1))


def test_ddp_with_two_cpu_processes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parent))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "--master_addr=127.0.0.1",
           str(Path(__file__).parent / "helpers" / "ddp_train.py"), str(tmp_path)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, last = [float(x) for x in out.stdout.split("FIRST")[1].split("LAST")]
    assert last < first
    assert read_meta(tmp_path)["world_size"] == 2
