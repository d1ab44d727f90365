"""A U-Net noise-prediction network, written from scratch for the course.

The layout follows Ho et al. (2020, appendix B) as refined by Nichol & Dhariwal (2021): residual blocks with
GroupNorm and SiLU, a sinusoidal time embedding added inside every block, self-attention at the lowest resolutions,
and an optional class-label embedding with one extra, reserved "null" label for classifier-free guidance.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.layers import AttentionBlock, Downsample, NetConfig, ResBlock, Upsample, class_labels, timestep_embedding, zero_module


@dataclass
class UNetConfig(NetConfig):
    """Hyper-parameters of :class:`UNet`; stored in every checkpoint's model card."""

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (7,)  # feature-map sizes that get self-attention
    num_heads: int = 4
    dropout: float = 0.0
    num_classes: int | None = None  # None: unconditional. Otherwise label `num_classes` is the null label.
    groups: int = 8

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        self.attention_resolutions = tuple(self.attention_resolutions)
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if not 8 <= self.image_size <= 256:  # the course's sizes, MNIST 28 to LSUN church 256
            raise ValueError(f"image_size must be between 8 and 256, got {self.image_size}")
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**{len(self.channel_mults) - 1} = {factor}, "
                f"which {len(self.channel_mults)} resolution levels need; use fewer channel_mults"
            )
        for mult in self.channel_mults:
            if (self.base_channels * mult) % self.groups:
                raise ValueError(f"channels {self.base_channels * mult} not divisible by groups={self.groups}")

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return (self.in_channels, self.image_size, self.image_size)


class Level(nn.Module):
    """The blocks of one resolution: residual blocks, each optionally followed by attention."""

    def __init__(self, blocks: list[ResBlock], attns: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attns = nn.ModuleList(attns)


class UNet(nn.Module):
    """eps_theta(x_t, t[, y]): an [N x C x H x W] noisy image and [N] timesteps (and [N] labels) to an
    [N x C x H x W] output (eps, v or x0, as the training objective decides)."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        ch = cfg.base_channels
        emb_dim = 4 * ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # Label embedding: one row per class plus the reserved null label (index num_classes).
        self.label_emb = nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes else None
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)

        def attn(c, res):
            return AttentionBlock(c, cfg.num_heads, cfg.groups) if res in cfg.attention_resolutions else nn.Identity()

        res, c_prev, skips = cfg.image_size, ch, [ch]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in enumerate(cfg.channel_mults):
            c = ch * mult
            blocks, attns = [], []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(c_prev, c, emb_dim, cfg.groups, cfg.dropout))
                attns.append(attn(c, res))
                c_prev = c
                skips.append(c)
            self.down.append(Level(blocks, attns))
            last = level == len(cfg.channel_mults) - 1
            self.downsample.append(nn.Identity() if last else Downsample(c))
            if not last:
                skips.append(c)
                res //= 2

        self.mid1 = ResBlock(c_prev, c_prev, emb_dim, cfg.groups, cfg.dropout)
        self.mid_attn = AttentionBlock(c_prev, cfg.num_heads, cfg.groups)
        self.mid2 = ResBlock(c_prev, c_prev, emb_dim, cfg.groups, cfg.dropout)

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            c = ch * mult
            blocks, attns = [], []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(ResBlock(c_prev + skips.pop(), c, emb_dim, cfg.groups, cfg.dropout))
                attns.append(attn(c, res))
                c_prev = c
            self.up.append(Level(blocks, attns))
            self.upsample.append(Upsample(c) if level > 0 else nn.Identity())
            if level > 0:
                res *= 2

        self.norm_out = nn.GroupNorm(cfg.groups, c_prev)
        self.conv_out = zero_module(nn.Conv2d(c_prev, cfg.in_channels, 3, padding=1))

    def embed(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels))
        y = class_labels(y, self.config.num_classes, t, "U-Net")
        return emb if y is None else emb + self.label_emb(y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 4 or x.shape[1] != cfg.in_channels or x.shape[-1] != cfg.image_size or x.shape[-2] != cfg.image_size:
            raise ValueError(
                f"expected input of shape [N, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}], got {list(x.shape)}"
            )
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.embed(t, y)
        h = self.conv_in(x)
        hs = [h]
        for level, down in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, up in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, hs.pop()], dim=1), emb))
            h = up(h)
        return self.conv_out(F.silu(self.norm_out(h)))
