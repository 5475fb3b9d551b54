"""Run by test_trainer under torchrun: a 2-process gloo DDP fit of a tiny regression."""
import os
import sys

import torch

from depth_perception.training.trainer import TrainConfig, Trainer


class Pairs(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(64, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def loss_fn(model, batch):
    err = model(batch["x"]).squeeze(-1) - batch["y"]
    return (err**2).mean(), {}


if __name__ == "__main__":
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    cfg = TrainConfig(out_dir=sys.argv[1], steps=40, batch_size=8, lr=0.05, log_every=5, ckpt_every=40, device="cpu")
    hist = Trainer(model, loss_fn, Pairs(), cfg, {"name": "linear", "config": {}}).fit()
    if int(os.environ.get("RANK", "0")) == 0:
        print("FIRST", hist[0]["loss"], "LAST", hist[-1]["loss"], flush=True)
