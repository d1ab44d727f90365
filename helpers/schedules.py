"""Beta schedules, the quantities derived from them, and timestep spacings for sampling with fewer steps.

Notation (Ho et al. 2020):
    beta_t          variance of the noise added at step t        q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)
    alpha_t         1 - beta_t
    alpha_bar_t     prod_{s <= t} alpha_s                         q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    snr_t           alpha_bar_t / (1 - alpha_bar_t)
    beta_tilde_t    posterior variance of q(x_{t-1} | x_t, x_0), eq. (7)

Everything is computed once in float64 ("use float64 for accuracy", improved-diffusion) and cast where it is used.
Timesteps are 0-based: t = 0 .. T-1, where t = 0 is the first noising step.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine", "quadratic", "sigmoid")
SPACINGS = ("linspace", "leading", "trailing", "quadratic", "karras")


def get_betas(name: str, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """beta_1..beta_T of a named schedule as a float64 tensor of shape [T].

    - linear: Ho et al. (2020), beta from 1e-4 to 0.02 (not rescaled with T, as diffusers' "linear").
    - cosine: Nichol & Dhariwal (2021) eq. (17), s = 0.008, each beta capped at 0.999.
    - quadratic: sqrt(beta) linear between the same end points (diffusers' "scaled_linear").
    - sigmoid: beta_start + (beta_end - beta_start) * sigmoid(linspace(-6, 6, T)) (diffusers' "sigmoid", GeoDiff).
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"the number of diffusion steps T must be a positive integer, got {T!r}")
    if not (0 < beta_start <= beta_end < 1):  # also false for NaN
        raise ValueError(f"beta_start and beta_end must satisfy 0 < beta_start <= beta_end < 1 (so that every alpha_t "
                         f"lies in (0, 1)), got {beta_start!r} and {beta_end!r}")
    if name == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if name == "cosine":
        return cosine_betas(T)
    if name == "quadratic":
        return torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
    if name == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T, dtype=torch.float64)) * (beta_end - beta_start) + beta_start
    raise ValueError(f"unknown beta schedule {name!r}; known schedules: {', '.join(SCHEDULES)}")


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal (2021) eq. (17): alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2),
    and beta_t = min(1 - alpha_bar(t)/alpha_bar(t-1), max_beta)."""

    def f(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    betas = [min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True)
class Schedule:
    """A discrete diffusion process with T steps; every tensor is float64 of shape [T]."""

    name: str
    betas: torch.Tensor

    @classmethod
    def from_name(cls, name: str, T: int = 1000) -> "Schedule":
        return cls(name, get_betas(name, T))

    @property
    def T(self) -> int:
        return self.betas.shape[0]

    def fingerprint(self) -> str:
        """A short hash of alpha_bar written to 10 significant digits: model cards store it at training time, and
        loading checks that the schedule a card names is still the one the weights were trained with. Not the raw
        float64 bytes: torch.linspace and cumprod differ in the last bit between CPU kernels (AVX2, AVX512, default),
        which made a card written on one machine unreadable on another."""
        import hashlib

        text = ",".join(f"{v:.9e}" for v in self.alpha_bar.tolist())
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bar(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @property
    def alpha_bar_prev(self) -> torch.Tensor:
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])

    @property
    def snr(self) -> torch.Tensor:
        return self.alpha_bar / (1.0 - self.alpha_bar)

    @property
    def posterior_variance(self) -> torch.Tensor:
        """beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t, Ho et al. eq. (7)."""
        return self.betas * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)

    @property
    def posterior_mean_coef1(self) -> torch.Tensor:
        """Coefficient of x_0 in mu_tilde_t: sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t), eq. (7)."""
        return self.betas * self.alpha_bar_prev.sqrt() / (1.0 - self.alpha_bar)

    @property
    def posterior_mean_coef2(self) -> torch.Tensor:
        """Coefficient of x_t in mu_tilde_t: sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t), eq. (7)."""
        return self.alphas.sqrt() * (1.0 - self.alpha_bar_prev) / (1.0 - self.alpha_bar)


def shift_schedule(schedule: Schedule, size: int, base: int = 64) -> Schedule:
    """The resolution-shifted schedule of "simple diffusion" (Hoogeboom et al. 2023, sec. 3.1; Chen 2023): the same
    schedule with its log-SNR moved by 2 log(base / size) at every t, i.e. SNR_t multiplied by (base / size)^2. An
    image of `size` pixels a side averaged down to `base` has its noise variance divided by (size / base)^2, so this
    shift gives it the same SNR at that coarse scale as the unshifted schedule gives a `base`-pixel image: larger
    images are noised faster (size > base lowers the SNR), smaller ones slower. alpha_bar = sigmoid(log-SNR)."""
    if not (isinstance(size, numbers.Integral) and size >= 1 and isinstance(base, numbers.Integral) and base >= 1):
        raise ValueError(f"size and base must be positive integers (pixels a side), got {size!r} and {base!r}")
    log_snr = torch.log(schedule.snr) + 2 * math.log(base / size)
    alpha_bar = torch.sigmoid(log_snr)
    betas = 1 - alpha_bar / torch.cat([torch.ones(1, dtype=torch.float64), alpha_bar[:-1]])
    return Schedule(f"{schedule.name}-shifted-{base}/{size}", betas)


def gather(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t] for a batch of timesteps t ([N], or one for all), cast to x's dtype and device and shaped
    [N, 1, 1, ...] so that it broadcasts against x ([N x C x ...]). Timesteps outside 0..T-1, non-integer ones or a
    count that is neither 1 nor N are refused (an index of -1 would silently read the last step)."""
    t = torch.as_tensor(t)
    T = values.shape[0]
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"timesteps must be integers, got a {t.dtype} tensor")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= T):
        bad = int(t.min()) if int(t.min()) < 0 else int(t.max())
        raise ValueError(f"timestep {bad} is outside 0..{T - 1} (the schedule has T = {T} diffusion steps)")
    if t.ndim > 1 or t.numel() not in (1, x.shape[0]):
        raise ValueError(f"got {t.numel()} timesteps for a batch of {x.shape[0]}: give one per sample, or one for all")
    out = values.to(t.device)[t].to(device=x.device, dtype=x.dtype)
    return out.reshape(-1, *([1] * (x.ndim - 1)))


def karras_timesteps(alpha_bar: torch.Tensor | None, num_steps: int, rho: float = 7.0) -> torch.Tensor:
    """Increasing integer timesteps nearest in log sigma to Karras et al.'s rho-spaced sigmas (see get_timesteps)."""
    if alpha_bar is None:
        raise ValueError("the karras spacing needs the model's alpha_bar (get_timesteps(..., alpha_bar=...))")
    log_sigma = (0.5 * ((1 - alpha_bar) / alpha_bar).log()).double()
    s_min, s_max = log_sigma[0].exp(), log_sigma[-1].exp()
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    sigmas = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return (sigmas.log()[:, None] - log_sigma[None, :]).abs().argmin(1).flip(0)


def get_timesteps(T: int, num_steps: int, spacing: str = "linspace", alpha_bar: torch.Tensor | None = None) -> torch.Tensor:
    """A decreasing subsequence of 0..T-1 with `num_steps` timesteps, to sample with fewer steps than training.

    - linspace: round(linspace(0, T-1, n)), first and last step included (diffusers' "linspace").
    - leading: 0, T//n, 2T//n, ... (diffusers' "leading", the DDIM paper's "uniform" when T % n == 0).
    - trailing: round(arange(T, 0, -T/n)) - 1, always starting from T-1 (Lin et al. 2023).
    - quadratic: int(linspace(0, sqrt(0.8 T), n)^2), the DDIM paper's quadratic spacing (Song et al. 2021, sec. D.2).
    - karras: the timesteps whose sigma_t = sqrt((1 - alpha_bar_t) / alpha_bar_t) lie nearest (in log sigma) to
      Karras et al.'s (2022, eq. 5) sigma_i = (s_max^(1/7) + i/(n-1) (s_min^(1/7) - s_max^(1/7)))^7 between the
      model's largest and smallest sigma: dense at low noise (needs `alpha_bar`; diffusers' use_karras_sigmas
      interpolates fractional timesteps instead of rounding to the nearest integer one).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, numbers.Integral) or num_steps < 1:
        raise ValueError(f"the number of sampling steps must be a positive integer, got {num_steps!r}")
    num_steps = int(num_steps)
    if num_steps > T:
        raise ValueError(f"asked for {num_steps} sampling steps but the model has only T = {T} diffusion steps")
    if spacing == "linspace":
        ts = torch.linspace(0, T - 1, num_steps, dtype=torch.float64).round().long()
    elif spacing == "leading":
        ts = torch.arange(num_steps) * (T // num_steps)
    elif spacing == "trailing":
        ts = torch.arange(T, 0, -T / num_steps, dtype=torch.float64).round().long().flip(0) - 1
    elif spacing == "quadratic":
        ts = (torch.linspace(0, math.sqrt(T * 0.8), num_steps, dtype=torch.float64) ** 2).long()
    elif spacing == "karras":
        ts = karras_timesteps(alpha_bar, num_steps)
    else:
        raise ValueError(f"unknown timestep spacing {spacing!r}; known spacings: {', '.join(SPACINGS)}")
    ts = ts.flip(0)
    if len(torch.unique(ts)) != num_steps:
        raise ValueError(f"spacing {spacing!r} gives repeated timesteps for {num_steps} of T = {T} steps; use fewer")
    return ts
