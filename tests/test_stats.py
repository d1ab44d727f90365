"""helpers.evaluation.stats: the comparison rules (overlap and paired) and the break-even count."""
import math

import numpy as np
import pytest
import torch

from helpers.evaluation.metrics import fid_difference, fid_interval
from helpers.evaluation.stats import break_even, compare, compare_paired, rank_agreement


def test_compare_names_the_better_one_only_when_the_intervals_separate():
    assert compare((10, 9, 11), (20, 18, 22), ("student", "DDIM")).startswith("student is better (resolved")
    assert compare((20, 18, 22), (10, 9, 11), ("student", "DDIM")).startswith("DDIM is better (resolved")
    assert compare((0.9, 0.8, 0.95), (0.5, 0.4, 0.6), ("a", "b"), lower_is_better=False).startswith("a is better")
    assert compare((10, 8, 12), (11, 9.5, 13)).startswith("not resolved at this N")
    assert compare((10, 8, 12), (14, 12, 16)).startswith("not resolved")  # touching intervals overlap


@pytest.mark.parametrize("bad", [(10, 11, 12), (10, 8, float("nan")), (1, 2)])
def test_compare_refuses_a_malformed_interval(bad):
    with pytest.raises(ValueError, match="must be \\(value, lo, hi\\)"):
        compare(bad, (1, 0, 2))


def test_compare_paired_reads_the_sign_of_an_interval_that_excludes_zero():
    assert compare_paired((-5, -8, -2), ("DPM-Solver++", "DDIM")).startswith("DPM-Solver++ is better (resolved: the paired")
    assert compare_paired((5, 2, 8), ("DPM-Solver++", "DDIM")).startswith("DDIM is better")
    assert compare_paired((0.2, 0.1, 0.3), ("a", "b"), lower_is_better=False).startswith("a is better")
    assert compare_paired((1, -2, 4), ("a", "b")) == "not resolved at this N (the paired 95% interval contains 0): a - b = 1.00 [-2.00, 4.00]"
    with pytest.raises(ValueError, match="the difference must be"):
        compare_paired((1, 2, 4))


def test_the_paired_difference_resolves_a_shift_that_the_two_intervals_cannot():
    """Two sets that share most of their variation image by image (as two samplers from the same x_T do), one shifted
    by 0.1 in every coordinate: the sets' own intervals overlap, the paired interval of the difference excludes 0.
    (Seed 0 chosen as one where the unpaired rule fails; seeds 0 and 1 of 0..2 behave so.)"""
    rng = np.random.default_rng(0)
    real, base = rng.normal(size=(2000, 8)), rng.normal(size=(300, 8))
    a = base + 0.1 + 0.05 * rng.normal(size=base.shape)
    b = base + 0.05 * rng.normal(size=base.shape)
    ia, ib = fid_interval(a, real, num_boot=100), fid_interval(b, real, num_boot=100)
    assert compare(ia, ib).startswith("not resolved")
    d = fid_difference(a, b, real, num_boot=100)
    assert d[0] == pytest.approx(ia[0] - ib[0])
    assert compare_paired(d, ("shifted", "base")).startswith("base is better (resolved")
    assert fid_difference(a, a, real, num_boot=10) == (0.0, 0.0, 0.0)  # identical sides: every resample agrees
    with pytest.raises(ValueError, match="the same images on both sides; got 300 and 299"):
        fid_difference(a, b[:-1], real)


def test_the_paired_interval_covers_zero_between_independent_draws_of_one_distribution():
    """Its coverage: 20 pairs of independent sets from the real distribution (no true difference); a 95% interval
    misses 0 about once in 20 (30 of 30 covered when this test was written, with 30 pairs)."""
    real = np.random.default_rng(0).normal(size=(2000, 8))
    covered = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        d = fid_difference(rng.normal(size=(300, 8)), rng.normal(size=(300, 8)), real, num_boot=100, seed=seed)
        covered += d[1] <= 0 <= d[2]
    assert covered >= 17


def test_break_even():
    assert break_even(3600, 4.0, 0.4) == pytest.approx(1000.0)  # one hour saves 3.6 s per image
    assert break_even(3600, 0.4, 0.4) == math.inf
    with pytest.raises(ValueError, match="one_off_seconds must be a finite number >= 0"):
        break_even(-1, 4.0, 0.4)


def test_fid_interval_is_centred_on_the_fid_and_shrinks_with_n():
    """Two Gaussian clouds whose means differ by 1 in each of 8 dimensions: FID about 8; the bootstrap interval
    contains the point estimate and is narrower with 4x the images."""
    rng = np.random.default_rng(0)
    real = rng.normal(size=(4000, 8))
    widths = []
    for n in (250, 1000):
        fake = rng.normal(size=(n, 8)) + 1.0
        value, lo, hi = fid_interval(fake, real, num_boot=50, seed=0)
        assert lo < value < hi and 6 < value < 10
        widths.append(hi - lo)
    assert widths[1] < 0.7 * widths[0]
    with pytest.raises(ValueError, match="num_boot must be at least 2"):
        fid_interval(real[:10], real, num_boot=1)


def test_fid_interval_resamples_groups_of_dependent_rows_together():
    """Each of 250 images repeated 4 times (as the 4 frames of a clip that shows one digit): resampling rows one by one
    pretends to have 1000 independent images and halves the interval; resampling the groups of 4 gives the interval
    of the 250 images themselves (the same resampled indices, so equal up to the covariance's n - 1)."""
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(4000, 8)), rng.normal(size=(250, 8)) + 1.0
    repeated = np.repeat(fake, 4, axis=0)
    width = lambda r: r[2] - r[1]  # noqa: E731
    alone = width(fid_interval(fake, real, num_boot=100, seed=0))
    grouped = width(fid_interval(repeated, real, num_boot=100, seed=0, group=4))
    assert grouped == pytest.approx(alone, rel=0.05)
    assert width(fid_interval(repeated, real, num_boot=100, seed=0)) < 0.7 * alone
    assert fid_interval(fake, real, num_boot=20, seed=3, group=1) == fid_interval(fake, real, num_boot=20, seed=3)
    with pytest.raises(ValueError, match="group must be a positive divisor of the 250 generated rows, got 4"):
        fid_interval(fake, real, group=4)


def test_fid_blocks_averages_disjoint_blocks_with_a_t_interval():
    """Five blocks of 400 from a shifted Gaussian cloud: the mean of the five FIDs (each checked against
    frechet_distance on its block), an interval that contains it, and the bootstrap with one block."""
    from helpers.evaluation.metrics import fid_blocks, frechet_distance

    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(4000, 8)), rng.normal(size=(2000, 8)) + 0.5
    f = fid_blocks(fake, real, 400)
    values = [frechet_distance(fake[i * 400:(i + 1) * 400], real) for i in range(5)]
    assert f["blocks"] == 5 and f["interval"] == "t over 5 blocks"
    assert f["fid"] == pytest.approx(np.mean(values)) and f["sd"] == pytest.approx(np.std(values, ddof=1))
    # t_{4, 0.975} = 2.776 (scipy.stats.t.ppf(0.975, 4))
    assert f["hi"] - f["fid"] == pytest.approx(2.776 * f["sd"] / 5**0.5, rel=1e-3)
    one = fid_blocks(fake[:400], real, 400)
    assert one["blocks"] == 1 and one["interval"] == "bootstrap" and one["lo"] < one["fid"] < one["hi"]
    with pytest.raises(ValueError, match="need at least n = 400 rows"):
        fid_blocks(fake[:100], real, 400)


def test_rank_agreement_counts_kept_and_flipped_pairs():
    # items 0..3: at a, 0 < 1 < 2 < 3 with 0/1 overlapping; at b, 2 and 3 swap (resolved) and 0/1 resolved
    a = [(10, 9, 11), (10.5, 9.5, 11.5), (20, 19, 21), (30, 29, 31)]
    b = [(5, 4, 6), (8, 7, 9), (40, 39, 41), (25, 24, 26)]
    out = rank_agreement(a, b, draws=200)
    # pairs: (0,1) resolved in b only; (0,2), (0,3), (1,2), (1,3) kept; (2,3) flipped
    assert out["pairs"] == {"kept": 4, "flipped": 1, "resolved in a only": 0, "resolved in b only": 1,
                            "resolved in neither": 0}
    assert out["flipped"] == [(2, 3)]
    assert out["rho"] == pytest.approx(0.8)  # ranks (1,2,3,4) against (1,2,4,3): 1 - 6 * 2 / (4 * 15)
    assert out["rho_lo"] <= out["rho"] <= out["rho_hi"] <= 1 and out["items"] == 4
    same = rank_agreement(a, a, draws=200)
    assert same["rho"] == same["rho_lo"] == same["rho_hi"] == 1.0 and same["pairs"]["flipped"] == 0


def test_rank_agreement_refuses_mismatched_or_broken_estimates():
    with pytest.raises(ValueError, match="the same items"):
        rank_agreement([(1, 0, 2)] * 3, [(1, 0, 2)] * 4)
    with pytest.raises(ValueError, match=r"b\[1\] must be \(value, lo, hi\)"):
        rank_agreement([(1, 0, 2)] * 3, [(1, 0, 2), (5, 6, 7), (1, 0, 2)])


# --- The one rule: each interval's coverage checked by simulation on distributions whose truth is known. ---
from helpers.evaluation import stats as rule  # noqa: E402


def coverage(make, truth, reps):
    return np.mean([(lambda e: e.lo <= truth <= e.hi)(make(seed)) for seed in range(reps)])


def test_t_interval_over_sets_covers_the_mean_95_percent_of_the_time():
    """K = 5 normal sets (mean 12, sd 2, like FID over five sets of 1000): coverage 0.95 in theory; 2000 simulations
    put the estimate within +-0.015 (3 binomial sd). Measured when written: 0.951."""
    cov = coverage(lambda s: rule.t_interval(np.random.default_rng(s).normal(12, 2, 5)), 12.0, 2000)
    assert 0.935 <= cov <= 0.965, cov
    e = rule.t_interval([10, 11, 12, 13, 9])
    # golden: mean 11, sd sqrt(2.5), t_{4, 0.975} = 2.7764451 -> half-width 1.963243
    assert (e.value, e.rule, e.n) == (11.0, "sets", 5) and e.hi - e.value == pytest.approx(1.963243, rel=1e-5)
    assert e.named == "95% t-interval over independent sets (K = 5)"
    with pytest.raises(ValueError, match="at least 2 finite values"):
        rule.t_interval([3.0])


def test_paired_sets_resolve_a_shift_that_independent_sets_cannot():
    """Per-set values that share their set-to-set noise (two samplers from the same seeds): B = A + 1 + small noise.
    The sets' own intervals overlap; the paired interval of A - B excludes 0 and covers the true -1."""
    rng = np.random.default_rng(0)
    common = rng.normal(20, 3, 5)
    a, b = common + rng.normal(0, 0.2, 5), common + 1 + rng.normal(0, 0.2, 5)
    ea, eb = rule.t_interval(a), rule.t_interval(b)
    assert not (ea.hi < eb.lo or eb.hi < ea.lo)
    d = rule.paired_sets(a, b)
    assert d.hi < 0 and d.lo <= -1 <= d.hi and d.rule == "paired-sets"
    assert rule.verdict(d, ("ours", "theirs")).startswith("ours is better (resolved): ours - theirs = ")
    assert rule.verdict(rule.paired_sets(a, a + rng.normal(0, 1, 5))).startswith("not resolved")
    with pytest.raises(ValueError, match="as many sets on both sides; got 5 and 4"):
        rule.paired_sets(a, b[:4])


def test_wilson_keeps_its_coverage_near_the_edges():
    """n = 100 trials at p = 0.95 (a classifier's accuracy): the Wilson interval covers p in about 95% of 2000
    simulations (measured when written: 0.960), where the normal approximation covers about 0.88 there."""
    cov = coverage(lambda s: rule.wilson(int(np.random.default_rng(s).binomial(100, 0.95)), 100), 0.95, 2000)
    assert 0.93 <= cov <= 0.975, cov
    e = rule.wilson(95, 100)
    # golden (Wilson 1927, z = 1.959964): [0.88825, 0.97845]
    assert (e.lo, e.hi) == (pytest.approx(0.888250, abs=1e-5), pytest.approx(0.978450, abs=1e-5))
    assert rule.wilson(0, 10).lo == 0.0 and rule.wilson(10, 10).hi == 1.0
    with pytest.raises(ValueError, match="0 <= k <= n"):
        rule.wilson(11, 10)
    assert rule.wilson(np.int64(95), 100) == e and rule.wilson(torch.tensor(95), 100) == e  # counts from .sum()
    with pytest.raises(ValueError, match="0 <= k <= n"):
        rule.wilson(True, 1)


def test_percentile_bootstraps_cover_a_skewed_mean_and_a_paired_difference():
    """The mean of 200 exponential draws (skewed) and the difference of means of 200 pairs sharing their noise:
    coverage near 0.95 in 300 simulations of 300 resamples (the percentile interval of a skewed mean runs a little
    short at n = 200; measured when written: 0.920 and 0.937; the bounds allow 3 binomial sd)."""
    def mean_of(s):
        return rule.percentile_bootstrap(np.random.default_rng(s).exponential(1.0, 200), np.mean, num_boot=300, seed=s)

    def paired(s):
        rng = np.random.default_rng(s)
        shared = rng.normal(0, 3, 200)
        return rule.paired_bootstrap(shared + 0.5 + rng.normal(0, 0.5, 200), shared + rng.normal(0, 0.5, 200), np.mean,
                                     num_boot=300, seed=s)

    assert 0.89 <= coverage(mean_of, 1.0, 300) <= 0.99
    assert 0.89 <= coverage(paired, 0.5, 300) <= 0.99
    assert paired(0).rule == "paired-bootstrap" and paired(0).lo > 0  # the shared sd of 3 cancels


def test_an_estimate_refuses_an_unknown_rule_and_a_value_outside_its_interval():
    with pytest.raises(ValueError, match="rule must be one of"):
        rule.Estimate(1.0, 0.0, 2.0, "normal", 10)
    with pytest.raises(ValueError, match="lo <= value <= hi"):
        rule.Estimate(3.0, 0.0, 2.0, "sets", 5)
    with pytest.raises(ValueError, match="verdict reads an Estimate of a paired difference"):
        rule.verdict((1.0, 0.0, 2.0))
    with pytest.raises(ValueError, match="verdict reads an Estimate of a paired difference"):
        rule.verdict(rule.t_interval([5, 6, 7]))  # a value with its interval, not a difference
    with pytest.raises(ValueError, match="100 resamples; got 3 and 3 rows, 0 resamples"):
        rule.paired_bootstrap([1, 2, 3], [1, 2, 3], np.mean, num_boot=0)
    assert rule.Estimate(0.004, 0.001, 0.0125, "wilson", 10, level=0.975).named == "97.5% Wilson interval (n = 10)"
    assert str(rule.Estimate(0.004, 0.001, 0.0125, "wilson", 10)) == "0.004 [0.001, 0.0125]"
