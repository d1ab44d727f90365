"""The established samplers: pure functions of (denoiser, x, timesteps) with `generator=` for every random draw and `callback=` for
the intermediate steps, k-diffusion style. A new sampler is one more function with the same signature.

- `denoiser(x_t, t, y)` returns eps_hat, shaped as x_t ([N x C x H x W] images, or any [N x ...]: nothing here
  assumes 4-D), and carries `alpha_bar` (float64 [T]); see denoisers.py. The steps themselves are in diffusion.py.
- `timesteps` is a decreasing sequence of integer timesteps (schedules.get_timesteps), e.g. 999, 998, ..., 0.
- `generator` is one torch.Generator or a list with one per image (so an image does not depend on the batch).
- `callback({"x": x_prev, "i": i, "t": t, "x0_hat": x0_hat})` is called after every step.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from helpers.checks import check_timesteps
from helpers.diffusion import alpha_bar_at, ddim_step, noise_like, posterior_step, predict_x0


def next_timesteps(timesteps) -> list[tuple[int, int]]:
    """Pairs (t, t_prev) along a strictly decreasing sequence of integer timesteps (checked), the last t_prev being -1
    (clean data)."""
    ts = check_timesteps(timesteps)
    return list(zip(ts, ts[1:] + [-1]))


@torch.no_grad()
def sample_ddpm(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = True, y=None):
    """Ancestral sampling, Ho et al. (2020) Algorithm 2, with sigma_t^2 = beta_tilde_t (eq. 7) and x0_hat clipped to
    [-1, 1], on any decreasing subsequence of timesteps: skipping steps is respacing (Nichol & Dhariwal 2021,
    sec. 4), with beta_t = 1 - alpha_bar_t / alpha_bar_{t_prev} (diffusion.posterior_step)."""
    for i, (t, t_prev) in enumerate(next_timesteps(timesteps)):
        x, x0_hat = posterior_step(denoiser, x, t, t_prev, y, clip_x0, generator)
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


@torch.no_grad()
def sample_ddim(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = True, y=None,
                eta: float = 0.0):
    """DDIM, Song et al. (2021) eq. (12): x_{t_prev} = sqrt(alpha_bar_prev) x0_hat
    + sqrt(1 - alpha_bar_prev - sigma_t^2) eps_hat + sigma_t z, with sigma_t(eta) from eq. (16).
    eta = 0 is the deterministic "implicit" sampler; eta = 1 has DDPM's posterior variance."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must lie in [0, 1], got {eta}")
    for i, (t, t_prev) in enumerate(next_timesteps(timesteps)):
        x, x0_hat, _ = ddim_step(denoiser, x, t, t_prev, y, eta, clip_x0, generator)
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = False,
                    y=None):
    """DPM-Solver++(2M), Lu et al. (2022) Algorithm 2: a multistep second-order solver of the diffusion ODE in
    lambda_t = log(alpha_t / sigma_t) with data prediction; first order on the first step and on the last step
    (which goes to sigma = 0, i.e. returns x0_hat). alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t).
    `generator` is unused: the solver is deterministic."""
    x0_prev, h_prev = None, None
    for i, (t, t_prev) in enumerate(next_timesteps(timesteps)):
        ab_t, ab_next = alpha_bar_at(denoiser.alpha_bar, t), alpha_bar_at(denoiser.alpha_bar, t_prev)
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0)
        if t_prev < 0:  # sigma_next = 0: the exact solution of the last step is the data prediction itself
            x = x0_hat
        else:
            alpha_t, sigma_t = ab_t**0.5, (1 - ab_t) ** 0.5
            alpha_n, sigma_n = ab_next**0.5, (1 - ab_next) ** 0.5
            h = math.log(alpha_n / sigma_n) - math.log(alpha_t / sigma_t)
            if x0_prev is None:  # first order (DPM-Solver++(1) = DDIM)
                d = x0_hat
            else:  # second order: D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, r = h_prev / h
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0_hat - (1 / (2 * r)) * x0_prev
            x = (sigma_n / sigma_t) * x - alpha_n * math.expm1(-h) * d
            x0_prev, h_prev = x0_hat, h
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = False,
                        y=None, eta=1.0):
    """DPM-Solver++(2M) with noise: SDE-DPM-Solver++(2M) (Lu et al. 2022, sec. 5) with a noise share eta per step
    (as k-diffusion's sample_dpmpp_2m_sde, midpoint form). A step t -> s with h = lambda_s - lambda_t:
        x_s = (sigma_s / sigma_t) e^{-eta h} x_t + alpha_s (1 - e^{-(1 + eta) h}) D + sigma_s sqrt(1 - e^{-2 eta h}) z,
    D = x0_hat on the first step, else x0_hat + (x0_hat - x0_prev) / (2 r) with r = h_prev / h; the last step (to
    sigma = 0) returns x0_hat. eta = 0 is sample_dpmpp_2m (the ODE); eta = 1 on a first-order step is DDPM's
    posterior step. `eta` is one number in [0, 1] or one per step."""
    steps = next_timesteps(timesteps)
    etas = [float(eta)] * len(steps) if isinstance(eta, (int, float)) else [float(e) for e in eta]
    if len(etas) != len(steps) or not all(0.0 <= e <= 1.0 for e in etas):
        raise ValueError(f"eta must be one number in [0, 1] or {len(steps)} of them (one per step), got {eta}")
    x0_prev, h_prev = None, None
    for i, (t, t_prev) in enumerate(steps):
        ab_t, ab_next = alpha_bar_at(denoiser.alpha_bar, t), alpha_bar_at(denoiser.alpha_bar, t_prev)
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0)
        if t_prev < 0:
            x = x0_hat
        else:
            alpha_t, sigma_t = ab_t**0.5, (1 - ab_t) ** 0.5
            alpha_n, sigma_n = ab_next**0.5, (1 - ab_next) ** 0.5
            h, e = math.log(alpha_n / sigma_n) - math.log(alpha_t / sigma_t), etas[i]
            d = x0_hat if x0_prev is None else x0_hat + (x0_hat - x0_prev) / (2 * h_prev / h)
            x = (sigma_n / sigma_t) * math.exp(-e * h) * x - alpha_n * math.expm1(-(1 + e) * h) * d
            if e > 0:
                x = x + sigma_n * math.sqrt(-math.expm1(-2 * e * h)) * noise_like(x, generator)
            x0_prev, h_prev = x0_hat, h
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


@torch.no_grad()
def sample_heun(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = False,
                y=None):
    """Heun's second-order method, Karras et al. (2022) Algorithm 1 without churn, on the discrete model: the ODE
    dx/dsigma = (x - D(x; sigma)) / sigma in the variance-exploding variable x_ve = x_t / sqrt(alpha_bar_t),
    sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t). Two network calls per step except the last (Euler, to sigma = 0).
    `generator` is unused: the solver is deterministic."""
    def sigma_of(t):
        ab = alpha_bar_at(denoiser.alpha_bar, t)
        return ((1 - ab) / ab) ** 0.5

    def denoise(x_ve, t):  # D(x; sigma_t): the model sees x_t = sqrt(alpha_bar_t) x_ve
        return predict_x0(denoiser, x_ve * alpha_bar_at(denoiser.alpha_bar, t) ** 0.5, t, y, clip_x0)[1]

    x = x / alpha_bar_at(denoiser.alpha_bar, int(timesteps[0])) ** 0.5  # to the VE variable
    for i, (t, t_next) in enumerate(next_timesteps(timesteps)):
        sigma_cur, sigma_next = sigma_of(t), sigma_of(t_next)
        # Euler step.
        x0_hat = denoise(x, t)
        d_cur = (x - x0_hat) / sigma_cur
        x_next = x + (sigma_next - sigma_cur) * d_cur
        # Apply 2nd order correction.
        if t_next >= 0:
            d_prime = (x_next - denoise(x_next, t_next)) / sigma_next
            x_next = x + (sigma_next - sigma_cur) * (0.5 * d_cur + 0.5 * d_prime)
        x = x_next
        if callback is not None:
            callback({"x": x * alpha_bar_at(denoiser.alpha_bar, t_next) ** 0.5, "i": i, "t": t, "x0_hat": x0_hat})
    return x  # sigma = 0: x_ve is the clean image
