"""Samplers: pure functions of (denoiser, x, timesteps) with `generator=` for every random draw and `callback=` for
the intermediate steps, k-diffusion style. A new sampler is one more function with the same signature.

- `denoiser(x_t, t, y)` returns eps_hat ([N x C x H x W]) and carries `alpha_bar` (float64 [T]); see denoisers.py.
- `timesteps` is a decreasing sequence of integer timesteps (schedules.get_timesteps), e.g. 999, 998, ..., 0.
- `generator` is one torch.Generator or a list with one per image (so an image does not depend on the batch).
- `callback({"x": x_prev, "i": i, "t": t, "x0_hat": x0_hat})` is called after every step.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from .schedules import get_timesteps

SAMPLERS = ("ddpm",)


@torch.no_grad()
def sample_ddpm(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = True, y=None):
    """Ancestral sampling, Ho et al. (2020) Algorithm 2, with sigma_t^2 = beta_tilde_t (eq. 7) and x0_hat clipped to
    [-1, 1], on any decreasing subsequence of timesteps: skipping steps is respacing (Nichol & Dhariwal 2021,
    sec. 4), with beta_t = 1 - alpha_bar_t / alpha_bar_{t_prev}."""
    alpha_bar = denoiser.alpha_bar
    timesteps = [int(t) for t in timesteps]
    for i, t in enumerate(timesteps):
        t_prev = timesteps[i + 1] if i + 1 < len(timesteps) else -1
        ab_t = float(alpha_bar[t])
        ab_prev = float(alpha_bar[t_prev]) if t_prev >= 0 else 1.0
        beta_t = 1.0 - ab_t / ab_prev
        # 1. Predict the noise and the clean image.
        eps_hat = denoiser(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long), y)
        x0_hat = (x - (1 - ab_t) ** 0.5 * eps_hat) / ab_t**0.5
        if clip_x0:
            x0_hat = x0_hat.clamp(-1, 1)
        # 2. Posterior mean mu_tilde(x_t, x0_hat), eq. (7).
        mean = (ab_prev**0.5 * beta_t / (1 - ab_t)) * x0_hat + ((1 - beta_t) ** 0.5 * (1 - ab_prev) / (1 - ab_t)) * x
        # 3. Add noise with the posterior variance beta_tilde_t, except at the last step.
        if t_prev >= 0:
            variance = beta_t * (1 - ab_prev) / (1 - ab_t)
            x = mean + variance**0.5 * randn_tensor(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            x = mean
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


def get_sampler(name: str) -> Callable:
    samplers = {"ddpm": sample_ddpm}
    if name not in samplers:
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(samplers)}")
    return samplers[name]


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


def generate(denoiser, num: int, seed: int, shape, sampler: str = "ddpm", steps: int | None = None,
             spacing: str = "linspace", batch_size: int = 64, device="cpu", y=None, on_batch=None, **kwargs):
    """Draw `num` images of `shape` (C, H, W) in batches: x_T and every later draw of image i come from its own
    generator. Returns an [num x C x H x W] tensor; `on_batch(start, images)` sees each finished batch."""
    T = denoiser.alpha_bar.shape[0]
    timesteps = get_timesteps(T, steps or T, spacing)
    sample = get_sampler(sampler)
    out = []
    for start in range(0, num, batch_size):
        idx = range(start, min(num, start + batch_size))
        gens = image_generators(seed, idx, device)
        x_T = initial_noise(gens, shape, device)
        yb = None if y is None else y[start : start + len(idx)].to(device)
        images = sample(denoiser, x_T, timesteps, generator=gens, y=yb, **kwargs)
        if on_batch is not None:
            on_batch(start, images)
        out.append(images.cpu())
    return torch.cat(out)
