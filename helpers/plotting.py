"""Small plotting helpers: image grids, denoising GIFs, schedule curves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch



def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """[-1, 1] images [N x C x H x W] to one uint8 grid image [H' x W' x C] (torchvision's make_grid)."""
    from torchvision.utils import make_grid as tv_make_grid

    grid = tv_make_grid((images.detach().float().cpu().clamp(-1, 1) + 1) / 2, nrow=nrow, padding=padding, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def show_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.6):
    """Plot a grid of [-1, 1] images with matplotlib; returns the axes."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(scale * w / 30, scale * h / 30))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def save_gif(frames: list[torch.Tensor], path: str | Path, nrow: int = 8, fps: int = 12, scale: int = 2,
             hold_last: int = 12) -> Path:
    """Write a GIF of grids (one grid per frame, each [N x C x H x W] in [-1, 1]) with imageio; the last frame is
    held for `hold_last` extra frames. Pixels are upscaled by `scale` (nearest) so small digits stay visible."""
    import imageio.v2 as imageio

    grids = [make_grid(f, nrow=nrow) for f in frames]
    grids = [g.repeat(scale, 0).repeat(scale, 1) for g in grids]
    grids += [grids[-1]] * hold_last
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, [g[..., 0] if g.shape[-1] == 1 else g for g in grids], duration=1000 / fps, loop=0)
    return path


def plot_schedules(curves: dict[str, torch.Tensor], ylabel: str, ax=None, logy: bool = False):
    """One line per schedule: curves maps a schedule name to a [T] tensor indexed by t."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        ax.plot(np.arange(len(values)), values.double().numpy(), label=name)
    ax.set_xlabel("t")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
