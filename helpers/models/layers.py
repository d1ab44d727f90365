"""The building blocks that the networks share, written from scratch for the course: the sinusoidal time embedding
(Vaswani et al. 2017, as used by Ho et al. 2020), residual blocks with GroupNorm and SiLU, self-attention over the
pixels of a feature map, and the resolution changes of a U-Net.
"""
from __future__ import annotations

import math
from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, Vaswani et al. (2017) as used by Ho et al. (2020).

    t: [N] tensor; returns an [N x dim] tensor (cosines first, then sines).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (N, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class NetConfig:
    """Shared by the networks' config dataclasses: the dict stored in the model card, and the reserved null label
    (label `num_classes`) of a class-conditional network (None for an unconditional one)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def null_label(self) -> int | None:
        return getattr(self, "num_classes", None)


def class_labels(y: torch.Tensor | None, num_classes: int | None, t: torch.Tensor, model: str) -> torch.Tensor | None:
    """The labels a network embeds: None for an unconditional network, the null label `num_classes` where none are
    given (the unconditional prediction of a conditional network), and an error for labels out of range."""
    if num_classes is None:
        if y is not None:
            raise ValueError(f"this {model} is unconditional (num_classes=None) but class labels were given")
        return None
    if y is None:
        return torch.full_like(t, num_classes, dtype=torch.long)
    if y.min() < 0 or y.max() > num_classes:
        raise ValueError(f"class labels must lie in [0, {num_classes}] ({num_classes} is the null label), "
                         f"got values in [{int(y.min())}, {int(y.max())}]")
    return y


def zero_module(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the embedding added in between (Ho et al. 2020)."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the pixels of a feature map, with a residual connection."""

    def __init__(self, channels: int, num_heads: int, groups: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.num_heads, C // self.num_heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, HW, C/heads)
        h = F.scaled_dot_product_attention(q, k, v)  # (B, heads, HW, C/heads)
        h = h.transpose(-1, -2).reshape(B, C, H, W)
        return x + self.proj(h)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
