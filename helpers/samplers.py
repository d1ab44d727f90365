"""Samplers: pure functions of (denoiser, x, timesteps) with `generator=` for every random draw and `callback=` for
the intermediate steps, k-diffusion style. A new sampler is one more function with the same signature.

- `denoiser(x_t, t, y)` returns eps_hat, shaped as x_t ([N x C x H x W] images, or any [N x ...]: nothing here
  assumes 4-D), and carries `alpha_bar` (float64 [T]); see denoisers.py. The steps themselves are in diffusion.py.
- `timesteps` is a decreasing sequence of integer timesteps (schedules.get_timesteps), e.g. 999, 998, ..., 0.
- `generator` is one torch.Generator or a list with one per image (so an image does not depend on the batch).
- `callback({"x": x_prev, "i": i, "t": t, "x0_hat": x0_hat})` is called after every step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import import_module
from typing import Callable

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from .checks import check_count, check_finite, check_timesteps
from .diffusion import alpha_bar_at, ddim_step, noise_like, posterior_step, predict_x0
from .schedules import get_timesteps


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


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: where its function lives ("module:function", imported when first used, so that the
    registry does not import every family's code), the options it accepts beyond (denoiser, x, timesteps, generator,
    callback, y), and the data it samples ("image": any [N x ...] tensor of the image models; "tabular": rows)."""

    target: str
    options: tuple[str, ...] = ("clip_x0",)
    data: str = "image"

    def load(self) -> Callable:
        module, name = self.target.split(":")
        return getattr(import_module(module), name)


# The one sampler registry, used by the CLI, the benchmark and the notebooks.
SAMPLER_REGISTRY: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec("helpers.samplers:sample_ddpm"),
    "ddim": SamplerSpec("helpers.samplers:sample_ddim", ("clip_x0", "eta")),
    "dpmpp-2m": SamplerSpec("helpers.samplers:sample_dpmpp_2m"),
    "heun": SamplerSpec("helpers.samplers:sample_heun"),
    "dpmpp-2m-sde": SamplerSpec("helpers.samplers:sample_dpmpp_2m_sde", ("clip_x0", "eta")),
    "cn-2m": SamplerSpec("helpers.calibrate:sample_cn_2m", ("clip_x0", "eta_bands")),
    "lsq-ms": SamplerSpec("helpers.multistep_fit:sample_lsq_ms", ("clip_x0", "coefficients")),
    "tabddpm": SamplerSpec("helpers.tabular.multinomial:sample_tabddpm", data="tabular"),
}
SAMPLERS = tuple(name for name, spec in SAMPLER_REGISTRY.items() if spec.data == "image")  # the image samplers


def get_sampler(name: str, data: str | None = None) -> Callable:
    """The function of a registered sampler (of the given kind of data, if `data` is given)."""
    spec = SAMPLER_REGISTRY.get(name)
    if spec is None or (data is not None and spec.data != data):
        known = [n for n, sp in SAMPLER_REGISTRY.items() if data is None or sp.data == data]
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(known)}")
    return spec.load()


def check_options(name: str, options: dict) -> None:
    """Refuse options that the sampler `name` does not take (e.g. eta for anything but ddim)."""
    for key in options:
        if key not in SAMPLER_REGISTRY[name].options:
            takers = [n for n, spec in SAMPLER_REGISTRY.items() if key in spec.options]
            raise ValueError(f"{key} applies to the {', '.join(takers)} sampler{'s' * (len(takers) > 1)} only, "
                             f"not to {name!r}")


def image_generators(seed: int, indices, device="cpu") -> list[torch.Generator]:
    """One generator per image, seeded by (seed, image index), so image i of seed s is the same at any batch size
    (as NVlabs/edm's StackedRandomGenerator)."""
    gens = []
    for i in indices:
        state = np.random.SeedSequence([seed, int(i)]).generate_state(2, dtype=np.uint32)
        gens.append(torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1])))
    return gens


def initial_noise(generators: list[torch.Generator], shape, device="cpu") -> torch.Tensor:
    """x_T ~ N(0, I): an [N x C x H x W] tensor, image i drawn from generators[i] (the first draw of each)."""
    return randn_tensor((len(generators), *shape), generator=generators, device=torch.device(device), dtype=torch.float32)


def check_starting_noise(x_T: torch.Tensor, shape: tuple) -> None:
    if not torch.is_tensor(x_T) or not x_T.is_floating_point():
        raise ValueError(f"the starting noise must be a floating-point tensor, got {getattr(x_T, 'dtype', type(x_T))}")
    if tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"the starting noise has shape {list(x_T.shape)}, expected {list(shape)} (N x sample shape)")
    if not torch.isfinite(x_T).all():
        raise ValueError("the starting noise holds NaN or inf values")


def finite_guard(callback=None):
    """A sampler callback that stops the sampler at the first step whose x is not finite (then calls `callback`)."""
    def guard(info):
        check_finite(info["x"], info["i"], info["t"])
        if callback is not None:
            callback(info)
    return guard


def sample_shape(denoiser, shape=None) -> tuple[int, ...]:
    """The shape of one sample: `shape` if given, else the denoiser's (from its model card or config)."""
    if shape is not None:
        return tuple(shape)
    found = getattr(denoiser, "sample_shape", None)
    if found is None:
        raise ValueError("this denoiser does not know the shape of its samples; pass shape=(C, H, W)")
    return tuple(found)


def model_defaults(denoiser, kwargs: dict) -> dict:
    """kwargs with the model's own sampling settings added where not given (today: clip_x0 of a latent model)."""
    own = getattr(denoiser, "clip_x0", None)
    return kwargs if own is None or "clip_x0" in kwargs else {**kwargs, "clip_x0": own}


def generate(denoiser, num: int, seed: int, shape=None, sampler: str = "ddpm", steps: int | None = None,
             spacing: str = "linspace", batch_size: int = 64, device="cpu", y=None, x_T: torch.Tensor | None = None,
             on_batch=None, first_index: int = 0, decode: bool = True, **kwargs):
    """Draw `num` images of `shape` (default: the denoiser's sample_shape, e.g. (C, H, W)) in batches: x_T (unless given, [num x C x H x W]) and every later draw
    of image i come from its own generator. Returns an [num x C x H x W] tensor; `on_batch(start, images)` sees each
    finished batch. `first_index` continues a set: images first_index, first_index + 1, ... of this seed.
    A latent model's samples are decoded into images by its autoencoder (`denoiser.decoder`) unless `decode=False`.
    kwargs go to the sampler (eta for ddim, clip_x0; clip_x0 defaults to the model's own, `denoiser.clip_x0`, where
    it has one: a latent model never clips its latents to [-1, 1])."""
    shape = sample_shape(denoiser, shape)
    num, batch_size = check_count(num, "the number of images"), check_count(batch_size, "the batch size")
    T = denoiser.alpha_bar.shape[0]
    steps = T if steps is None else check_count(steps, "the number of sampling steps")
    timesteps = get_timesteps(T, steps, spacing, alpha_bar=denoiser.alpha_bar)
    sample = get_sampler(sampler, data="image")
    if x_T is not None:
        check_starting_noise(x_T, (num, *shape))
    if y is not None and len(y) != num:
        raise ValueError(f"got {len(y)} labels for {num} images; give one label per image")
    callback = finite_guard(kwargs.pop("callback", None))
    kwargs = model_defaults(denoiser, kwargs)
    check_options(sampler, kwargs)
    out = []
    for start in range(0, num, batch_size):
        idx = range(start, min(num, start + batch_size))
        gens = image_generators(seed, [first_index + i for i in idx], device)
        x = initial_noise(gens, shape, device) if x_T is None else x_T[start : start + len(idx)].to(device).float()
        yb = None if y is None else y[start : start + len(idx)].to(device)
        images = sample(denoiser, x, timesteps, generator=gens, y=yb, callback=callback, **kwargs)
        decoder = getattr(denoiser, "decoder", None)
        if decode and decoder is not None:
            images = decoder(images)
        if on_batch is not None:
            on_batch(start, images)
        out.append(images.cpu())
    return torch.cat(out)


def trajectory(denoiser, num: int, seed: int, shape=None, sampler: str = "ddpm", steps: int | None = None,
               spacing: str = "linspace", every: int = 1, device="cpu", y=None, **kwargs) -> dict:
    """Run one sampler on images 0..num-1 of `seed` (the same x_T as `generate`) and keep x_t and the estimate
    x0_hat after every `every`-th step and after the last one. Returns {"t": [...], "x": [...], "x0_hat": [...],
    "x_T": x_T}, each list entry an [num x C x H x W] tensor; entry k holds x_{t_prev} and the x0_hat made at t."""
    T = denoiser.alpha_bar.shape[0]
    timesteps = get_timesteps(T, steps or T, spacing, alpha_bar=denoiser.alpha_bar)
    gens = image_generators(seed, range(num), device)
    x_T = initial_noise(gens, sample_shape(denoiser, shape), device)
    kept = {"t": [], "x": [], "x0_hat": [], "x_T": x_T.cpu()}
    last = len(timesteps) - 1

    def keep(info):
        if info["i"] % every == 0 or info["i"] == last:
            kept["t"].append(int(info["t"]))
            kept["x"].append(info["x"].cpu())
            kept["x0_hat"].append(info["x0_hat"].cpu())

    get_sampler(sampler, data="image")(denoiser, x_T, timesteps, generator=gens, callback=keep, y=y,
                                       **model_defaults(denoiser, kwargs))
    return kept
