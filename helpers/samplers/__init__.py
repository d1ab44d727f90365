"""Samplers: pure functions of (denoiser, x, timesteps) with `generator=` and `callback=`, and what drives them.

- `solvers`: the established samplers (DDPM, DDIM, DPM-Solver++(2M) and its SDE variant, Heun).
- `registry`: `SAMPLER_REGISTRY` (every sampler by name), `generate` and `trajectory` (per-image generators).
- Our own samplers, one module each with its calibration: `cn2m` (DPM-Solver++(2M) with a calibrated noise share
  per band), `lsq_ms` (least-squares multistep coefficients fitted to a fine-grained teacher, IIA-style).
- `schedulers`: any diffusers scheduler as a sampler, `diffusers:ClassName` (the published samplers we do not write).
- `guidance` (classifier-free and classifier guidance as denoiser wrappers), `text_to_image` (the captioned DiT's
  command), `pipelines` (the hub's pretrained pipelines, online only).

A new sampler is one function with the solvers' signature and one line in `registry.SAMPLER_REGISTRY`.
"""
from helpers.samplers.registry import (SAMPLER_REGISTRY, SAMPLERS, SamplerSpec, check_options, generate, get_sampler,
                                       image_generators, initial_noise, trajectory)
from helpers.samplers.solvers import (next_timesteps, sample_ddim, sample_ddpm, sample_dpmpp_2m, sample_dpmpp_2m_sde,
                                      sample_heun)

__all__ = ["SAMPLER_REGISTRY", "SAMPLERS", "SamplerSpec", "check_options", "generate", "get_sampler",
           "image_generators", "initial_noise", "trajectory", "next_timesteps", "sample_ddim", "sample_ddpm",
           "sample_dpmpp_2m", "sample_dpmpp_2m_sde", "sample_heun"]
