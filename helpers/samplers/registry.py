"""The sampler registry and the sampling loop around it: `generate` draws N images with one generator per image (so
image i does not depend on the batch), `trajectory` keeps every step; `SAMPLER_REGISTRY` names every sampler as
"module:function", imported when first used.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Callable

import numpy as np
import torch
from diffusers.utils.torch_utils import randn_tensor

from helpers.checks import check_count, check_finite
from helpers.denoisers import model_num_classes, text_conditioned
from helpers.progress import Progress
from helpers.schedules import get_timesteps


@dataclass(frozen=True)
class SamplerSpec:
    """A registered sampler: where its function lives ("module:function", imported when first used, so that the
    registry does not import every family's code), the options it accepts beyond (denoiser, x, timesteps, generator,
    callback, y), and the data it samples ("image": any [N x ...] tensor of the image models; "tabular": rows)."""

    target: str
    options: tuple[str, ...] = ("clip_x0",)
    data: str = "image"
    spaced: bool = False  # the sampler builds its own grid and is told the spacing (diffusers' schedulers)
    spacing: str | None = None  # its default spacing, if not linspace ("calibrated": the grid of its calibration)
    calibrate: str | None = None  # the command that calibrates its grid ({steps}: the step count)

    def load(self) -> Callable:
        module, name = self.target.split(":")
        return getattr(import_module(module), name)


# The one sampler registry, used by the CLI, the benchmark and the notebooks.
SAMPLER_REGISTRY: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec("helpers.samplers.solvers:sample_ddpm"),
    "ddim": SamplerSpec("helpers.samplers.solvers:sample_ddim", ("clip_x0", "eta")),
    "dpmpp-2m": SamplerSpec("helpers.samplers.solvers:sample_dpmpp_2m"),
    "heun": SamplerSpec("helpers.samplers.solvers:sample_heun"),
    "dpmpp-2m-sde": SamplerSpec("helpers.samplers.solvers:sample_dpmpp_2m_sde", ("clip_x0", "eta")),
    "cn-2m": SamplerSpec("helpers.samplers.cn2m:sample_cn_2m", ("clip_x0", "eta_bands")),
    "lsq-ms": SamplerSpec("helpers.samplers.lsq_ms:sample_lsq_ms", ("clip_x0", "coefficients")),
    "gn-2m": SamplerSpec("helpers.samplers.gn2m:sample_gn_2m", ("clip_x0", "eta"), spacing="calibrated",
                         calibrate="python -m helpers.samplers.gn2m --checkpoint <its folder> --steps {steps}"),
    # its ablations: the noise searched on the trailing grid, the grid searched with one eta (their own calibrations)
    "gn-2m-noise": SamplerSpec("helpers.samplers.gn2m:sample_gn_2m_noise", spacing="trailing"),
    "gn-2m-grid": SamplerSpec("helpers.samplers.gn2m:sample_gn_2m_grid", spacing="calibrated",
                              calibrate="python -m helpers.samplers.gn2m --checkpoint <its folder> --steps {steps} "
                                        "--search grid"),
    "lsq-sde": SamplerSpec("helpers.samplers.lsq_sde:sample_lsq_sde", ("clip_x0", "coefficients", "noise")),
    # the published samplers we do not rewrite: diffusers' schedulers through the adapter (samplers.schedulers)
    **{name: SamplerSpec(f"helpers.samplers.schedulers:sample_{name.replace('-', '_')}", spaced=True)
       for name in ("dpmpp-3m", "sde-dpmpp-2m", "sde-dpmpp-3m", "unipc", "unipc-3", "deis", "sa-solver")},
    "tabddpm": SamplerSpec("helpers.tabular.multinomial:sample_tabddpm", data="tabular"),
}
SAMPLERS = tuple(name for name, spec in SAMPLER_REGISTRY.items() if spec.data == "image")  # the image samplers


def get_sampler(name: str, data: str | None = None) -> Callable:
    """The function of a registered sampler (of the given kind of data, if `data` is given); "diffusers:ClassName"
    is any diffusers scheduler on image data (helpers.samplers.schedulers)."""
    if name.startswith("diffusers:") and data in (None, "image"):
        from helpers.samplers.schedulers import sampler

        return sampler(name)
    spec = SAMPLER_REGISTRY.get(name)
    if spec is None or (data is not None and spec.data != data):
        known = [n for n, sp in SAMPLER_REGISTRY.items() if data is None or sp.data == data]
        raise ValueError(f"unknown sampler {name!r}; known samplers: {', '.join(known)}")
    return spec.load()


def check_options(name: str, options: dict) -> None:
    """Refuse options that the sampler `name` does not take (e.g. eta for anything but ddim); a diffusers scheduler's
    options are its config's, checked when it is built."""
    if name.startswith("diffusers:"):
        return
    for key in options:
        if key not in SAMPLER_REGISTRY[name].options:
            takers = [n for n, spec in SAMPLER_REGISTRY.items() if key in spec.options]
            raise ValueError(f"{key} applies to the {', '.join(takers)} sampler{'s' * (len(takers) > 1)} only, "
                             f"not to {name!r}")


def image_generators(seed: int, indices, device="cpu") -> list[torch.Generator]:
    """One generator per image, seeded by (seed, image index), so image i of seed s is the same at any batch size
    (as NVlabs/edm's StackedRandomGenerator)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"the seed must be a non-negative integer, got {seed!r}")
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


def finite_guard(callback=None, progress=None):
    """A sampler callback that stops the sampler at the first step whose x is not finite (then calls `callback`,
    and advances `progress`, a helpers.progress.Progress, by one step)."""
    def guard(info):
        check_finite(info["x"], info["i"], info["t"])
        if callback is not None:
            callback(info)
        if progress is not None:
            progress.advance()
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


def default_spacing(sampler: str) -> str:
    """A sampler's own spacing: its registry entry's; diffusers' multistep schedulers step on trailing grids; every
    other sampler on linspace."""
    spec = SAMPLER_REGISTRY.get(sampler)
    if spec is not None and spec.spacing is not None:
        return spec.spacing
    return "trailing" if spec is not None and spec.spaced else "linspace"


def sampling_grid(denoiser, sampler: str, steps: int, spacing: str) -> torch.Tensor:
    """The timesteps of `steps` steps: get_timesteps' spacing, or "calibrated", the grid that `sampler`'s
    calibration of this model holds for that number of steps (calibration.json, "fits")."""
    if spacing != "calibrated":
        return get_timesteps(denoiser.alpha_bar.shape[0], steps, spacing, alpha_bar=denoiser.alpha_bar)
    spec = SAMPLER_REGISTRY.get(sampler)
    if spec is None or spec.calibrate is None:
        own = [name for name, sp in SAMPLER_REGISTRY.items() if sp.calibrate is not None]
        raise ValueError(f"--spacing calibrated: {sampler} has no calibrated grid (the samplers that have one: "
                         f"{', '.join(own)})")
    fits = (getattr(denoiser, "calibration", None) or {}).get(sampler, {}).get("fits", {})
    if str(steps) not in fits or "timesteps" not in fits[str(steps)]:
        have = sorted(int(k) for k, fit in fits.items() if "timesteps" in fit)
        raise ValueError(f"--spacing calibrated: the {sampler} sampler has no calibrated grid of {steps} steps for this "
                         f"model (calibrated: {have or 'none'}): run `{spec.calibrate.format(steps=steps)}`")
    return torch.tensor(fits[str(steps)]["timesteps"])


def generate(denoiser, num: int, seed: int, shape=None, sampler: str = "ddpm", steps: int | None = None,
             spacing: str | None = None, batch_size: int = 64, device="cpu", y=None, x_T: torch.Tensor | None = None,
             on_batch=None, first_index: int = 0, decode: bool = True, **kwargs):
    """Draw `num` images of `shape` (default: the denoiser's sample_shape, e.g. (C, H, W)) in batches: x_T (unless given, [num x C x H x W]) and every later draw
    of image i come from its own generator. Returns an [num x C x H x W] tensor; `on_batch(start, images)` sees each
    finished batch. `first_index` continues a set: images first_index, first_index + 1, ... of this seed.
    A latent model's samples are decoded into images by its autoencoder (`denoiser.decoder`) unless `decode=False`.
    kwargs go to the sampler (eta for ddim, clip_x0; clip_x0 defaults to the model's own, `denoiser.clip_x0`, where
    it has one: a latent model never clips its latents to [-1, 1])."""
    shape = sample_shape(denoiser, shape)
    spacing = default_spacing(sampler) if spacing is None else spacing
    num, batch_size = check_count(num, "the number of images"), check_count(batch_size, "the batch size")
    T = denoiser.alpha_bar.shape[0]
    steps = T if steps is None else check_count(steps, "the number of sampling steps")
    timesteps = sampling_grid(denoiser, sampler, steps, spacing)
    sample = get_sampler(sampler, data="image")
    if x_T is not None:
        check_starting_noise(x_T, (num, *shape))
    if y is not None and len(y) != num:
        raise ValueError(f"got {len(y)} labels for {num} images; give one label per image")
    if y is not None and not hasattr(denoiser, "denoiser") and model_num_classes(denoiser) is None \
            and not text_conditioned(denoiser):
        raise ValueError("labels were given but the model is unconditional (it has no classes and no text encoder); "
                         "drop y, or sample a conditional checkpoint")
    progress = Progress(f"sampling {num} images, {sampler}-{steps}", -(-num // batch_size) * len(timesteps))
    callback = finite_guard(kwargs.pop("callback", None), progress)
    kwargs = model_defaults(denoiser, kwargs)
    check_options(sampler, kwargs)
    if sampler.startswith("diffusers:") or SAMPLER_REGISTRY[sampler].spaced:
        kwargs["spacing"] = spacing  # the scheduler spaces its own timesteps; the adapter checks they are ours
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
               spacing: str | None = None, every: int = 1, device="cpu", y=None, **kwargs) -> dict:
    """Run one sampler on images 0..num-1 of `seed` (the same x_T as `generate`) and keep x_t and the estimate
    x0_hat after every `every`-th step and after the last one. Returns {"t": [...], "x": [...], "x0_hat": [...],
    "x_T": x_T}, each list entry an [num x C x H x W] tensor; entry k holds x_{t_prev} and the x0_hat made at t."""
    spacing = default_spacing(sampler) if spacing is None else spacing
    timesteps = sampling_grid(denoiser, sampler, steps or denoiser.alpha_bar.shape[0], spacing)
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
