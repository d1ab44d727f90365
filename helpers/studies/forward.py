"""Measurements of the forward process: how long each beta schedule keeps the data recognisable, and Monte-Carlo
checks of the closed forms of Ho et al. (2020): the one-step kernel (eq. 2), the marginal q(x_t | x_0) (eq. 4) and
the posterior q(x_{t-1} | x_t, x_0) (eqs. 6-7).

Timesteps are 0-based as in `helpers.schedules`: index t is the paper's step t + 1, so x_t below has been noised
t + 1 times and "x_{t-1}" at t = 0 is x_0 itself. Images are [N x C x H x W] in [-1, 1].
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from helpers.evaluation.digits import predict
from helpers.diffusion import q_posterior_mean_variance, q_sample
from helpers.schedules import Schedule


def forward_strip(schedule: Schedule, x0: torch.Tensor, ts: list[int], eps: torch.Tensor) -> torch.Tensor:
    """x_t of every image at every t in `ts` with the same noise eps, laid out image by image:
    [N * len(ts) x C x H x W], so that `show_grid(strip, nrow=len(ts))` has one row per image, one column per t."""
    t = torch.tensor(ts).repeat(x0.shape[0])  # (N * len(ts),) t varies fastest
    return q_sample(schedule, x0.repeat_interleave(len(ts), 0), t, eps.repeat_interleave(len(ts), 0))


def psnr(x: torch.Tensor, x0: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image of x against x0 ([N]): 10 log10(data_range^2 / MSE).
    data_range = 2 for [-1, 1] images; identical images give +inf."""
    mse = (x.double() - x0.double()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / mse)


def coarse_correlation(schedule: Schedule, images: torch.Tensor, ts: list[int], generator: torch.Generator,
                       coarse: int = 8) -> pd.DataFrame:
    """How much of the image a coarse look still sees in x_t: x_t and x_0 are average-pooled to coarse x coarse pixels
    and correlated (Pearson, per image, over pixels and channels; the mean over images), for every t. Averaging a
    d-pixel image down to `coarse` divides the noise variance by (d / coarse)^2 but keeps a smooth signal, so at the same
    t a large image is more recognisable than a small one; simple diffusion's shifted schedule
    (schedules.shift_schedule) cancels that. Columns: schedule, size, t, snr, correlation."""
    d = images.shape[-1]
    if d % coarse:
        raise ValueError(f"images of {d} pixels cannot be average-pooled to {coarse} x {coarse}")
    pool = lambda x: torch.nn.functional.avg_pool2d(x.double(), d // coarse).flatten(1)
    eps = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    x0 = pool(images)
    x0 = x0 - x0.mean(1, keepdim=True)
    rows = []
    for t in ts:
        xt = pool(q_sample(schedule, images, torch.full((len(images),), t), eps))
        xt = xt - xt.mean(1, keepdim=True)
        corr = (xt * x0).sum(1) / (xt.norm(dim=1) * x0.norm(dim=1)).clamp_min(1e-12)
        rows.append({"schedule": schedule.name, "size": d, "t": t, "snr": schedule.snr[t].item(),
                     "correlation": corr.mean().item()})
    return pd.DataFrame(rows)


def class_means(images: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Mean image of each class: [num_classes x C x H x W]."""
    return torch.stack([images[labels == k].mean(0) for k in range(num_classes)])


def nearest_mean_predict(x_t: torch.Tensor, alpha_bar: float, means: torch.Tensor) -> torch.Tensor:
    """Labels [N] of argmin_k ||x_t - sqrt(alpha_bar) mu_k||^2: the Bayes classifier of x_t under eq. (4) if each
    class were the single image mu_k (equal priors). A noise-aware probe, unlike a CNN trained on clean digits."""
    centres = math.sqrt(alpha_bar) * means.flatten(1)  # (K, D)
    return torch.cdist(x_t.flatten(1).double(), centres.double()).argmin(1)


def accuracy_vs_t(schedules: list[Schedule], ts: list[int], images: torch.Tensor, labels: torch.Tensor, classifier,
                  generator: torch.Generator, means: torch.Tensor | None = None) -> pd.DataFrame:
    """For every schedule and t, how recognisable x_t = q_sample(x_0, t, eps) still is. One noise draw eps is shared
    by all schedules and timesteps, so two schedules with the same alpha_bar_t see the very same x_t.

    Columns: schedule, t, alpha_bar, snr, accuracy (the CNN `classifier` on x_t), psnr (x_t against x_0, mean over
    images), psnr_rescaled (x_t / sqrt(alpha_bar_t) against x_0) and, if class `means` are given,
    nearest_mean_accuracy (`nearest_mean_predict`)."""
    eps = torch.randn(images.shape, generator=generator, dtype=images.dtype)
    rows = []
    for s in schedules:
        for t in ts:
            x_t = q_sample(s, images, torch.full((len(images),), t), eps)
            ab = s.alpha_bar[t].item()
            row = {"schedule": s.name, "t": t, "alpha_bar": ab, "snr": s.snr[t].item(),
                   "accuracy": (predict(classifier, x_t).argmax(1) == labels).double().mean().item(),
                   "psnr": psnr(x_t, images).mean().item(),
                   "psnr_rescaled": psnr(x_t / math.sqrt(ab), images).mean().item()}
            if means is not None:
                row["nearest_mean_accuracy"] = (nearest_mean_predict(x_t, ab, means) == labels).double().mean().item()
            rows.append(row)
    return pd.DataFrame(rows)


def last_t_above(df: pd.DataFrame, threshold: float, column: str = "accuracy") -> pd.Series:
    """Per schedule, the largest t of the grid up to which `column` stays >= threshold at every grid point
    (-1 if it is already below at the first t). Index: schedule, in the order of first appearance."""
    def last(group: pd.DataFrame) -> int:
        group = group.sort_values("t")
        below = group[column].to_numpy() < threshold
        if not below.any():
            return int(group["t"].iloc[-1])
        first_below = int(below.argmax())
        return int(group["t"].iloc[first_below - 1]) if first_below > 0 else -1

    order = list(dict.fromkeys(df["schedule"]))
    return pd.Series({name: last(df[df["schedule"] == name]) for name in order}, name=f"{column} >= {threshold:g}")


def threshold_table(df: pd.DataFrame, schedules: list[Schedule], thresholds=(0.9, 0.5), column: str = "accuracy"
                    ) -> pd.DataFrame:
    """One row per schedule: for each threshold p, the last grid t with `column` >= p (`last_t_above`), that t as a
    fraction of T, and the SNR there."""
    by_name = {s.name: s for s in schedules}
    out = {}
    for p in thresholds:
        last = last_t_above(df, p, column)
        out[f"last t >= {p:.0%}"] = last
        out[f"t/T >= {p:.0%}"] = [t / by_name[n].T if t >= 0 else float("nan") for n, t in last.items()]
        out[f"SNR there ({p:.0%})"] = [by_name[n].snr[t].item() if t >= 0 else float("nan") for n, t in last.items()]
    return pd.DataFrame(out).rename_axis("schedule")


def snr_crossings(schedules: list[Schedule], levels=(10.0, 1.0, 0.1, 0.01)) -> pd.DataFrame:
    """One row per schedule: the last t with SNR_t >= level, for each level (-1 if none). A property of the schedule
    alone: SNR_t = alpha_bar_t / (1 - alpha_bar_t) decreases with t, so this is where it crosses the level."""
    def last(snr: torch.Tensor, level: float) -> int:
        above = (snr >= level).nonzero()
        return int(above.max()) if len(above) else -1

    return pd.DataFrame({f"last t with SNR >= {level:g}": [last(s.snr, level) for s in schedules] for level in levels},
                        index=pd.Index([s.name for s in schedules], name="schedule"))


def snr_bands(schedules: list[Schedule], high: float = 10.0, low: float = 0.01) -> pd.DataFrame:
    """One row per schedule: how many of its T steps have SNR_t >= high (x_t nearly clean), low <= SNR_t < high
    (the middle) and SNR_t < low (x_t nearly pure noise), and the SNR left at the last step t = T - 1."""
    rows = {s.name: {f"steps SNR >= {high:g}": int((s.snr >= high).sum()),
                     f"steps {low:g} <= SNR < {high:g}": int(((s.snr >= low) & (s.snr < high)).sum()),
                     f"steps SNR < {low:g}": int((s.snr < low).sum()),
                     "SNR at t = T-1": s.snr[-1].item()} for s in schedules}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("schedule")


def markov_chain(schedule: Schedule, x0: torch.Tensor, ts: list[int], generator: torch.Generator,
                 scale: bool = True) -> dict[int, torch.Tensor]:
    """Run the forward chain one step at a time, x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z (eq. 2), in float64,
    and return {t: x_t} for t in ts. scale=False drops the sqrt(1 - beta_t) factor, to show what it is for."""
    x, keep, out = x0.double(), set(ts), {}
    for t in range(max(ts) + 1):
        z = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        x = (schedule.alphas[t].sqrt() if scale else 1.0) * x + schedule.betas[t].sqrt() * z
        if t in keep:
            out[t] = x
    return out


def marginal_moments_check(schedule: Schedule, x0: torch.Tensor, ts: list[int], n: int,
                           generator: torch.Generator) -> pd.DataFrame:
    """Measured mean and variance of x_t given one fixed image x0 ([1 x C x H x W]) over n draws, against eq. (4):
    E[x_t] = sqrt(alpha_bar_t) x0, Var[x_t] = 1 - alpha_bar_t. Draws come from the step-by-step chain (eq. 2) and from
    the closed-form `q_sample`; variances are per pixel over the n draws, then averaged over pixels. mean_slope is the
    least-squares slope of the measured per-pixel mean on x0 (theory: sqrt(alpha_bar_t))."""
    xs = x0.expand(n, *x0.shape[1:])
    chain = markov_chain(schedule, xs, ts, generator)
    rows = []
    for t in ts:
        closed = q_sample(schedule, xs.double(), torch.full((n,), t),
                          torch.randn(xs.shape, generator=generator, dtype=torch.float64))
        ab = schedule.alpha_bar[t].item()
        mean = chain[t].mean(0)
        rows.append({"schedule": schedule.name, "t": t, "var_theory": 1 - ab,
                     "var_chain": chain[t].var(0).mean().item(), "var_q_sample": closed.var(0).mean().item(),
                     "mean_slope": ((mean * x0[0]).sum() / (x0[0].double() ** 2).sum()).item(),
                     "sqrt_alpha_bar": math.sqrt(ab)})
    df = pd.DataFrame(rows)
    df["ratio_chain"] = df["var_chain"] / df["var_theory"]
    df["ratio_q_sample"] = df["var_q_sample"] / df["var_theory"]
    return df


def sample_joint(schedule: Schedule, t: int, x0: float, n: int, generator: torch.Generator):
    """n pairs (x_{t-1}, x_t) of a scalar x0 from the forward process: x_{t-1} ~ q(x_{t-1} | x_0) (eq. 4), then
    x_t ~ q(x_t | x_{t-1}) (eq. 2). Two float64 tensors of shape [n]."""
    ab_prev = schedule.alpha_bar_prev[t]
    x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * torch.randn(n, generator=generator, dtype=torch.float64)
    x_t = schedule.alphas[t].sqrt() * x_prev + schedule.betas[t].sqrt() * torch.randn(n, generator=generator,
                                                                                        dtype=torch.float64)
    return x_prev, x_t


def posterior_by_bins(x_prev: torch.Tensor, x_t: torch.Tensor, schedule: Schedule, t: int, x0: float,
                      num_bins: int = 30, min_count: int = 1000) -> pd.DataFrame:
    """Condition the joint samples on x_t by binning it (equal-width bins over +-3 standard deviations; bins with
    fewer than min_count samples dropped) and compare each bin's moments of x_{t-1} with eqs. (6)-(7).

    The bin has a width, so x_t still varies inside it; since mu_tilde is linear in x_t this is removed exactly:
    the theory mean is mu_tilde at the bin's mean x_t, and the measured variance is that of x_{t-1} - b x_t, with b the
    least-squares slope of x_{t-1} on x_t over all samples (measured, not taken from the formula)."""
    slope = torch.cov(torch.stack([x_t, x_prev]))[0, 1] / x_t.var()
    edges = torch.linspace(x_t.mean() - 3 * x_t.std(), x_t.mean() + 3 * x_t.std(), num_bins + 1, dtype=torch.float64)
    inside = (x_t >= edges[0]) & (x_t < edges[-1])
    which = torch.bucketize(x_t[inside], edges, right=True) - 1  # (n_inside,) bin index in 0..num_bins-1
    resid = (x_prev - slope * x_t)[inside]

    def bin_sum(v):
        return torch.zeros(num_bins, dtype=torch.float64).index_add_(0, which, v)

    count = bin_sum(torch.ones_like(resid))
    keep = count >= min_count
    count = count[keep]
    xt_mean = bin_sum(x_t[inside])[keep] / count
    prev_mean = bin_sum(x_prev[inside])[keep] / count
    resid_mean = bin_sum(resid)[keep] / count
    resid_var = (bin_sum(resid**2)[keep] / count - resid_mean**2) * count / (count - 1)
    t_ = torch.full((len(count),), t)
    mean, var = q_posterior_mean_variance(schedule, torch.full_like(xt_mean, x0), xt_mean, t_)
    columns = {"x_t": xt_mean, "count": count.long(), "mean_measured": prev_mean, "mean_theory": mean,
               "var_measured": resid_var, "var_theory": var.expand_as(mean)}
    return pd.DataFrame({k: v.numpy() for k, v in columns.items()})


def posterior_check(schedule: Schedule, ts: list[int], x0: float, n: int, generator: torch.Generator) -> pd.DataFrame:
    """One row per t: eq. (7) against a global linear fit of x_{t-1} on x_t over n joint samples (`sample_joint`).
    Theory: slope = coefficient of x_t in mu_tilde, intercept = coefficient of x_0 times x0, residual variance =
    beta_tilde_t. Also the worst bin of `posterior_by_bins`: its mean error in standard errors (|z|) and its measured
    over theoretical variance. Needs t >= 1 (at t = 0, x_{t-1} is x_0 itself and beta_tilde_0 = 0)."""
    if min(ts) < 1:
        raise ValueError(f"the posterior check needs t >= 1 (beta_tilde_0 = 0), got ts = {ts}")
    rows = []
    for t in ts:
        x_prev, x_t = sample_joint(schedule, t, x0, n, generator)
        cov = torch.cov(torch.stack([x_t, x_prev]))
        slope = (cov[0, 1] / cov[0, 0]).item()
        intercept = (x_prev.mean() - slope * x_t.mean()).item()
        resid_var = (x_prev - slope * x_t - intercept).var().item()
        bins = posterior_by_bins(x_prev, x_t, schedule, t, x0)
        z = (bins["mean_measured"] - bins["mean_theory"]) / (bins["var_theory"] / bins["count"]).pow(0.5)
        ratio = bins["var_measured"] / bins["var_theory"]
        rows.append({"schedule": schedule.name, "t": t,
                     "slope": slope, "slope_theory": schedule.posterior_mean_coef2[t].item(),
                     "intercept": intercept, "intercept_theory": schedule.posterior_mean_coef1[t].item() * x0,
                     "resid_var": resid_var, "beta_tilde": schedule.posterior_variance[t].item(),
                     "var_ratio": resid_var / schedule.posterior_variance[t].item(),
                     "bins": len(bins), "worst_bin_mean_z": z.abs().max(),
                     "worst_bin_var_ratio": ratio.iloc[int((ratio - 1).abs().argmax())]})
    return pd.DataFrame(rows)


def ranking(column: pd.Series) -> str:
    """"a (t_a) > b (t_b) = c (t_c)": the schedules of a threshold table's column, latest first, ties marked."""
    order = column.sort_values(ascending=False, kind="stable")
    seps = [" = " if a == b else " > " for a, b in zip(order.values[:-1], order.values[1:])]
    parts = [f"{n} ({t})" for n, t in order.items()]
    return parts[0] + "".join(sep + p for sep, p in zip(seps, parts[1:]))


def variance_kept(schedules: list[Schedule], n: int, ts: list[int], generator: torch.Generator) -> pd.DataFrame:
    """Var(x_t) of unit-variance toy data after t Markov steps with and without the sqrt(1 - beta) factor, against
    1 + sum beta (what the variance becomes without it)."""
    x = torch.randn(n, generator=generator, dtype=torch.float64)
    x = (x - x.mean()) / x.std()  # sample variance exactly 1
    rows = []
    for s in schedules:
        scaled = markov_chain(s, x, ts, generator)
        unscaled = markov_chain(s, x, ts, generator, scale=False)
        for t in ts:
            rows.append({"schedule": s.name, "t": t, "Var with sqrt(1-beta)": scaled[t].var().item(),
                         "Var without": unscaled[t].var().item(),
                         "1 + sum beta (theory without)": 1 + s.betas[: t + 1].sum().item()})
    return pd.DataFrame(rows)


def plot_noised_at(schedules: list[Schedule], digits: torch.Tensor, eps: torch.Tensor, t: int, axes) -> None:
    """One panel per schedule: x_t of `digits` in a row, the same noise `eps` under every schedule."""
    from helpers.workbook.plotting import show_grid

    for ax, s in zip(axes, schedules):
        show_grid(forward_strip(s, digits, [t], eps), len(digits), ax=ax, nearest=True)
        ax.set_title(f"{s.name}  SNR={s.snr[t].item():.3g}", fontsize=9)


def show_noised_at(schedules: list[Schedule], digits: torch.Tensor, eps: torch.Tensor, t: int) -> None:
    """plot_noised_at in a figure of its own, titled with t (the notebook's slider)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(schedules), figsize=(12, 1.6))
    plot_noised_at(schedules, digits, eps, t, axes)
    fig.suptitle(f"t = {t}", fontsize=10)
    plt.show()


def schedule_constants(sigmoid_betas: torch.Tensor) -> str:
    """The constants of helpers.schedules as one line: get_betas' beta range, cosine's s and cap, and the sigmoid's
    range u, read off its first beta."""
    import inspect

    from helpers.schedules import cosine_betas, get_betas

    defaults = lambda f: {k: v.default for k, v in inspect.signature(f).parameters.items()
                          if v.default is not inspect.Parameter.empty}
    start, end = defaults(get_betas)["beta_start"], defaults(get_betas)["beta_end"]
    u = -torch.logit((sigmoid_betas[0] - start) / (end - start)).item()
    return (f"beta_start = {start:g}, beta_end = {end:g}; cosine: s = {defaults(cosine_betas)['s']:g}, "
            f"beta_max = {defaults(cosine_betas)['max_beta']:g}; sigmoid: u = {u:.3g}")


def plot_accuracy_and_psnr(sweep: pd.DataFrame, axes) -> None:
    """The sweep of accuracy_vs_t on three axes: accuracy against t and against SNR (CNN solid, nearest class mean
    dashed), and PSNR against t (x_t solid, x_t / sqrt(alpha_bar) dashed)."""
    from helpers.workbook.plotting import SCHEDULE_COLORS

    for name, df in sweep.groupby("schedule", sort=False):
        c = SCHEDULE_COLORS.get(name)
        for ax, x in ((axes[0], df.t), (axes[1], df.snr)):
            ax.plot(x, df.accuracy, color=c, label=name)
            ax.plot(x, df.nearest_mean_accuracy, color=c, ls="--")
        axes[2].plot(df.t, df.psnr, color=c, label=name)
        axes[2].plot(df.t, df.psnr_rescaled, color=c, ls="--")
    for ax in axes[:2]:
        for level in (0.9, 0.5):
            ax.axhline(level, color="grey", lw=0.7, ls=":")
        ax.set_ylabel("accuracy on $x_t$")
    axes[1].set_xscale("log")
    axes[1].invert_xaxis()
    axes[2].set_ylabel("PSNR against $x_0$ (dB)")
    axes[2].set_ylim(-20, 50)
    for ax, xlabel, title in zip(axes, ("t", "SNR$_t$ (log, decreasing)", "t"),
                                 ("solid: CNN, dashed: nearest class mean", "the same against SNR: one curve per probe",
                                  r"solid: $x_t$, dashed: $x_t / \sqrt{\bar\alpha_t}$")):
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
