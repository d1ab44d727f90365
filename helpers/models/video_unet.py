"""A factorised space-time U-Net for video diffusion (Ho et al., "Video Diffusion Models", 2022), written from
scratch for the course.

A clip [N x F x C x H x W] goes through the image U-Net's blocks frame by frame (residual blocks with 2-D
convolutions, spatial self-attention at the lowest resolutions), and after each residual block through a temporal
self-attention that lets every pixel position attend across the F frames, with a learned relative position bias per
head (VDM's "relative position embeddings", so the network knows the frames' order and works for any F up to
`max_frames`). With `frames_independent=True` the temporal attention of each frame sees only itself, which makes the
network an image model applied to each frame: VDM's joint training on still images masks it this way.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from helpers.models.layers import AttentionBlock, Downsample, NetConfig, ResBlock, Upsample, class_labels, timestep_embedding, zero_module


@dataclass
class VideoUNetConfig(NetConfig):
    in_channels: int = 1
    image_size: int = 32
    num_frames: int = 8  # the clip length it samples (sample_shape); it runs on any length up to max_frames
    max_frames: int = 32
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (8,)  # spatial attention at these feature-map sizes
    num_heads: int = 4
    groups: int = 8
    dropout: float = 0.0
    num_classes: int | None = None

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        self.attention_resolutions = tuple(self.attention_resolutions)
        if not 1 <= self.num_frames <= self.max_frames:
            raise ValueError(f"num_frames must be between 1 and max_frames = {self.max_frames}, got {self.num_frames}")
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.image_size % factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by {factor} ({len(self.channel_mults)} levels)")
        for mult in self.channel_mults:
            if (self.base_channels * mult) % self.groups or (self.base_channels * mult) % self.num_heads:
                raise ValueError(f"channels {self.base_channels * mult} not divisible by groups={self.groups} "
                                 f"and num_heads={self.num_heads}")

    @property
    def sample_shape(self) -> tuple[int, int, int, int]:
        return (self.num_frames, self.in_channels, self.image_size, self.image_size)


class TemporalAttention(nn.Module):
    """Self-attention across the frames at each pixel position, with a learned bias per head and frame offset."""

    def __init__(self, channels: int, num_heads: int, groups: int, max_frames: int):
        super().__init__()
        self.num_heads, self.max_frames = num_heads, max_frames
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.relative_bias = nn.Parameter(torch.zeros(num_heads, 2 * max_frames - 1))
        self.proj = zero_module(nn.Linear(channels, channels))

    def bias(self, frames: int, independent: bool, device) -> torch.Tensor:
        """[heads, F, F]: bias[h, i, j] = table[h, j - i]; -inf off the diagonal for independent frames."""
        offsets = torch.arange(frames, device=device)
        b = self.relative_bias[:, offsets[None, :] - offsets[:, None] + self.max_frames - 1]
        if independent:
            b = b.masked_fill(~torch.eye(frames, dtype=torch.bool, device=device), float("-inf"))
        return b

    def forward(self, x: torch.Tensor, frames: int, independent: bool = False) -> torch.Tensor:
        nf, c, h, w = x.shape
        n = nf // frames
        tokens = self.norm(x).reshape(n, frames, c, h * w).permute(0, 3, 1, 2).reshape(n * h * w, frames, c)
        q, k, v = self.qkv(tokens).reshape(n * h * w, frames, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias(frames, independent, x.device))
        out = self.proj(out.transpose(1, 2).reshape(n * h * w, frames, c))
        return x + out.reshape(n, h * w, frames, c).permute(0, 2, 3, 1).reshape(nf, c, h, w)


class SpaceTimeBlock(nn.Module):
    """A residual block per frame, then spatial attention per frame (or none), then temporal attention."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, cfg: VideoUNetConfig, spatial: bool):
        super().__init__()
        self.res = ResBlock(c_in, c_out, emb_dim, cfg.groups, cfg.dropout)
        self.spatial = AttentionBlock(c_out, cfg.num_heads, cfg.groups) if spatial else nn.Identity()
        self.temporal = TemporalAttention(c_out, cfg.num_heads, cfg.groups, cfg.max_frames)

    def forward(self, x, emb, frames: int, independent: bool):
        return self.temporal(self.spatial(self.res(x, emb)), frames, independent)


class VideoUNet(nn.Module):
    """eps_theta(x_t, t[, y]) on clips [N x F x C x H x W] (any F up to max_frames)."""

    def __init__(self, config: VideoUNetConfig):
        super().__init__()
        self.config = cfg = config
        ch, emb_dim = cfg.base_channels, 4 * cfg.base_channels
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes else None
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        res, c_prev, skips = cfg.image_size, ch, [ch]
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in enumerate(cfg.channel_mults):
            c = ch * mult
            blocks = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(SpaceTimeBlock(c_prev, c, emb_dim, cfg, res in cfg.attention_resolutions))
                c_prev = c
                skips.append(c)
            self.down.append(nn.ModuleList(blocks))
            last = level == len(cfg.channel_mults) - 1
            self.downsample.append(nn.Identity() if last else Downsample(c))
            if not last:
                skips.append(c)
                res //= 2
        self.mid = nn.ModuleList([SpaceTimeBlock(c_prev, c_prev, emb_dim, cfg, True),
                                  SpaceTimeBlock(c_prev, c_prev, emb_dim, cfg, False)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            c = ch * mult
            blocks = []
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(SpaceTimeBlock(c_prev + skips.pop(), c, emb_dim, cfg, res in cfg.attention_resolutions))
                c_prev = c
            self.up.append(nn.ModuleList(blocks))
            self.upsample.append(Upsample(c) if level > 0 else nn.Identity())
            if level > 0:
                res *= 2
        self.norm_out = nn.GroupNorm(cfg.groups, c_prev)
        self.conv_out = zero_module(nn.Conv2d(c_prev, cfg.in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None,
                frames_independent: bool = False) -> torch.Tensor:
        cfg = self.config
        if x.ndim != 5 or tuple(x.shape[2:]) != cfg.sample_shape[1:] or not 1 <= x.shape[1] <= cfg.max_frames:
            raise ValueError(f"expected clips of shape [N, F <= {cfg.max_frames}, {cfg.in_channels}, {cfg.image_size}, "
                             f"{cfg.image_size}], got {list(x.shape)}")
        n, frames = x.shape[:2]
        if t.ndim == 0:
            t = t.expand(n)
        emb = self.time_mlp(timestep_embedding(t, cfg.base_channels))
        y = class_labels(y, cfg.num_classes, t, "video U-Net")
        if y is not None:
            emb = emb + self.label_emb(y)
        emb = emb.repeat_interleave(frames, dim=0)  # one embedding per frame of its clip
        h = self.conv_in(x.reshape(n * frames, *x.shape[2:]))
        hs = [h]
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb, frames, frames_independent)
                hs.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                hs.append(h)
        for block in self.mid:
            h = block(h, emb, frames, frames_independent)
        for blocks, up in zip(self.up, self.upsample):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb, frames, frames_independent)
            h = up(h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return h.reshape(n, frames, *h.shape[1:])
