"""Pure value checks (no project imports): every message names the option or value, says what was expected and,
where it helps, how to fix it. The command-line glue that uses them (parser, output folders, resume) is helpers.cli.

- `positive_int`, `non_negative_int`, `positive_float`, `non_negative_float`, `finite_float`, `unit_float`: argparse
  types ("expected a positive integer, got 0").
- `check_count`, `check_timesteps`, `check_generators`, `check_finite`: the samplers' inputs and outputs.
"""
from __future__ import annotations

import argparse
import math
import numbers

import numpy as np
import torch


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
                                         ) from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def finite_float(text: str) -> float:
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def unit_float(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value:g}")
    return value


def check_count(value, name: str, minimum: int = 1) -> int:
    """An integer count (a Python int, numpy integer or 0-d integer tensor; not a bool) of at least `minimum`."""
    if torch.is_tensor(value) and value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def check_timesteps(timesteps, T: int | None = None) -> list[int]:
    """A strictly decreasing sequence of integer timesteps in [0, T - 1] (T = None: any t >= 0), as the samplers
    take it."""
    if torch.is_tensor(timesteps):
        if timesteps.is_floating_point() or timesteps.is_complex() or timesteps.dtype == torch.bool:
            raise ValueError(f"timesteps must be integers, got a {timesteps.dtype} tensor")
        timesteps = timesteps.tolist()
    ts = list(timesteps)
    if not ts:
        raise ValueError("timesteps is empty; give at least one timestep")
    for t in ts:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise ValueError(f"timesteps must be integers, got {t!r} ({type(t).__name__})")
        if t < 0 or (T is not None and t >= T):
            upper = f"0..{T - 1} (the model has T = {T} diffusion steps)" if T is not None else "0, 1, 2, ..."
            raise ValueError(f"timestep {t} is outside {upper}")
    for a, b in zip(ts, ts[1:]):
        if b >= a:
            raise ValueError(f"timesteps must decrease strictly (from noise to data), but {b} follows {a}")
    return [int(t) for t in ts]


def check_generators(generator, n: int) -> None:
    """One generator for the batch, or a list with exactly one per sample (a shorter list would share draws)."""
    if isinstance(generator, (list, tuple)) and len(generator) != n:
        raise ValueError(f"got {len(generator)} generators for a batch of {n}; give one per sample (or a single one)")


def check_finite(x: torch.Tensor, step: int, t: int) -> None:
    """Stop a sampler whose state has stopped being finite, saying where."""
    if not torch.isfinite(x).all():
        raise FloatingPointError(f"the sampler produced non-finite values at step {step} (t = {t}); check the "
                                 "guidance scale, the starting noise and the model's weights for NaN or inf")


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value:g}")
    return value


def check_features(*sets: np.ndarray, at_least: int = 2) -> None:
    """Feature sets [N x D] that a distance can compare: two-dimensional, the same D, at least `at_least` rows each,
    every value finite."""
    shapes = [np.shape(f) for f in sets]
    if any(len(s) != 2 for s in shapes) or len({s[1] for s in shapes}) != 1:
        raise ValueError(f"feature sets must be [N x D] arrays of one D; got shapes {', '.join(map(str, shapes))}")
    if min(s[0] for s in shapes) < at_least:
        raise ValueError(f"a distance between feature sets needs at least {at_least} rows in each; got "
                         f"{', '.join(str(s[0]) for s in shapes)}")
    for k, f in enumerate(sets):
        if not np.isfinite(f).all():
            raise ValueError(f"feature set {k + 1} of {len(sets)} holds NaN or inf values (images with non-finite "
                             "pixels?); they cannot be scored")
