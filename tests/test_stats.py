"""helpers.stats: the comparison rule and the break-even count."""
import math

import numpy as np
import pytest

from helpers.metrics import fid_interval
from helpers.stats import break_even, compare


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


def test_fid_blocks_averages_disjoint_blocks_with_a_t_interval():
    """Five blocks of 400 from a shifted Gaussian cloud: the mean of the five FIDs (each checked against
    frechet_distance on its block), an interval that contains it, and the bootstrap with one block."""
    from helpers.metrics import fid_blocks, frechet_distance

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
