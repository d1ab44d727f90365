"""FID by the workbook's one rule (helpers.evaluation.stats) when a notebook draws one pool of images per
configuration: the pool split into K disjoint sets, FID per set, the mean with its t-interval; a difference of two
configurations drawn from the same noise read set by set (paired); and the real-data floor measured the same way, at
the same N per set and against the same reference, class-stratified when the generated sets are class-balanced.

Image i of every configuration starts from the x_T of (seed, i), so set k (images k*n .. (k+1)*n - 1) of two
configurations shares its noise, and with balanced labels (image i asks for digit i % 10) every set of a multiple of
10 images is balanced too.
"""
from __future__ import annotations

import numpy as np

from helpers.evaluation import stats
from helpers.evaluation.metrics import fid_blocks


def set_values(feats: np.ndarray, ref_feats: np.ndarray, sets: int) -> np.ndarray:
    """FID of each of `sets` disjoint consecutive blocks of len(feats) // sets rows against ref_feats."""
    n = len(feats) // sets if sets >= 2 else 0
    if sets < 2 or n < 2 or len(feats) % sets:
        raise ValueError(f"{len(feats)} images do not split into {sets} equal sets of at least 2 (sets must be >= 2 "
                         "and divide the number of images)")
    return np.array(fid_blocks(feats, ref_feats, n)["sets"])


def fid_estimate(feats: np.ndarray, ref_feats: np.ndarray, sets: int) -> tuple[stats.Estimate, np.ndarray]:
    """The mean FID over `sets` disjoint sets with its t-interval (stats.t_interval), and the per-set values (for
    paired differences)."""
    values = set_values(feats, ref_feats, sets)
    return stats.t_interval(values), values


def floor_rows(num: int, n: int, sets: int = 10, labels=None, seed: int = 0) -> np.ndarray:
    """The rows of `sets` disjoint sets of n real images out of `num` (set k is rows [k*n, (k+1)*n) of the result),
    drawn with `seed`. With `labels` (one per row) every set holds n / classes images of each class, as the generated
    balanced sets do: a balanced set scores below an unbalanced one of the same N, so the unstratified floor would mix
    class balance with quality."""
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(num)[:n * sets]
    else:
        labels = np.asarray(labels)
        classes = np.unique(labels)
        if n % len(classes):
            raise ValueError(f"a class-stratified floor needs n divisible by the {len(classes)} classes, got n = {n}")
        per = n // len(classes)
        pools = {c: rng.permutation(np.flatnonzero(labels == c)) for c in classes}
        short = [int(c) for c in classes if len(pools[c]) < per * sets]
        if short:
            raise ValueError(f"classes {short} have fewer than {per * sets} real rows for {sets} sets of {n}")
        order = np.concatenate([np.concatenate([pools[c][k * per:(k + 1) * per] for c in classes]) for k in range(sets)])
    if len(order) < n * sets:
        raise ValueError(f"{num} real rows are fewer than {sets} sets of {n}")
    return order


def fid_floor(real_feats: np.ndarray, ref_feats: np.ndarray, n: int, sets: int = 10, labels=None,
              seed: int = 0) -> stats.Estimate:
    """What real images score at n per set against the same reference: `sets` disjoint sets of n rows of real_feats
    (a real set that does not overlap the reference; class-balanced with `labels`: floor_rows), FID each, mean and
    t-interval."""
    order = floor_rows(len(real_feats), n, sets, labels, seed)
    return stats.t_interval(set_values(real_feats[order], ref_feats, sets))


def saturated(estimate, floor: stats.Estimate) -> bool:
    """Whether a FID (value, lo, hi) cannot be told from real images at this N: its interval reaches the floor's
    upper end."""
    return float(tuple(estimate)[1]) <= floor.hi
