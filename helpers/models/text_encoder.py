"""A small text encoder in the manner of CLIP's (Radford et al. 2021), written from scratch for notebook 11: token and
position embeddings, pre-norm transformer blocks (bidirectional attention that ignores padding), a final layer norm.
It returns every token's vector (the context a text-conditioned denoiser cross-attends to) and a pooled vector (the
<eos> token's, projected to the joint space of the contrastive training; helpers.training.clip trains it against the
latents of the images the captions describe, through `LatentEncoder`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TextEncoderConfig:
    vocab_size: int = 46
    max_length: int = 16
    width: int = 128
    depth: int = 2
    num_heads: int = 4
    embed_dim: int = 64  # the joint text-image space of the contrastive loss
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    latent_shape: tuple[int, ...] = (4, 7, 7)  # what LatentEncoder reads

    def __post_init__(self):
        self.latent_shape = tuple(self.latent_shape)
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")

    def to_dict(self) -> dict:
        return {**self.__dict__, "latent_shape": list(self.latent_shape)}


class TextEncoder(nn.Module):
    def __init__(self, config: TextEncoderConfig):
        super().__init__()
        self.config = cfg = config
        self.token = nn.Embedding(cfg.vocab_size, cfg.width)
        self.position = nn.Parameter(torch.randn(cfg.max_length, cfg.width) * 0.01)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.num_heads, 4 * cfg.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.width)
        self.project = nn.Linear(cfg.width, cfg.embed_dim, bias=False)
        self.latents = LatentEncoder(cfg)  # the image side of the contrastive loss (not used to condition anything)
        self.log_temperature = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's start

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ids [N, L] -> (tokens [N, L, width], pooled [N, embed_dim], L2-normalised)."""
        cfg = self.config
        if ids.ndim != 2 or ids.shape[1] != cfg.max_length or ids.dtype != torch.long:
            raise ValueError(f"expected token ids [N, {cfg.max_length}] (torch.long), got {list(ids.shape)} {ids.dtype}")
        h = self.token(ids) + self.position
        h = self.norm(self.blocks(h, src_key_padding_mask=ids == cfg.pad_id))
        eos = (ids == cfg.eos_id).int().argmax(1)
        pooled = self.project(h[torch.arange(len(ids)), eos])
        return h, F.normalize(pooled, dim=-1)

    def empty(self, n: int, device=None) -> torch.Tensor:
        """Token ids [n, L] of the empty caption (<bos> <eos> <pad>...): the null condition of text CFG."""
        cfg = self.config
        ids = torch.full((n, cfg.max_length), cfg.pad_id, dtype=torch.long, device=device)
        ids[:, 0], ids[:, 1] = cfg.bos_id, cfg.eos_id
        return ids


class LatentEncoder(nn.Module):
    """The image side of the contrastive loss: a small MLP from an autoencoder latent to the joint space."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        n = 1
        for s in cfg.latent_shape:
            n *= s
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(n, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(),
                                 nn.Linear(256, cfg.embed_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(z), dim=-1)
