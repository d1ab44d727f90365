import importlib.util
import os

import pytest
import torch

from helpers.denoisers import Denoiser
from helpers.schedules import Schedule
from helpers.models.unet import UNet, UNetConfig
from helpers.paths import ROOT

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # `make test`: the cores shared out among the workers (the notebooks'
    THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))  # kernels and the CLIs'
    os.environ["OMP_NUM_THREADS"] = str(THREADS)                                          # subprocesses inherit it)
    torch.set_num_threads(THREADS)


def bench_script(name: str):
    """The benchmark helpers.studies.NAME (the command bench/NAME.py runs)."""
    return importlib.import_module(f"helpers.studies.{name}")


def tiny_unet(seed: int = 0, **overrides) -> UNet:
    """An 8x8 U-Net whose weights are all drawn from N(0, 0.05^2) (the zero-initialised output layers included,
    so that it predicts a non-trivial eps), for deterministic sampler tests."""
    cfg = dict(in_channels=1, image_size=8, base_channels=16, channel_mults=(1, 2), attention_resolutions=(4,))
    torch.manual_seed(seed)
    model = UNet(UNetConfig(**{**cfg, **overrides}))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


class GaussianPlusNet(torch.nn.Module):
    """eps_theta = the exact noise prediction for data ~ N(0, s^2 I), sqrt(1 - ab) x_t / (s^2 ab + 1 - ab), plus 0.1 x
    a random U-Net: a test network whose samples stay of order one (a random network alone makes x0_hat explode
    at large t without clipping), yet depends non-trivially on x_t and t."""

    def __init__(self, net, alpha_bar, s2: float = 0.25):
        super().__init__()
        self.net, self.alpha_bar, self.s2 = net, alpha_bar, s2

    def forward(self, x, t, y=None):
        ab = self.alpha_bar[t].float().reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * x / (self.s2 * ab + 1 - ab) + 0.1 * self.net(x, t)


@pytest.fixture
def tiny_denoiser():
    schedule = Schedule.from_name("linear", 1000)
    return Denoiser(GaussianPlusNet(tiny_unet(), schedule.alpha_bar), schedule)
