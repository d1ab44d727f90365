import pytest
import torch

from helpers.denoisers import Denoiser
from helpers.schedules import Schedule
from helpers.unet import UNet, UNetConfig


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


@pytest.fixture
def tiny_denoiser():
    return Denoiser(tiny_unet(), Schedule.from_name("linear", 1000))
