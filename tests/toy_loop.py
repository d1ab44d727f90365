"""A toy objective for the shared training loop (helpers.training.loop): a linear map fitted to a fixed random linear map on
random inputs drawn from the step's generator. `python -m tests.toy_loop --out DIR --steps N [--resume]`."""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers.training.loop import fit, step_generator


@dataclass
class ToyConfig:
    steps: int = 30
    batch_size: int = 16
    lr: float = 0.1
    warmup: int = 5
    weight_decay: float = 0.01
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    ema_power: float = 0.75
    seed: int = 7
    checkpoint_every: int = 10
    keep_every: int = 0
    log_every: int = 5


def toy_objective(cfg: ToyConfig):
    target = torch.randn(4, 3, generator=torch.Generator().manual_seed(cfg.seed))

    def objective(model, step: int, ctx):
        g = step_generator(cfg.seed, step)
        x = torch.randn(cfg.batch_size, 4, generator=g)
        y = x @ target + 0.1 * torch.randn(cfg.batch_size, 3, generator=g)
        err = (model(ctx.local(x)) - ctx.local(y)).pow(2)
        return err.mean(), [err[:, 0].mean()]

    return objective


def train(out: Path, steps: int, resume: bool = False) -> dict:
    cfg = ToyConfig(steps=steps)
    torch.manual_seed(cfg.seed)
    model = torch.nn.Linear(4, 3)
    return fit(model, toy_objective(cfg), cfg, out, lambda: {"kind": "toy", "train": vars(cfg)}, resume=resume,
               command=f"toy --steps {steps}", progress=False, part_names=("first",))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    train(args.out, args.steps, args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
