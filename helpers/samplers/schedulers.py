"""Any diffusers scheduler as a sampler of ours (issue 39): `generate(..., sampler="diffusers:UniPCMultistepScheduler")`
or `python -m helpers.sample --sampler diffusers:UniPCMultistepScheduler --steps 6 --scheduler-option solver_order=3`.
This is how the published samplers we do not write ourselves (UniPC, DEIS, SA-Solver, DPM-Solver++(3M), ...) enter
the comparisons: diffusers' code on our networks, not a rewrite.

The scheduler is built on the denoiser's own schedule (`trained_betas` from its alpha_bar) with eps-prediction (our
denoisers return eps whatever the network predicts), and its `timestep_spacing` set to the spacing of our grid; the
adapter checks that the scheduler's timesteps are the grid it was given, so that a row's grid means the same for
every sampler. Stochastic schedulers draw from the per-image generators (diffusers' `randn_tensor` takes a list).
NFE: one denoiser call per entry of `scheduler.timesteps` (Heun-type schedulers list a timestep twice).
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch


PREFIX = "diffusers:"
SPACINGS = ("linspace", "leading", "trailing")  # the spacings diffusers' schedulers share with ours


def scheduler_class(name: str):
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None or not name.endswith("Scheduler") or not hasattr(cls, "step"):
        raise ValueError(f"unknown diffusers scheduler {name!r}; e.g. DDIMScheduler, DPMSolverMultistepScheduler, "
                         "UniPCMultistepScheduler, DEISMultistepScheduler, SASolverScheduler, HeunDiscreteScheduler")
    return cls


def build(name: str, alpha_bar: torch.Tensor, num_steps: int, spacing: str, clip_x0: bool, **options):
    """The scheduler `name` on this alpha_bar, set to num_steps steps of `spacing` (options go to its config)."""
    if spacing not in SPACINGS:
        raise ValueError(f"--spacing {spacing}: diffusers' schedulers space timesteps as {', '.join(SPACINGS)} only")
    cls = scheduler_class(name)
    alpha_bar = alpha_bar.double()
    betas = 1 - alpha_bar / torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    accepted = inspect.signature(cls.__init__).parameters
    config = {"num_train_timesteps": len(alpha_bar), "trained_betas": betas.tolist(), "prediction_type": "epsilon",
              "timestep_spacing": spacing, **({"clip_sample": clip_x0} if "clip_sample" in accepted else {}),
              **({"set_alpha_to_one": True} if "set_alpha_to_one" in accepted else {})}
    ours = sorted(set(options) & (set(config) | {"beta_start", "beta_end", "beta_schedule", "rescale_betas_zero_snr"}))
    if ours:
        raise ValueError(f"--scheduler-option {ours[0]}: the adapter sets it from the model (its schedule, "
                         "eps-prediction, the grid's spacing, clipping); give the other options only")
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"--scheduler-option {unknown[0]}: {name} has no such option; its options: "
                         f"{', '.join(k for k in accepted if k not in ('self', 'kwargs'))}")
    scheduler = cls(**{k: v for k, v in {**config, **options}.items() if k in accepted})
    scheduler.set_timesteps(num_steps)
    return scheduler


def check(name: str, alpha_bar: torch.Tensor, timesteps: list[int], spacing: str, clip_x0: bool, **options):
    """The scheduler built for `timesteps`, refused (ValueError) if its own timesteps are not that grid."""
    sched = build(name, alpha_bar, len(timesteps), spacing, clip_x0, **options)
    theirs = list(dict.fromkeys(int(t) for t in sched.timesteps))
    if theirs != list(timesteps):
        raise ValueError(f"{name} with {len(timesteps)} {spacing} steps uses the timesteps {theirs[:6]}..., not our "
                         f"grid {list(timesteps)[:6]}...: try another --spacing or number of steps")
    return sched


@torch.no_grad()  # without it every call's activations stay alive for autograd: 10.6 GB at a batch of 250
def sample_diffusers(denoiser, x, timesteps, generator=None, callback: Callable | None = None, clip_x0: bool = False,
                     y=None, scheduler: str = "DDIMScheduler", spacing: str = "trailing", **options):
    """Sample with the diffusers scheduler `scheduler` on the grid `timesteps` (made with `spacing`); `options` go to
    its config (e.g. solver_order=3). The callback gets x and t after every call ("x0_hat" is the scheduler's
    pred_original_sample where it reports one)."""
    ts = [int(t) for t in timesteps]
    sched = check(scheduler, denoiser.alpha_bar, ts, spacing, clip_x0, **options)
    takes_generator = "generator" in inspect.signature(sched.step).parameters
    x = x * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        t_batch = torch.full((x.shape[0],), int(t), device=x.device, dtype=torch.long)
        eps = denoiser(sched.scale_model_input(x, t), t_batch, y)
        out = sched.step(eps, t, x, **({"generator": generator} if takes_generator else {}))
        x = out.prev_sample
        if callback is not None:
            callback({"x": x, "i": i, "t": int(t), "x0_hat": getattr(out, "pred_original_sample", None)})
    return x


def sampler(name: str) -> Callable:
    """The sampler function of a registry name "diffusers:ClassName"."""
    cls_name = name[len(PREFIX):]
    scheduler_class(cls_name)  # refuse an unknown one at once

    def sample(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None, **options):
        return sample_diffusers(denoiser, x, timesteps, generator, callback, clip_x0, y, scheduler=cls_name, **options)

    sample.__name__ = f"sample_{cls_name}"
    return sample


# The published samplers the benchmarks compare against, by the names the papers use, each one diffusers scheduler
# with its config (the registry lists them; `python -m helpers.sample --sampler unipc --steps 6 --spacing trailing`).
ESTABLISHED = {
    "dpmpp-3m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 3}),  # Lu et al. 2022b
    "sde-dpmpp-2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 2}),
    "sde-dpmpp-3m": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++", "solver_order": 3}),
    "unipc": ("UniPCMultistepScheduler", {"solver_order": 2, "solver_type": "bh2"}),  # Zhao et al. 2023, UniPC-2 (B(h) 2)
    # UniPC-3 with B(h) 2: diffusers' B(h) 1 (the paper's choice for few steps) returns NaN on the last step to sigma 0
    "unipc-3": ("UniPCMultistepScheduler", {"solver_order": 3, "solver_type": "bh2"}),
    "deis": ("DEISMultistepScheduler", {"solver_order": 3}),  # Zhang & Chen 2023, 3rd-order multistep (tAB3)
    "sa-solver": ("SASolverScheduler", {}),  # Xue et al. 2023: stochastic Adams, predictor and corrector of order 2
}


def established(name: str) -> Callable:
    """The sampler function of an ESTABLISHED name: its diffusers scheduler with its config; `spacing` is the grid's
    (the registry passes it). These schedulers have no clipping of x0_hat: clip_x0=True is refused."""
    cls_name, config = ESTABLISHED[name]

    def sample(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None,
               spacing: str = "trailing"):
        if clip_x0:
            raise ValueError(f"{name} ({cls_name}) does not clip x0_hat; sample it without --clip")
        return sample_diffusers(denoiser, x, timesteps, generator, callback, clip_x0, y, scheduler=cls_name,
                                spacing=spacing, **config)

    sample.__name__ = f"sample_{name.replace('-', '_')}"
    return sample


sample_dpmpp_3m, sample_sde_dpmpp_2m, sample_sde_dpmpp_3m, sample_unipc, sample_unipc_3, sample_deis, sample_sa_solver = (
    established(n) for n in ESTABLISHED)
