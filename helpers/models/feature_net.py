"""`FeatureNet`: a small CNN that reads labelled attributes from images [N x C x H x W] (2-D convolutions) or from
clips [N x F x C x H x W] (3-D convolutions over frames and pixels), with a feature layer for Fréchet distances where
no Inception or I3D network can be downloaded: the coloured shapes' attribute classifier (notebook 09) and the video
feature network behind "FVD (our video features)" (notebook 12). helpers.evaluation.features trains it.

Three conv stages (each two convolutions and a 2 x 2 spatial pooling; frames are never pooled, so a clip of any
length F >= 1 works), global average pooling over frames and pixels, a `feature_dim` layer (the features), and one
linear head per attribute.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class FeatureNetConfig:
    in_channels: int = 1
    image_size: int = 32
    video: bool = False
    channels: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 128
    heads: dict[str, int] = field(default_factory=lambda: {"class": 10})  # attribute -> number of classes

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if not self.heads or min(self.heads.values()) < 2:
            raise ValueError(f"heads must name at least one attribute with at least 2 classes, got {self.heads}")
        if self.image_size % 2 ** len(self.channels):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2^{len(self.channels)} (one pooling per stage)")

    def to_dict(self) -> dict:
        return {"in_channels": self.in_channels, "image_size": self.image_size, "video": self.video,
                "channels": list(self.channels), "feature_dim": self.feature_dim, "heads": dict(self.heads)}


class FeatureNet(nn.Module):
    def __init__(self, config: FeatureNetConfig):
        super().__init__()
        self.config = cfg = config
        conv = nn.Conv3d if cfg.video else nn.Conv2d
        pool = nn.MaxPool3d((1, 2, 2)) if cfg.video else nn.MaxPool2d(2)
        layers, c_prev = [], cfg.in_channels
        for c in cfg.channels:
            layers += [conv(c_prev, c, 3, padding=1), nn.ReLU(), conv(c, c, 3, padding=1), nn.ReLU(), pool]
            c_prev = c
        self.body = nn.Sequential(*layers)
        self.feature = nn.Sequential(nn.Linear(c_prev, cfg.feature_dim), nn.ReLU())
        self.heads = nn.ModuleDict({name: nn.Linear(cfg.feature_dim, k) for name, k in cfg.heads.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images [N, C, S, S] (or clips [N, F, C, S, S]) in [-1, 1] -> [N, feature_dim]."""
        cfg = self.config
        want = 5 if cfg.video else 4
        if x.ndim != want or tuple(x.shape[-3:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            what = "clips [N, F" if cfg.video else "images [N"
            raise ValueError(f"this feature network takes {what}, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}], "
                             f"got {list(x.shape)}")
        if cfg.video:
            x = x.transpose(1, 2)  # [N, C, F, S, S] for the 3-D convolutions
        return self.feature(self.body(x).flatten(2).mean(2))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}
