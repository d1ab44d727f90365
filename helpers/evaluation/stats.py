"""Comparisons that respect their noise: one rule for every "A is better than B" in the notebooks, how far two
rankings of the same items agree, and the break-even count of a one-off cost against a per-image saving.

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


def rank_agreement(a, b, draws: int = 2000, seed: int = 0) -> dict:
    """How far the ranking of the same items by two sets of estimates (a[i], b[i] = (value, lo, hi) of item i, e.g.
    FIDs of the same runs at two training budgets) agrees: Spearman's rho with a 95% bootstrap interval over the items
    (how much the correlation depends on which items were compared), and every pair of items sorted by the overlap
    rule: resolved in both (then its order is kept or flipped; `flipped` lists those pairs (i, j)), resolved in one
    only, or in neither."""
    import numpy as np
    from scipy.stats import spearmanr

    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"rank_agreement needs the same items (at least 3) in a and b; got {len(a)} and {len(b)}")
    ea = np.array([check_interval(f"a[{i}]", e) for i, e in enumerate(a)])
    eb = np.array([check_interval(f"b[{i}]", e) for i, e in enumerate(b)])
    n = len(ea)
    rho = float(spearmanr(ea[:, 0], eb[:, 0]).statistic)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(draws):
        pick = rng.integers(0, n, n)
        if len(set(ea[pick, 0])) > 1 and len(set(eb[pick, 0])) > 1:  # a resample of one repeated item has no ranking
            boot.append(spearmanr(ea[pick, 0], eb[pick, 0]).statistic)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    flipped = []
    pairs = {"kept": 0, "flipped": 0, "resolved in a only": 0, "resolved in b only": 0, "resolved in neither": 0}
    for i in range(n):
        for j in range(i + 1, n):
            order = []
            for e in (ea, eb):
                (vi, li, hi_i), (vj, lj, hj) = e[i], e[j]
                order.append(0 if not (hi_i < lj or hj < li) else 1 if vi < vj else -1)
            if order[0] and order[1]:
                pairs["kept" if order[0] == order[1] else "flipped"] += 1
                if order[0] != order[1]:
                    flipped.append((i, j))
            else:
                pairs["resolved in a only" if order[0] else "resolved in b only" if order[1] else "resolved in neither"] += 1
    return {"rho": rho, "rho_lo": float(lo), "rho_hi": float(hi), "items": n, "pairs": pairs, "flipped": flipped}


def break_even(one_off_seconds: float, slow_s_per_image: float, fast_s_per_image: float) -> float:
    """How many images must be drawn before a one-off cost (e.g. distillation's training) is paid back by drawing
    each image `slow - fast` seconds faster; inf when the fast way is not faster."""
    for name, v in (("one_off_seconds", one_off_seconds), ("slow_s_per_image", slow_s_per_image),
                    ("fast_s_per_image", fast_s_per_image)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    saving = slow_s_per_image - fast_s_per_image
    return one_off_seconds / saving if saving > 0 else math.inf
