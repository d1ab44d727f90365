"""The diffusion maths in one place: the forward process q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0), the
conversions between the network's possible outputs (eps, x0, v), one sampling step of the posterior (ancestral) or of
DDIM from x_t to x_s, and respacing. Samplers, denoisers, the tabular sampler and the distillation teacher all call
these. Equations are from Ho et al. (2020) unless noted.

Shapes: x0, x_t, eps are [N x C x ...] (images [N x C x H x W], rows [N x D], clips [N x F x C x H x W]); t is an [N]
tensor of integer timesteps. In the single-step functions t and s are Python ints shared by the batch, s = -1 being
the clean data (alpha_bar = 1).
"""
from __future__ import annotations

import torch
from diffusers.utils.torch_utils import randn_tensor

from helpers.checks import check_generators
from helpers.schedules import Schedule, gather


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, eq. (4) reparameterised."""
    if x0.shape != eps.shape:
        raise ValueError(f"x0 and eps must have one shape; got {list(x0.shape)} and {list(eps.shape)}")
    ab = gather(schedule.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_posterior_mean_variance(schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """Mean mu_tilde_t(x_t, x_0) and variance beta_tilde_t of q(x_{t-1} | x_t, x_0), eqs. (6)-(7)."""
    mean = gather(schedule.posterior_mean_coef1, t, x_t) * x0 + gather(schedule.posterior_mean_coef2, t, x_t) * x_t
    return mean, gather(schedule.posterior_variance, t, x_t)


def x0_from_eps_at(x_t: torch.Tensor, eps: torch.Tensor, ab) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), eq. (4) solved for x_0 (eq. 15); `ab` is
    alpha_bar_t as a float or as a tensor that broadcasts against x_t."""
    return (x_t - (1 - ab) ** 0.5 * eps) / ab**0.5


def eps_from_x0_at(x_t: torch.Tensor, x0: torch.Tensor, ab) -> torch.Tensor:
    """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t), eq. (4) solved for eps."""
    return (x_t - ab**0.5 * x0) / (1 - ab) ** 0.5


def eps_from_v_at(x_t: torch.Tensor, v: torch.Tensor, ab) -> torch.Tensor:
    """eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v (Salimans & Ho 2022, sec. 4 and appendix D)."""
    return (1 - ab) ** 0.5 * x_t + ab**0.5 * v


def x0_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x0_hat of eq. (15) at a batch of timesteps t ([N])."""
    return x0_from_eps_at(x_t, eps, gather(schedule.alpha_bar, t, x_t))


def eps_from_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    return eps_from_x0_at(x_t, x0, gather(schedule.alpha_bar, t, x_t))


def v_target(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, sec. 4)."""
    ab = gather(schedule.alpha_bar, t, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def eps_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return eps_from_v_at(x_t, v, gather(schedule.alpha_bar, t, x_t))


def p_mean_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t), Ho et al. eq. (11): the mean of
    Algorithm 2's update. Equal to mu_tilde(x_t, x0_hat) with x0_hat from eps (eq. 15), before any clipping."""
    beta, ab = gather(schedule.betas, t, x_t), gather(schedule.alpha_bar, t, x_t)
    return (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()


def alpha_bar_at(alpha_bar: torch.Tensor, t):
    """alpha_bar_t, with alpha_bar = 1 "after" the last step (t = -1): the clean data. t is an int (a float comes
    back) or an [N] tensor of timesteps, one per sample (an [N] float64 tensor comes back)."""
    if torch.is_tensor(t):
        one = torch.ones((), dtype=torch.float64, device=t.device)
        return torch.where(t >= 0, alpha_bar.to(t.device)[t.clamp(min=0)], one)
    if t >= alpha_bar.shape[0] or t < -1:
        T = alpha_bar.shape[0]
        raise ValueError(f"timestep {t} is outside 0..{T - 1} (the model has T = {T} diffusion steps)")
    return float(alpha_bar[t]) if t >= 0 else 1.0


def per_sample(value, x: torch.Tensor):
    """A coefficient that broadcasts against x: a float as it is, an [N] tensor as [N x 1 x ...] (float64)."""
    return value.to(x.device).reshape(-1, *([1] * (x.ndim - 1))) if torch.is_tensor(value) else value


def predict_x0(denoiser, x: torch.Tensor, t, y, clip_x0: bool):
    """eps_hat and x0_hat (eq. 15) of `denoiser` at timestep t (an int, or an [N] tensor with one per sample),
    x0_hat optionally clipped to [-1, 1]; after clipping eps_hat is re-derived from x0_hat so that the two stay
    consistent."""
    if not torch.is_tensor(t) and t < 0:
        raise ValueError(f"timestep {t} is outside 0..{denoiser.alpha_bar.shape[0] - 1}: the network is not called at "
                         "the clean data (t = -1)")
    t_vec = t if torch.is_tensor(t) else torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)
    ab = per_sample(alpha_bar_at(denoiser.alpha_bar, t), x)
    eps_hat = denoiser(x, t_vec, y)
    x0_hat = x0_from_eps_at(x, eps_hat, ab).to(x.dtype)
    if clip_x0:
        x0_hat = x0_hat.clamp(-1, 1)
        eps_hat = eps_from_x0_at(x, x0_hat, ab).to(x.dtype)
    return eps_hat, x0_hat


def noise_like(x: torch.Tensor, generator=None) -> torch.Tensor:
    """z ~ N(0, I) shaped as x; with a list of generators, sample i is drawn from generator i (one per sample)."""
    check_generators(generator, x.shape[0])
    return randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def posterior_step(denoiser, x_t: torch.Tensor, t: int, s: int, y=None, clip_x0: bool = True, generator=None):
    """One ancestral step x_t -> x_s, Ho et al. Algorithm 2 with sigma_t^2 = beta_tilde_t (eq. 7), for any s < t:
    skipping steps is respacing (Nichol & Dhariwal 2021, sec. 4) with beta = 1 - alpha_bar_t / alpha_bar_s. No noise
    is added when s = -1. Returns (x_s, x0_hat)."""
    if not -1 <= s < t:
        raise ValueError(f"an ancestral step goes from t to an earlier s (-1 <= s < t), got t = {t}, s = {s}")
    ab_t, ab_s = alpha_bar_at(denoiser.alpha_bar, t), alpha_bar_at(denoiser.alpha_bar, s)
    beta_t = 1.0 - ab_t / ab_s
    # 1. Predict the clean image.
    _, x0_hat = predict_x0(denoiser, x_t, t, y, clip_x0)
    # 2. Posterior mean mu_tilde(x_t, x0_hat), eq. (7).
    mean = (ab_s**0.5 * beta_t / (1 - ab_t)) * x0_hat + ((1 - beta_t) ** 0.5 * (1 - ab_s) / (1 - ab_t)) * x_t
    if s < 0:
        return mean, x0_hat
    # 3. Add noise with the posterior variance beta_tilde_t.
    variance = beta_t * (1 - ab_s) / (1 - ab_t)
    return mean + variance**0.5 * noise_like(x_t, generator), x0_hat


def ddim_sigma(ab_t, ab_s, eta: float):
    """sigma_t(eta) of DDIM, Song et al. (2021) eq. (16): eta = 0 deterministic, eta = 1 DDPM's posterior variance."""
    return eta * ((1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)) ** 0.5


def ddim_step(denoiser, x_t: torch.Tensor, t, s, y=None, eta: float = 0.0, clip_x0: bool = True, generator=None):
    """One DDIM step x_t -> x_s, Song et al. (2021) eq. (12): x_s = sqrt(alpha_bar_s) x0_hat
    + sqrt(1 - alpha_bar_s - sigma^2) eps_hat + sigma z, with sigma = ddim_sigma(eta) (no noise when s = -1).
    t and s are ints, or [N] tensors with one pair per sample (then eta must be 0). Returns (x_s, x0_hat, eps_hat).
    The progressive-distillation target is built from two of these steps (helpers.training.distill)."""
    if torch.is_tensor(t) and eta != 0:
        raise ValueError("per-sample timesteps are supported for the deterministic DDIM step (eta = 0) only")
    if bool((torch.as_tensor(s) >= torch.as_tensor(t)).any()) or bool((torch.as_tensor(s) < -1).any()):
        raise ValueError(f"a DDIM step goes from t to an earlier s (-1 <= s < t), got t = {t}, s = {s}")
    ab_t = per_sample(alpha_bar_at(denoiser.alpha_bar, t), x_t)
    ab_s = per_sample(alpha_bar_at(denoiser.alpha_bar, s), x_t)
    # 1. Predict the noise and the clean image.
    eps_hat, x0_hat = predict_x0(denoiser, x_t, t, y, clip_x0)
    # 2. sigma_t(eta), eq. (16).
    sigma = ddim_sigma(ab_t, ab_s, eta)
    # 3. Eq. (12): predicted x0, direction pointing to x_t, random noise.
    x_s = (ab_s**0.5 * x0_hat + (1 - ab_s - sigma**2) ** 0.5 * eps_hat).to(x_t.dtype)
    if not torch.is_tensor(sigma) and sigma > 0 and s >= 0:
        x_s = x_s + sigma * noise_like(x_s, generator)
    return x_s, x0_hat, eps_hat


def respace(alpha_bar: torch.Tensor, timesteps) -> Schedule:
    """The Schedule of the kept steps only (Nichol & Dhariwal 2021, sec. 4): for the increasing kept timesteps
    s_0 < s_1 < ..., beta_i = 1 - alpha_bar_{s_i} / alpha_bar_{s_{i-1}}, so its alpha_bar_i is alpha_bar_{s_i}.
    Index i of it is the step from timesteps[-1 - i] to the next kept one."""
    kept = alpha_bar[torch.as_tensor([int(t) for t in timesteps]).flip(0)]
    prev = torch.cat([torch.ones(1, dtype=kept.dtype), kept[:-1]])
    return Schedule("respaced", 1.0 - kept / prev)
