"""TabDDPM's MLP denoiser for tables (Kotelnikov et al. 2023, sec. 3), written from scratch: one network predicts eps
for the numerical columns and x_0's logits for each categorical column (helpers.tabular)."""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from helpers.models.layers import NetConfig, timestep_embedding


@dataclass
class MLPConfig(NetConfig):
    """Hyper-parameters of :class:`MLPDenoiser`; stored in every checkpoint's model card."""

    num_numerical: int
    cat_sizes: tuple[int, ...] = ()
    hidden: int = 256
    layers: int = 3
    emb_dim: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        self.cat_sizes = tuple(self.cat_sizes)
        if self.num_numerical + sum(self.cat_sizes) == 0:
            raise ValueError("a table needs at least one column")

    @property
    def width(self) -> int:
        """D + sum_j K_j: the width of a row [x_num | one-hot x_cat] and of the output [eps_hat | logits]."""
        return self.num_numerical + sum(self.cat_sizes)

    @property
    def sample_shape(self) -> tuple[int]:
        """(width,) of one row [x_num | one-hot x_cat]."""
        return (self.width,)


class MLPDenoiser(nn.Module):
    """TabDDPM's MLP (Kotelnikov et al. 2023, sec. 3): h = Linear(x_t) + MLP(timestep_embedding(t)), then `layers`
    blocks Linear-SiLU-Dropout and a linear head. x_t: [N x width]; t: [N]; returns [N x width] = [eps_hat | logits]."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = cfg = config
        e = cfg.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.proj = nn.Linear(cfg.width, cfg.emb_dim)
        dims = [cfg.emb_dim] + [cfg.hidden] * cfg.layers
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.SiLU(), nn.Dropout(cfg.dropout)) for a, b in itertools.pairwise(dims)
        )
        self.head = nn.Linear(dims[-1], cfg.width)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.proj(x_t) + self.time_mlp(timestep_embedding(t, self.config.emb_dim))  # (N, emb_dim)
        for block in self.blocks:
            h = block(h)  # (N, hidden)
        return self.head(h)  # (N, D + sum K)
