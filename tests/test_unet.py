import json

import pytest
import torch

from helpers.paths import ROOT
from helpers.models import count_parameters
from helpers.models.layers import timestep_embedding
from helpers.models.unet import UNet, UNetConfig
from tests.conftest import tiny_unet


@pytest.mark.parametrize("channels,size,mults,attn", [
    (1, 8, (1, 2), (4,)), (1, 28, (1, 2, 4), (7,)), (3, 32, (1, 2, 2, 2), (8, 4)), (3, 64, (1, 1, 2, 2, 4), (8,)),
])
def test_shapes(channels, size, mults, attn):
    model = UNet(UNetConfig(in_channels=channels, image_size=size, base_channels=16, channel_mults=mults,
                            attention_resolutions=attn))
    x = torch.randn(2, channels, size, size)
    assert model(x, torch.tensor([0, 999])).shape == x.shape


def test_shipped_size():
    # The MNIST model's configuration (checkpoints/ddpm-mnist); 2,734,945 parameters, counted by this code on
    # 2026-11-23 and recorded in the model card by helpers.training.ddpm.
    model = UNet(UNetConfig(base_channels=32, channel_mults=(1, 2, 4), attention_resolutions=(7,)))
    assert count_parameters(model) == 2_734_945
    card = json.loads((ROOT / "checkpoints" / "ddpm-mnist" / "model_card.json").read_text())
    assert count_parameters(UNet(UNetConfig(**card["model"]))) == card["parameters"]


def test_zero_initialised_output():
    model = UNet(UNetConfig(image_size=8, base_channels=16, channel_mults=(1, 2), attention_resolutions=()))
    assert model(torch.randn(3, 1, 8, 8), torch.tensor([1, 2, 3])).abs().max().item() == 0.0


def test_time_and_label_change_output():
    model = tiny_unet(num_classes=10)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 10])
    base = model(x, t, torch.tensor([3, 3]))
    assert not torch.allclose(base, model(x, torch.tensor([500, 500]), torch.tensor([3, 3])))
    assert not torch.allclose(base, model(x, t, torch.tensor([4, 4])))
    # No label means the reserved null label, index num_classes = 10.
    assert torch.equal(model(x, t), model(x, t, torch.tensor([10, 10])))


def test_timestep_embedding_golden():
    # t = 0 gives cos(0) = 1 for the first half and sin(0) = 0 for the second.
    emb = timestep_embedding(torch.tensor([0, 1]), 8)
    assert emb[0].tolist() == [1.0] * 4 + [0.0] * 4
    # t = 1, frequency 10000^(-k/4): cos(1) for k = 0, hand-computed.
    assert emb[1, 0].item() == pytest.approx(0.5403023, abs=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="image_size 30 is not divisible by 2\\*\\*2 = 4"):
        UNetConfig(image_size=30, channel_mults=(1, 2, 2))
    with pytest.raises(ValueError, match="image_size must be between 8 and 256, got 512"):
        UNetConfig(image_size=512)
    with pytest.raises(ValueError, match="in_channels must be 1 or 3"):
        UNetConfig(in_channels=2)
    model = tiny_unet()
    with pytest.raises(ValueError, match=r"expected input of shape \[N, 1, 8, 8\], got \[2, 1, 9, 9\]"):
        model(torch.randn(2, 1, 9, 9), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="unconditional"):
        model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 1]))
    cond = tiny_unet(num_classes=10)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 10\]"):
        cond(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 11]))
