"""The workbook's one interval rule, and the sentences every "A is better than B" goes through.

Which interval, for what (each returns an `Estimate` that names its rule, so a table can say which it used):
- a single value measured on K independent sets (K disjoint image sets from fixed seeds, K training seeds):
  `t_interval`, mean -/+ t_{K-1} sd / sqrt(K). This is the rule for FID: the bootstrap over one set's images
  overstates FID's spread two- to threefold (resampling repeats images, which reads as lost diversity; bench's
  5-set rows: bootstrap sd about 5 against 1.6-2.7 between sets) and its percentiles sit above the value itself.
- a single value on one set, for a statistic a resample does not bias (a mean, a correlation):
  `percentile_bootstrap`.
- a difference between A and B drawn from the same noise (image i of both from seed + i; the same sets):
  `paired_sets` (t-interval of the K per-set differences; the rule for FID, whose resampling bias depends on each
  model's diversity and so does not cancel) or `paired_bootstrap` (resampling image indices jointly, for statistics
  a resample does not bias); the shared noise cancels, so it resolves what two overlapping intervals cannot.
- a share or an accuracy (k of n): `wilson`.

`verdict` reads an interval of a difference: "A is better" only when it excludes 0, else "not resolved". `compare`
(two independent estimates, resolved when their intervals do not overlap: conservative) and `compare_paired` are
the older sentences, kept for the results already saved with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

RULES = {
    "sets": "t-interval over independent sets",
    "percentile": "percentile bootstrap",
    "paired-sets": "t-interval of paired per-set differences, same noise",
    "paired-bootstrap": "paired bootstrap over images, same noise",
    "wilson": "Wilson interval",
}


@dataclass(frozen=True)
class Estimate:
    """A value with its interval [lo, hi], the rule that made it (a key of RULES), the number of units it rests on
    (sets, images or trials) and the level. Unpacks as (value, lo, hi)."""
    value: float
    lo: float
    hi: float
    rule: str
    n: int
    level: float = 0.95

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {sorted(RULES)}, got {self.rule!r}")
        check_interval("an estimate", (self.value, self.lo, self.hi))

    def __iter__(self):
        return iter((self.value, self.lo, self.hi))

    def __str__(self) -> str:
        f = (lambda v: f"{v:.2f}") if max(abs(self.lo), abs(self.hi)) >= 1 else (lambda v: f"{v:.3g}")
        return f"{f(self.value)} [{f(self.lo)}, {f(self.hi)}]"

    @property
    def resolved(self) -> bool:
        """For a difference: whether its interval excludes 0."""
        return self.lo > 0 or self.hi < 0

    def share_shift(self) -> str:
        """A paired difference of shares in percentage points with its interval and whether it resolves."""
        return (f"{self.value:+.1%} [{self.lo:+.1%}, {self.hi:+.1%}] "
                f"({'resolved' if self.resolved else 'not resolved'})")

    @property
    def named(self) -> str:
        """The interval's rule in words, for a table's caption: e.g. '95% t-interval over independent sets (K = 5)'."""
        unit = {"sets": "K", "paired-sets": "K", "wilson": "n"}.get(self.rule, "N")
        return f"{self.level * 100:g}% {RULES[self.rule]} ({unit} = {self.n})"


def _level(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return level


def t_interval(values, level: float = 0.95, rule: str = "sets") -> Estimate:
    """The mean of K >= 2 independent measurements (FID of K disjoint sets, a score of K training seeds) with its
    t-interval: mean -/+ t_{K-1, (1+level)/2} sd / sqrt(K)."""
    import numpy as np
    from scipy import stats as st

    v = np.asarray(values, dtype=float).ravel()
    if len(v) < 2 or not np.isfinite(v).all():
        raise ValueError(f"a t-interval needs at least 2 finite values, got {list(v)}")
    mean, sd = float(v.mean()), float(v.std(ddof=1))
    half = float(st.t.ppf(0.5 + _level(level) / 2, len(v) - 1)) * sd / math.sqrt(len(v))
    return Estimate(mean, mean - half, mean + half, rule, len(v), level)


def paired_sets(a_values, b_values, level: float = 0.95) -> Estimate:
    """A - B from K sets drawn from the same noise on both sides (set k of A and of B from the same seeds): the
    t-interval of the K per-set differences."""
    import numpy as np

    a, b = np.asarray(a_values, dtype=float).ravel(), np.asarray(b_values, dtype=float).ravel()
    if len(a) != len(b):
        raise ValueError(f"paired sets need as many sets on both sides; got {len(a)} and {len(b)}")
    return t_interval(a - b, level, rule="paired-sets")


def wilson(k: int, n: int, level: float = 0.95) -> Estimate:
    """The share k / n with its Wilson score interval (Wilson 1927), which stays inside [0, 1] and keeps its coverage
    near 0 and 1 where the normal approximation does not."""
    import operator

    from scipy import stats as st

    try:
        if isinstance(k, bool) or isinstance(n, bool):
            raise TypeError
        k, n = operator.index(k), operator.index(n)  # numpy and torch integers are integers
    except TypeError:
        raise ValueError(f"a share needs integers 0 <= k <= n and n >= 1, got k = {k}, n = {n}") from None
    if not (n >= 1 and 0 <= k <= n):
        raise ValueError(f"a share needs integers 0 <= k <= n and n >= 1, got k = {k}, n = {n}")
    z = float(st.norm.ppf(0.5 + _level(level) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, min(p, centre - half), max(p, centre + half), "wilson", n, level)


def percentile_bootstrap(data, statistic, num_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """statistic(data) with the percentile interval of `num_boot` resamples of data's rows (with replacement).
    For statistics a resample does not bias (means, correlations); not for FID (see the module's docstring)."""
    import numpy as np

    rows = np.asarray(data)
    if len(rows) < 2 or num_boot < 100:
        raise ValueError(f"a bootstrap needs at least 2 rows and 100 resamples, got {len(rows)} and {num_boot}")
    rng = np.random.default_rng(seed)
    boots = [statistic(rows[rng.integers(0, len(rows), len(rows))]) for _ in range(num_boot)]
    lo, hi = np.percentile(boots, [50 - 50 * _level(level), 50 + 50 * level])
    return _inside(float(statistic(rows)), float(lo), float(hi), "percentile", len(rows), level)


def _inside(value, lo, hi, rule, n, level) -> Estimate:
    if not lo <= value <= hi:
        raise ValueError(f"the value {value:.4g} lies outside its {rule} interval [{lo:.4g}, {hi:.4g}]: the statistic is "
                         "biased under resampling (as FID is); use independent sets (t_interval, paired_sets)")
    return Estimate(value, lo, hi, rule, n, level)


def paired_bootstrap(a, b, statistic, num_boot: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """statistic(a) - statistic(b) where row i of a and of b come from the same noise: each resample takes the same
    indices from both, so the shared noise cancels; the percentile interval of the resampled differences."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if len(a) != len(b) or len(a) < 2 or num_boot < 100:
        raise ValueError(f"a paired bootstrap needs the same rows (at least 2) on both sides and 100 resamples; got "
                         f"{len(a)} and {len(b)} rows, {num_boot} resamples")
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(num_boot):
        idx = rng.integers(0, len(a), len(a))
        boots.append(statistic(a[idx]) - statistic(b[idx]))
    lo, hi = np.percentile(boots, [50 - 50 * _level(level), 50 + 50 * level])
    return _inside(float(statistic(a) - statistic(b)), float(lo), float(hi), "paired-bootstrap", len(a), level)


def verdict(difference, names=("A", "B"), lower_is_better: bool = True) -> str:
    """The one sentence on A - B (an Estimate of a difference, paired_sets or paired_bootstrap): A or B "is better"
    only when the interval excludes 0, else "not resolved", with the interval and its rule."""
    if not isinstance(difference, Estimate) or difference.rule not in ("paired-sets", "paired-bootstrap"):
        raise ValueError(f"verdict reads an Estimate of a paired difference (paired_sets, paired_bootstrap); got "
                         f"{difference!r}")
    d = difference
    said = f"{names[0]} - {names[1]} = {d} ({d.named})"
    if d.resolved:
        better = names[0] if (d.hi < 0) == lower_is_better else names[1]
        return f"{better} is better (resolved): {said}"
    return f"not resolved: {said}"


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
