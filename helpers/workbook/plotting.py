"""Small plotting helpers: image grids, denoising GIFs, schedule curves, and a function's source for the reader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# One colour per schedule in every figure (matplotlib's first four), so that a subset keeps its colours.
SCHEDULE_COLORS = {"linear": "C0", "cosine": "C1", "quadratic": "C2", "sigmoid": "C3"}


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """[-1, 1] images [N x C x H x W] to one uint8 grid image [H' x W' x C] (torchvision's make_grid)."""
    from torchvision.utils import make_grid as tv_make_grid

    grid = tv_make_grid((images.detach().float().cpu().clamp(-1, 1) + 1) / 2, nrow=nrow, padding=padding, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def show_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 0.6,
              nearest: bool = False):
    """Plot a grid of [-1, 1] images with matplotlib; returns the axes. `nearest`: sharp pixels when scaled up."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow)
    if ax is None:
        h, w = grid.shape[:2]
        _, ax = plt.subplots(figsize=(scale * w / 30, scale * h / 30))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest" if nearest else None)
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
        ax.plot(np.arange(len(values)), values.double().numpy(), label=name, color=SCHEDULE_COLORS.get(name))
    ax.set_xlabel("t")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def label_columns(ax, labels, size: int = 28, pad: int = 2) -> None:
    """Write labels above the columns of a show_grid image (a torchvision grid cell starts at pad + j (size + pad))."""
    for j, text in enumerate(labels):
        ax.text(pad + j * (size + pad) + size / 2, -2, text, ha="center", va="bottom", fontsize=8)


def show_source(*functions) -> None:
    """Display the source of library functions in a notebook (what a cell calls, for the reader)."""
    import inspect

    from IPython.display import Code, display

    for f in functions:
        display(Code(inspect.getsource(f), language="python"))


def show_clips(clips: torch.Tensor, path: str | Path, title: str = "", fps: int = 4) -> None:
    """Show clips [N x F x C x H x W] in [-1, 1] as a GIF (the clips side by side, one frame per GIF frame) and as a
    static strip (one row per clip, its frames left to right), so that a page or a PDF that shows only a GIF's first
    frame still shows the motion; the title is printed once, with the GIF's size."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    path = save_gif([clips[:, f] for f in range(clips.shape[1])], path, nrow=len(clips), fps=fps, scale=2, hold_last=2)
    print(f"{title} ({path.stat().st_size // 1024} KiB)")
    display(Image(filename=str(path)))
    n, frames = clips.shape[:2]
    _, ax = plt.subplots(figsize=(min(16, 0.55 * frames + 0.5), 0.55 * n + 0.3))
    show_grid(clips.flatten(0, 1), nrow=frames, ax=ax, nearest=True)
    ax.set_title("the same clips, frame by frame (left to right)", fontsize=8)
    plt.show()
