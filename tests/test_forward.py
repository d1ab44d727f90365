"""helpers.studies.forward: the schedule-comparison measurements and the Monte-Carlo checks of Ho et al. (2020) eqs. (2), (4),
(6)-(7), on fixed seeds with known answers."""
import math

import pandas as pd
import pytest
import torch

from helpers.evaluation.digits import load_classifier, predict
from helpers.datasets.images import load_images
from helpers.diffusion import q_sample
from helpers.studies.forward import (accuracy_vs_t, class_means, forward_strip, last_t_above, marginal_moments_check,
                             markov_chain, nearest_mean_predict, posterior_by_bins, posterior_check, psnr,
                             sample_joint, snr_bands, snr_crossings, threshold_table)
from helpers.schedules import SCHEDULES, Schedule


@pytest.fixture(scope="module")
def mnist_test():
    return load_images("mnist:test")


def test_psnr_known_values():
    x0 = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    assert torch.isinf(psnr(x0, x0)).all()
    # A constant error of 0.2 on a [-1, 1] image: MSE = 0.04, PSNR = 10 log10(2^2 / 0.04) = 20 dB exactly.
    assert psnr(x0 + 0.2, x0).tolist() == pytest.approx([20.0, 20.0], abs=1e-9)
    # data_range = 1 (images in [0, 1]): 10 log10(1 / 0.04) = 13.979... dB.
    assert psnr(x0 + 0.2, x0, data_range=1.0)[0].item() == pytest.approx(10 * math.log10(25), abs=1e-9)


def test_forward_strip_layout():
    s = Schedule.from_name("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand(3, 1, 5, 5, generator=g) * 2 - 1, torch.randn(3, 1, 5, 5, generator=g)
    ts = [0, 10, 99]
    strip = forward_strip(s, x0, ts, eps)
    assert strip.shape == (9, 1, 5, 5)
    for i in range(3):
        for j, t in enumerate(ts):  # image i, timestep t sits at row i, column j of a grid with nrow = len(ts)
            expected = q_sample(s, x0[i : i + 1], torch.tensor([t]), eps[i : i + 1])
            assert torch.equal(strip[i * len(ts) + j : i * len(ts) + j + 1], expected)


def test_nearest_mean_recovers_the_means():
    g = torch.Generator().manual_seed(1)
    means = torch.rand(10, 1, 6, 6, generator=g) * 2 - 1
    labels = torch.arange(10)
    assert torch.equal(nearest_mean_predict(means, 1.0, means), labels)
    # Scaled by sqrt(alpha_bar) as in eq. (4) with no noise, the probe must still find each class.
    assert torch.equal(nearest_mean_predict(0.1 * means, 0.01, means), labels)
    assert torch.allclose(class_means(means.repeat(3, 1, 1, 1), labels.repeat(3)), means, atol=1e-6)


def test_accuracy_vs_t_on_mnist(mnist_test):
    images, labels = mnist_test.images[:200], mnist_test.labels[:200]
    clf = load_classifier()
    schedules = [Schedule.from_name("linear"), Schedule("linear-copy", Schedule.from_name("linear").betas)]
    df = accuracy_vs_t(schedules, [0, 150, 999], images, labels, clf, torch.Generator().manual_seed(0),
                       means=class_means(images, labels))
    assert list(df.columns) == ["schedule", "t", "alpha_bar", "snr", "accuracy", "psnr", "psnr_rescaled",
                                "nearest_mean_accuracy"]
    assert len(df) == 6
    # At t = 0 the noise has standard deviation sqrt(1e-4) = 0.01, a quarter of one grey level: the classifier's
    # decisions do not change, so the accuracy is the clean accuracy on the same 200 digits.
    clean = (predict(clf, images).argmax(1) == labels).double().mean().item()
    assert df.loc[df.t == 0, "accuracy"].tolist() == [clean, clean]
    assert clean > 0.97
    # Near pure noise the CNN is at chance level (it answers one class for almost every image).
    assert df.loc[df.t == 999, "accuracy"].max() < 0.2
    # Same betas, same shared noise: identical rows whatever the name.
    a, b = df[df.schedule == "linear"].drop(columns="schedule"), df[df.schedule == "linear-copy"].drop(columns="schedule")
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    # x_t / sqrt(alpha_bar) = x_0 + eps / sqrt(SNR), so its MSE is 1 / SNR on average and its PSNR is
    # 10 log10(4 SNR) up to Monte-Carlo noise (784 pixels x 200 images).
    theory = 10 * torch.log10(4 * torch.tensor(df.snr.to_numpy()))
    assert torch.allclose(torch.tensor(df.psnr_rescaled.to_numpy()), theory, atol=0.1)


def test_last_t_above_and_threshold_table():
    df = pd.DataFrame({"schedule": ["a"] * 4 + ["b"] * 4 + ["c"] * 4, "t": [0, 10, 20, 30] * 3,
                       "accuracy": [1.0, 0.95, 0.6, 0.1,    # a: >= 0.9 up to t = 10, >= 0.5 up to t = 20
                                    0.8, 0.99, 0.99, 0.99,  # b: already below 0.9 at the first t -> -1
                                    0.9, 0.9, 0.4, 0.95]})  # c: a dip at t = 20 ends the run even if it recovers
    assert last_t_above(df, 0.9).to_dict() == {"a": 10, "b": -1, "c": 10}
    assert last_t_above(df, 0.5).to_dict() == {"a": 20, "b": 30, "c": 10}
    schedules = [Schedule(n, Schedule.from_name("linear", 100).betas) for n in "abc"]
    table = threshold_table(df, schedules)
    assert table["last t >= 90%"].tolist() == [10, -1, 10]
    assert table["t/T >= 50%"].tolist() == [0.2, 0.3, 0.1]
    assert math.isnan(table.loc["b", "SNR there (90%)"])
    assert table.loc["a", "SNR there (50%)"] == schedules[0].snr[20].item()


def test_snr_crossings_golden():
    # Produced by snr_crossings on T = 1000 (float64 Schedule.snr) and checked against the closed form for linear:
    # SNR_t >= 1 <=> alpha_bar_t >= 1/2, and prod(1 - beta_s) first drops below 1/2 at t = 259.
    table = snr_crossings([Schedule.from_name(n) for n in SCHEDULES], levels=(1.0, 0.01))
    assert table["last t with SNR >= 1"].to_dict() == {"linear": 258, "cosine": 495, "quadratic": 417, "sigmoid": 438}
    assert table["last t with SNR >= 0.01"].to_dict() == {"linear": 673, "cosine": 935, "quadratic": 850,
                                                          "sigmoid": 720}
    betas = Schedule.from_name("linear").betas.tolist()
    assert math.prod(1 - b for b in betas[:259]) >= 0.5 > math.prod(1 - b for b in betas[:260])


def test_snr_bands_partition_the_steps():
    schedules = [Schedule.from_name(n) for n in SCHEDULES]
    bands = snr_bands(schedules, high=1.0, low=0.01)
    assert (bands.iloc[:, :3].sum(axis=1) == 1000).all()
    # Consistent with snr_crossings (SNR decreases with t): steps with SNR >= 1 = last such t + 1.
    assert bands["steps SNR >= 1"].to_dict() == {"linear": 259, "cosine": 496, "quadratic": 418, "sigmoid": 439}
    assert bands.loc["cosine", "SNR at t = T-1"] < 1e-8  # the 0.999 cap leaves alpha_bar_{T-1} ~ 2.4e-9


def test_markov_chain_scaling_keeps_unit_variance():
    s = Schedule.from_name("linear")
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(20000, generator=g, dtype=torch.float64)  # unit-variance "data"
    scaled = markov_chain(s, x0, [999], g)[999]
    unscaled = markov_chain(s, x0, [999], g, scale=False)[999]
    # Var = (1 - beta) * 1 + beta = 1 at every step with the sqrt(1 - beta) factor; 1 + sum(beta) = 11.05 without.
    # Tolerance: 4 standard errors of a variance from 20000 Gaussian draws, 4 * sqrt(2 / 20000) = 0.04 (relative).
    assert scaled.var().item() == pytest.approx(1.0, rel=0.04)
    assert unscaled.var().item() == pytest.approx(1.0 + s.betas.sum().item(), rel=0.04)


def test_marginal_moments_match_eq4(mnist_test):
    s = Schedule.from_name("cosine", 200)
    df = marginal_moments_check(s, mnist_test.images[:1], [0, 50, 150, 199], 32, torch.Generator().manual_seed(3))
    # 32 draws x 784 pixels per variance: relative standard error ~ sqrt(2 / (31 * 784)) = 0.9%; allow 4%.
    assert df.ratio_chain.sub(1).abs().max() < 0.04 and df.ratio_q_sample.sub(1).abs().max() < 0.04
    assert torch.allclose(torch.tensor(df.mean_slope.to_numpy()), torch.tensor(df.sqrt_alpha_bar.to_numpy()),
                          atol=0.02)


def test_posterior_moments_match_eq7():
    s = Schedule.from_name("linear")
    g = torch.Generator().manual_seed(4)
    df = posterior_check(s, [1, 100, 999], x0=0.5, n=200_000, generator=g)
    # Residual variance from 200k samples: relative standard error sqrt(2 / 2e5) = 0.3%; allow 1.5%.
    assert df.var_ratio.sub(1).abs().max() < 0.015
    assert torch.allclose(torch.tensor(df.slope.to_numpy()), torch.tensor(df.slope_theory.to_numpy()), atol=5e-3)
    assert torch.allclose(torch.tensor(df.intercept.to_numpy()), torch.tensor(df.intercept_theory.to_numpy()),
                          atol=5e-3)
    assert (df.worst_bin_mean_z < 4.5).all()  # max |z| over <= 30 bins of N(0, 1) errors
    bins = posterior_by_bins(*sample_joint(s, 100, 0.5, 200_000, g), s, 100, 0.5)
    assert bins["count"].min() >= 1000 and len(bins) >= 20
    with pytest.raises(ValueError, match="needs t >= 1"):
        posterior_check(s, [0], 0.5, 10, g)


def test_the_shifted_schedule_makes_a_large_image_as_recognisable_at_a_coarse_scale_as_a_small_one():
    """An image at 32 pixels that is the 16-pixel image upsampled 2 x: at the same t its 8 x 8 view is less noisy
    (the pooling averages 4 times as many noise values); under shift_schedule(s, 32, base=16) the two agree within
    Monte-Carlo noise (400 images, one noise draw each)."""
    from helpers.studies.forward import coarse_correlation
    from helpers.schedules import shift_schedule

    g = torch.Generator().manual_seed(0)
    small = torch.nn.functional.avg_pool2d(torch.rand(400, 3, 32, 32, generator=g), 4) * 2 - 1  # smooth-ish 8x8
    small = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest")               # 16 x 16
    large = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest")               # 32 x 32
    s = Schedule.from_name("cosine", 1000)
    ts = [300, 500, 700, 850]
    c_small = coarse_correlation(s, small, ts, torch.Generator().manual_seed(1)).correlation.to_numpy()
    c_large = coarse_correlation(s, large, ts, torch.Generator().manual_seed(2)).correlation.to_numpy()
    c_shift = coarse_correlation(shift_schedule(s, 32, base=16), large, ts, torch.Generator().manual_seed(3)).correlation.to_numpy()
    assert (c_large > c_small + 0.02).all()          # unshifted: the large image looks cleaner at every t
    assert abs(c_shift - c_small).max() < 0.02       # shifted: the same
    with pytest.raises(ValueError, match="cannot be average-pooled to 8 x 8"):
        coarse_correlation(s, torch.zeros(2, 1, 12, 12), ts, g)


def test_ranking_orders_latest_first_and_marks_ties():
    import pandas as pd

    from helpers.studies.forward import ranking

    column = pd.Series({"linear": 340, "cosine": 630, "quadratic": 340, "sigmoid": 480})
    assert ranking(column) == "cosine (630) > sigmoid (480) > linear (340) = quadratic (340)"


def test_variance_kept_is_one_with_the_factor_and_one_plus_sum_beta_without():
    """The variance-preserving factor: with sqrt(1 - beta_t) Var(x_t) stays 1 up to Monte-Carlo error (20,000
    draws: relative sd about 1%); without it Var(x_t) follows 1 + sum beta_s."""
    from helpers.studies.forward import variance_kept

    df = variance_kept([Schedule.from_name("linear", 1000)], 20_000, [249, 999], torch.Generator().manual_seed(0))
    assert (df["Var with sqrt(1-beta)"] - 1).abs().max() < 0.05
    rel = (df["Var without"] / df["1 + sum beta (theory without)"] - 1).abs().max()
    assert rel < 0.05 and df["Var without"].iloc[-1] > 10
