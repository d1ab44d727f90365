"""One denoiser interface for every sampler: `denoiser(x_t, t, y=None) -> eps_hat`, plus `denoiser.alpha_bar`.

Adapters turn a network that predicts eps, v or x0 into that form, and count network evaluations (NFE) exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from .schedules import Schedule, gather


class Denoiser(nn.Module):
    """Wraps a network `net(x_t, t[, y])` trained with `prediction` in {eps, v, x0} on `schedule`."""

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str = "eps", channels_last: bool = False):
        super().__init__()
        if prediction not in ("eps", "v", "x0"):
            raise ValueError(f"unknown prediction type {prediction!r}; known types: eps, v, x0")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.alpha_bar = schedule.alpha_bar
        self.channels_last = channels_last
        self.nfe = 0  # network evaluations, counted per call (a batch counts once)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.nfe += 1
        inp = x_t.contiguous(memory_format=torch.channels_last) if self.channels_last else x_t
        out = (self.net(inp, t) if y is None else self.net(inp, t, y)).float()
        if self.prediction == "eps":
            return out
        ab = gather(self.alpha_bar, t, x_t)
        if self.prediction == "v":  # eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v
            return (1 - ab).sqrt() * x_t + ab.sqrt() * out
        return (x_t - ab.sqrt() * out) / (1 - ab).sqrt()  # from x0


def from_checkpoint(folder, ema: bool = True, device="cpu", channels_last: bool | None = None):
    """The Denoiser of one of our checkpoints, and its model card."""
    from .checkpoints import load_model

    net, card = load_model(folder, ema=ema, device=device)
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    schedule = Schedule.from_name(card["schedule"]["name"], card["schedule"]["T"])
    return Denoiser(net, schedule, card["prediction"], channels_last=channels_last), card
