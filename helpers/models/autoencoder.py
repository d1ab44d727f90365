"""The autoencoder of latent diffusion: diffusers' AutoencoderKL in a small configuration, registered like every
network (its training is helpers/training/vae.py)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from helpers.models.layers import NetConfig


@dataclass
class AutoencoderConfig(NetConfig):
    """The network: diffusers' AutoencoderKL with len(block_out_channels) - 1 downsamplings."""

    in_channels: int = 1
    image_size: int = 28
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 16

    def __post_init__(self):
        self.block_out_channels = tuple(self.block_out_channels)
        factor = 2 ** (len(self.block_out_channels) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by {factor}, the autoencoder's "
                             f"downsampling ({len(self.block_out_channels)} blocks)")
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise ValueError(f"block_out_channels {bad} are not divisible by norm_num_groups {self.norm_num_groups}")

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.image_size // 2 ** (len(self.block_out_channels) - 1)
        return (self.latent_channels, size, size)


class Autoencoder(nn.Module):
    """`encode`: x -> q(z | x) (diffusers' DiagonalGaussianDistribution); `decode`: z -> x; forward: both."""

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        from diffusers import AutoencoderKL

        self.config = cfg = config
        n = len(cfg.block_out_channels)
        self.vae = AutoencoderKL(in_channels=cfg.in_channels, out_channels=cfg.in_channels,
                                 down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                                 block_out_channels=cfg.block_out_channels, layers_per_block=cfg.layers_per_block,
                                 latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_num_groups,
                                 sample_size=cfg.image_size)

    def encode(self, x: torch.Tensor):
        return self.vae.encode(x).latent_dist

    @torch.no_grad()
    def posterior_means(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """The means of q(z | x) of many images (unscaled), in batches, on the CPU."""
        device = next(self.parameters()).device
        return torch.cat([self.encode(images[i:i + batch_size].to(device)).mean.cpu()
                          for i in range(0, len(images), batch_size)])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(z).sample

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, return_posterior: bool = False):
        """The reconstruction of x from a sample of q(z | x) drawn with `generator`, or from its mean without one;
        with `return_posterior`, also q(z | x) (for the KL term)."""
        posterior = self.encode(x)
        recon = self.decode(posterior.mode() if generator is None else posterior.sample(generator=generator))
        return (recon, posterior) if return_posterior else recon
