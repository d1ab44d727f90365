"""The classifiers: `DigitCNN`, the MNIST classifier that judges samples and gives the offline FID features
(helpers.evaluation.digits trains it), and `NoisyClassifier`, p_phi(y | x_t, t) for classifier guidance (helpers.samplers.guidance
trains it)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.layers import Downsample, ResBlock, timestep_embedding


@dataclass
class DigitCNNConfig:
    """Hyper-parameters of :class:`DigitCNN`; its model card stores feature_dim at the top level."""

    num_classes: int = 10
    feature_dim: int = 128

    @classmethod
    def from_card(cls, card: dict) -> "DigitCNNConfig":
        return cls(feature_dim=card["feature_dim"])


class DigitCNN(nn.Module):
    """Two conv stages (28 -> 14 -> 7) and a 128-wide penultimate layer (the feature layer); inputs in [-1, 1]."""

    def __init__(self, config: DigitCNNConfig | None = None, *, num_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        if config is not None:
            num_classes, feature_dim = config.num_classes, config.feature_dim
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, feature_dim), nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[N x 1 x 28 x 28] in [-1, 1] -> [N x feature_dim] penultimate activations."""
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"the MNIST classifier takes [N, 1, 28, 28] images, got {list(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@dataclass
class NoisyClassifierConfig:
    """Hyper-parameters of :class:`NoisyClassifier`; stored in its model card. It is trained on x_t of `schedule`
    with T steps, and guides only denoisers with the same alpha_bar."""

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    num_classes: int = 10
    T: int = 1000
    schedule: str = "linear"
    groups: int = 8

    def __post_init__(self):
        if self.image_size < 4:
            raise ValueError(f"image_size must be at least 4, got {self.image_size}")
        if self.base_channels % self.groups:
            raise ValueError(f"base_channels {self.base_channels} not divisible by groups={self.groups}")


class NoisyClassifier(nn.Module):
    """p_phi(y | x_t, t): the encoder half of a small U-Net, Dhariwal & Nichol (2021) sec. 4 in miniature (mean
    pooling instead of attention pooling). The time embedding enters every residual block.

    conv_in -> ResBlock(ch) -> down -> ResBlock(2 ch) -> down -> ResBlock(2 ch) -> GroupNorm, SiLU -> mean -> Linear
    (28 -> 14 -> 7 pixels for MNIST, 8 -> 4 -> 2 for the 8x8 digits)."""

    def __init__(self, config: NoisyClassifierConfig):
        super().__init__()
        self.config = cfg = config
        ch, emb_dim = cfg.base_channels, 4 * cfg.base_channels
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        self.block1 = ResBlock(ch, ch, emb_dim, cfg.groups, 0.0)
        self.down1 = Downsample(ch)
        self.block2 = ResBlock(ch, 2 * ch, emb_dim, cfg.groups, 0.0)
        self.down2 = Downsample(2 * ch)
        self.block3 = ResBlock(2 * ch, 2 * ch, emb_dim, cfg.groups, 0.0)
        self.norm_out = nn.GroupNorm(cfg.groups, 2 * ch)
        self.head = nn.Linear(2 * ch, cfg.num_classes)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[N x C x H x W] noisy images and [N] timesteps -> [N x num_classes] logits."""
        return self.head(self.features(x_t, t))

    def features(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """[N x C x H x W] noisy images and [N] timesteps -> [N x 2 base_channels] pooled features (before the head)."""
        cfg = self.config
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(f"the noisy classifier takes [N, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}] "
                             f"images, got {list(x_t.shape)}")
        emb = self.time_mlp(timestep_embedding(t, cfg.base_channels))  # (N, 4 ch)
        h = self.block1(self.conv_in(x_t), emb)  # (N, ch, H, W)
        h = self.block2(self.down1(h), emb)  # (N, 2 ch, H/2, W/2)
        h = self.block3(self.down2(h), emb)  # (N, 2 ch, H/4, W/4)
        return F.silu(self.norm_out(h)).mean(dim=(2, 3))  # (N, 2 ch)
