"""Moving MNIST, made on the fly from the offline MNIST (notebook 12): clips of digits bouncing inside a frame.

Clip i of a split is drawn from its own generator: which MNIST digit (of the same split), where it starts, and its
velocity (one of 8 directions, 1 or 2 pixels per frame); the digit (28 x 28 averaged down to 14 x 14) moves by whole
pixels and bounces off the walls, so frames are exact, with no interpolation. The trajectory does not depend on the
number of frames: the 8-frame clip i is the start of the 16-frame clip i. Labels: the digit's class and the
direction of its first move (the two things the video feature network of notebook 12 learns to read).

    load_images("moving-mnist:8")          # 20,000 training clips [8 x 1 x 32 x 32] in [-1, 1]
    load_images("moving-mnist:16:test")    # 2,000 test clips of 16 frames, from the MNIST test digits
"""
from __future__ import annotations

import numpy as np
import torch

SIZE, DIGIT = 32, 14
DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))  # (dx, dy): E, SE, S, ...
SPLITS = {"train": (20_000, 0, "mnist:train"), "test": (2_000, 1, "mnist:test")}  # (clips, seed offset, digits)
MAX_FRAMES = 32


def small_digits(images: torch.Tensor) -> np.ndarray:
    """[N, 1, 28, 28] in [-1, 1] -> [N, 14, 14] in [0, 1] (2 x 2 means)."""
    x = (images[:, 0].numpy() + 1) / 2
    return x.reshape(len(x), DIGIT, 2, DIGIT, 2).mean(axis=(2, 4))


def trajectory(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, int]:
    """Top-left corners [frames, 2] (x, y) of a digit bouncing in the frame, and its first direction's index."""
    room = SIZE - DIGIT
    pos = rng.integers(0, room + 1, size=2)
    direction = int(rng.integers(len(DIRECTIONS)))
    vel = np.array(DIRECTIONS[direction]) * int(rng.integers(1, 3))
    out = np.empty((frames, 2), np.int64)
    for f in range(frames):
        out[f] = pos
        nxt = pos + vel
        for k in range(2):  # bounce: reflect the step at the wall
            if nxt[k] < 0 or nxt[k] > room:
                vel[k] = -vel[k]
                nxt[k] = pos[k] + vel[k]
        pos = nxt
    return out, direction


def render(digit: np.ndarray, corners: np.ndarray) -> np.ndarray:
    clip = np.zeros((len(corners), 1, SIZE, SIZE), np.float32)
    for f, (x, y) in enumerate(corners):
        clip[f, 0, y:y + DIGIT, x:x + DIGIT] = digit
    return clip


def make_clips(mnist_images: torch.Tensor, mnist_labels: torch.Tensor, frames: int, split: str = "train",
               num: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clips [N, frames, 1, 32, 32] in [-1, 1] from the MNIST digits of `split` (given), their digit classes, and
    the index in DIRECTIONS of each clip's first move (helpers.datasets.images wraps them as `moving-mnist:FRAMES[:split]`)."""
    if not 1 <= frames <= MAX_FRAMES:
        raise ValueError(f"moving-mnist: the number of frames must be between 1 and {MAX_FRAMES}, got {frames}")
    total, offset, _ = SPLITS[split]
    num = total if num is None else num
    digits = small_digits(mnist_images)
    clips, labels, directions = np.empty((num, frames, 1, SIZE, SIZE), np.float32), np.empty(num, np.int64), np.empty(num, np.int64)
    for i in range(num):
        rng = np.random.default_rng([offset, i])
        k = int(rng.integers(len(digits)))
        corners, directions[i] = trajectory(rng, frames)
        clips[i], labels[i] = render(digits[k], corners), int(mnist_labels[k])
    return torch.from_numpy(clips) * 2 - 1, torch.from_numpy(labels), torch.from_numpy(directions)


def frame_digits(clips: torch.Tensor) -> torch.Tensor:
    """Each frame's digit as an MNIST image, for per-frame FID and class labels with the MNIST classifier: the 14 x 14
    window centred on the frame's centre of mass (MNIST centres its digits the same way), upsampled 2 x to 28 x 28.
    clips [N, F, 1, 32, 32] in [-1, 1] -> [N * F, 1, 28, 28] in [-1, 1]; a blank frame gives the centre window."""
    if clips.ndim != 5 or tuple(clips.shape[2:]) != (1, SIZE, SIZE):
        raise ValueError(f"expected moving-MNIST clips [N, F, 1, {SIZE}, {SIZE}], got {list(clips.shape)}")
    frames = ((clips.reshape(-1, SIZE, SIZE).float() + 1) / 2).clamp(0, 1)
    mass = frames.sum((1, 2)).clamp_min(1e-6)
    coords = torch.arange(SIZE, dtype=torch.float32)
    cy = (frames.sum(2) * coords).sum(1) / mass
    cx = (frames.sum(1) * coords).sum(1) / mass
    half = DIGIT / 2
    top = (cy + 0.5 - half).round().clamp(0, SIZE - DIGIT).long()
    left = (cx + 0.5 - half).round().clamp(0, SIZE - DIGIT).long()
    rows = top[:, None] + torch.arange(DIGIT)
    cols = left[:, None] + torch.arange(DIGIT)
    crops = frames[torch.arange(len(frames))[:, None, None], rows[:, :, None], cols[:, None, :]]
    up = torch.nn.functional.interpolate(crops[:, None], scale_factor=2, mode="bilinear", align_corners=False)
    return up * 2 - 1
