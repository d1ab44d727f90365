"""Comparisons that respect their noise: one rule for every "A is better than B" in the notebooks, and the
break-even count of a one-off cost against a per-image saving.

An estimate is (value, lo, hi), a point and its 95% interval (e.g. metrics.fid_interval). Two estimates are
"resolved" when their intervals do not overlap (a conservative test: non-overlapping 95% intervals imply a
difference at well below the 5% level); otherwise the comparison is "not resolved at this N". Where A and B share
their noise image by image, the paired interval of A - B (compare_paired) is the sharper test.
"""
from __future__ import annotations

import math


def check_interval(name: str, estimate) -> tuple[float, float, float]:
    try:
        value, lo, hi = (float(v) for v in estimate)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (value, lo, hi), three numbers; got {estimate}") from None
    if not all(math.isfinite(v) for v in (value, lo, hi)) or not lo <= value <= hi:
        raise ValueError(f"{name} must be (value, lo, hi) with lo <= value <= hi, all finite; got {estimate}")
    return value, lo, hi


def compare(a, b, names=("A", "B"), lower_is_better: bool = True) -> str:
    """A sentence on which of two estimates (value, lo, hi) is better, or that the data cannot tell."""
    (va, la, ha), (vb, lb, hb) = check_interval(names[0], a), check_interval(names[1], b)
    interval = f"{names[0]} {va:.2f} [{la:.2f}, {ha:.2f}] against {names[1]} {vb:.2f} [{lb:.2f}, {hb:.2f}]"
    if ha < lb or hb < la:
        a_lower = ha < lb
        better = names[0] if a_lower == lower_is_better else names[1]
        return f"{better} is better (resolved: the 95% intervals do not overlap): {interval}"
    return f"not resolved at this N (the 95% intervals overlap): {interval}"


def compare_paired(difference, names=("A", "B"), lower_is_better: bool = True) -> str:
    """A sentence on a paired difference (value, lo, hi) of A minus B (metrics.fid_difference): resolved when its
    95% interval excludes 0."""
    d, lo, hi = check_interval("the difference", difference)
    interval = f"{names[0]} - {names[1]} = {d:.2f} [{lo:.2f}, {hi:.2f}]"
    if lo > 0 or hi < 0:
        better = names[0] if (hi < 0) == lower_is_better else names[1]
        return f"{better} is better (resolved: the paired 95% interval excludes 0): {interval}"
    return f"not resolved at this N (the paired 95% interval contains 0): {interval}"


def break_even(one_off_seconds: float, slow_s_per_image: float, fast_s_per_image: float) -> float:
    """How many images must be drawn before a one-off cost (e.g. distillation's training) is paid back by drawing
    each image `slow - fast` seconds faster; inf when the fast way is not faster."""
    for name, v in (("one_off_seconds", one_off_seconds), ("slow_s_per_image", slow_s_per_image),
                    ("fast_s_per_image", fast_s_per_image)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    saving = slow_s_per_image - fast_s_per_image
    return one_off_seconds / saving if saving > 0 else math.inf
