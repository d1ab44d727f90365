"""Coloured shapes: a procedural colour image data set with known factors, at any size (notebook 09).

Each image is one shape (circle, square or triangle) of one of six colours, with a random size, position and rotation,
drawn anti-aliased (from its signed distance) over a textured background (low-contrast stripes of a random angle,
frequency and muted tint). The label is `shape * len(COLOURS) + colour` (18 classes), so an attribute classifier
trained on them can judge samples: FID on its features, and the share of samples whose shape and colour it reads
confidently. Image i of a split is drawn from its own generator (seeded by the split and i), so a data set is
reproducible at any N and the same index gives the same scene at every size.

    load_images("shapes:32")          # 20,000 training images, 32 x 32 x 3, in [-1, 1]
    load_images("shapes:64:test")     # 2,000 test images at 64 x 64
"""
from __future__ import annotations

import numpy as np
import torch

SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (0.85, 0.15, 0.15), "green": (0.15, 0.7, 0.2), "blue": (0.15, 0.3, 0.9),
           "yellow": (0.95, 0.85, 0.1), "magenta": (0.85, 0.2, 0.8), "cyan": (0.1, 0.8, 0.85)}
SPLITS = {"train": (20_000, 0), "test": (2_000, 1)}  # (images, seed offset)
SIZES = (16, 32, 64, 128)


def signed_distance(shape: int, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Distance (in units of the image width) from the boundary of the shape centred at the origin, negative inside;
    (u, v) are the pixel centres in the shape's rotated frame."""
    if SHAPES[shape] == "circle":
        return np.hypot(u, v) - radius
    if SHAPES[shape] == "square":
        r = radius * 0.85  # the same area as the circle, roughly
        return np.maximum(np.abs(u), np.abs(v)) - r
    # an equilateral triangle (Inigo Quilez's exact distance), circumradius about 1.2 x the circle's radius
    k, r = np.sqrt(3.0), radius * 1.2 * np.sqrt(3) / 2
    u, v = np.abs(u) - r, v + r / k
    flip = u + k * v > 0
    u, v = np.where(flip, (u - k * v) / 2, u), np.where(flip, (-k * u - v) / 2, v)
    u = u - np.clip(u, -2 * r, 0)
    return -np.hypot(u, v) * np.sign(v)


def render(size: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """One image [3, size, size] in [0, 1] and its label."""
    shape, colour = int(rng.integers(len(SHAPES))), int(rng.integers(len(COLOURS)))
    radius = rng.uniform(0.14, 0.26)
    cx, cy = rng.uniform(radius + 0.05, 1 - radius - 0.05, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    stripe_angle, stripe_freq, tint = rng.uniform(0, np.pi), rng.uniform(3, 8), rng.uniform(0.3, 0.6, size=3)
    coords = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(coords, coords)  # x: column, y: row
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * stripe_freq * (x * np.cos(stripe_angle) + y * np.sin(stripe_angle)))
    background = tint[:, None, None] * (0.8 + 0.2 * stripes[None])
    dx, dy = x - cx, y - cy
    u, v = dx * np.cos(angle) + dy * np.sin(angle), -dx * np.sin(angle) + dy * np.cos(angle)
    alpha = np.clip(0.5 - signed_distance(shape, u, v, radius) * size, 0, 1)  # one-pixel anti-aliased edge
    rgb = np.array(list(COLOURS.values())[colour])[:, None, None]
    return alpha[None] * rgb + (1 - alpha[None]) * background, shape * len(COLOURS) + colour


def load_shapes(size: int, split: str = "train", num: int | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The coloured shapes at `size`: images [N, 3, size, size] in [-1, 1], labels [N], and the number of classes
    (helpers.datasets.images wraps them as the data set `shapes:SIZE[:split]`)."""
    if size not in SIZES:
        raise ValueError(f"shapes: the size must be one of {', '.join(map(str, SIZES))}, got {size}")
    if split not in SPLITS:
        raise ValueError(f"shapes: the split must be one of {', '.join(SPLITS)}, got {split!r}")
    total, offset = SPLITS[split]
    num = total if num is None else num
    images, labels = np.empty((num, 3, size, size), np.float32), np.empty(num, np.int64)
    for i in range(num):
        images[i], labels[i] = render(size, np.random.default_rng([offset, i]))
    return torch.from_numpy(images) * 2 - 1, torch.from_numpy(labels), len(SHAPES) * len(COLOURS)


def attributes(label: int) -> tuple[str, str]:
    """(shape, colour) of a label."""
    return SHAPES[label // len(COLOURS)], list(COLOURS)[label % len(COLOURS)]
