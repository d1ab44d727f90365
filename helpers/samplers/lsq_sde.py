"""A stochastic multistep sampler fitted in closed form to the ancestral sampler's own paths ("lsq-sde", issue 39).

lsq-ms fits each step's coefficients to a many-step ODE solver, as IIA does (Zhang, Niwa & Kleijn, ICLR 2024). On
this model the ODE's own solution is the ceiling (notebook 05: every ODE solver plateaus above ancestral DDPM-1000),
so this sampler takes the ancestral sampler on all T = 1000 steps as its teacher, and fits the noise too. Along a
teacher path every fine step is x_{j-1} = c1_j x0_hat_j + c2_j x_j + s_j z_j (Ho et al. eq. 6-7); over one step of
the coarse grid (t_i -> t_{i+1}, the last one to the clean image) the part of the fresh noise that travels along
the linear chain of c2 factors to x_{t_{i+1}} is

    W_i = sum over the fine steps j of (product of c2 over the fine steps after j) s_j z_j,

a Gaussian with per-pixel variance v_i (the same sum of squares; it equals the coarse step's posterior variance, the
noise of respaced DDPM), independent of everything before t_i (for the last coarse step, the noise that reaches x_0).
With xi_i = W_i / sqrt(v_i) ~ N(0, I), each coarse step is

    x_{i+1} = a_i x_i + sum_k b_ik D_{i-k} + c_i + g_i xi_i,    D_j = x0_hat(x_j, t_j),

fitted step by step on the sampler's own states (as lsq-ms): (a_i, b_i, c_i) by least squares, over calibration
images and pixels, to the teacher's state at t_{i+1}, with the teacher's xi_i as a further column (it explains the
part of the step that is noise, so the other coefficients are not bent to it). A least-squares fit to a stochastic
teacher returns its conditional mean: it shrinks the samples (the variance the sampler cannot predict from its own
state is averaged away; the intercept c_i keeps the shrinkage from pulling the background towards 0). So the noise
scale g_i is not the regression's: it is chosen so that the sampler's per-pixel variance across images at t_{i+1}
equals the teacher's (moment matching, pooled over pixels), and the calibration's next states are built with it, on
the teacher's own xi_i. The last step adds no noise (it returns the clean image). At sampling time xi_i is drawn
fresh from each image's generator. `noise` picks the noise of an ablation on the same coefficients: "moment" (the
default), "fitted" (the regression's coefficient of xi_i), "brownian" (sqrt(v_i), respaced DDPM's) or "none".

Closest published work: IIA (Zhang, Niwa & Kleijn, ICLR 2024; fitted coefficients, ODE teacher, no noise); DDSS/GGDM
(Watson et al., ICLR 2022: a stochastic sampler's mean coefficients and variances learned by gradient through sample
quality); SA-Solver (Xue et al., NeurIPS 2023: stochastic Adams steps, analytic coefficients, a chosen noise level);
AdaSDE (Wang et al., NeurIPS 2025: one noise coefficient per step, learned by gradient against an ODE teacher);
Analytic-DPM (Bao et al., ICLR 2022: the closed-form optimal reverse variance of one step); ER-SDE-Solver (analytic
noise families). What this adds: the multistep coefficients fitted in closed form to the ancestral sampler on the same
Brownian path, and each step's noise set by matching that teacher's marginal variance on the sampler's own states,
with no gradient and no feature network. The coupling of a coarse and a fine path through summed Brownian increments
is multilevel Monte Carlo's.

Measured (issue 39, `make bench-samplers`, 6 NFE, five sets of 1000): it does not work. FID 262.3 [247.7, 276.8]
against SDE-DPM-Solver++(2M)'s 39.8 [30.7, 48.8]: a least-squares fit to a stochastic teacher is a conditional mean,
and moment-matched isotropic noise does not give back the structure it averages away; the samples are blurred
digits with grey halos (the last step alone, an average of the last three clean-image estimates, is much of it:
tools/probe/lsq_sde_blur.py).

    python -m helpers.samplers.lsq_sde --checkpoint checkpoints/ddpm-mnist --steps 4 5 6 8 10 --num 256
    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler lsq-sde --steps 6 --spacing trailing --out samples/lsq-sde-6
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import torch

from helpers.diffusion import alpha_bar_at, noise_like, posterior_step, predict_x0
from helpers.samplers.cn2m import CALIBRATION_SEED, save_calibration
from helpers.samplers.lsq_ms import HISTORY, SPACING, check_fit_options, columns, combine, fit_parser, grid_of
from helpers.samplers.registry import image_generators, initial_noise
from helpers.samplers.solvers import next_timesteps

NAME = "lsq-sde"


def fine_step(alpha_bar: torch.Tensor, t: int, s: int) -> tuple[float, float, float]:
    """(c1, c2, sd) of the ancestral step t -> s (Ho et al. eq. 7, respaced): x_s = c1 x0_hat + c2 x_t + sd z."""
    ab_t, ab_s = float(alpha_bar_at(alpha_bar, t)), float(alpha_bar_at(alpha_bar, s))
    beta = 1 - ab_t / ab_s
    c1, c2 = ab_s**0.5 * beta / (1 - ab_t), (1 - beta) ** 0.5 * (1 - ab_s) / (1 - ab_t)
    return c1, c2, (beta * (1 - ab_s) / (1 - ab_t)) ** 0.5 if s >= 0 else 0.0


@torch.no_grad()
def teacher_paths(denoiser, x_T: torch.Tensor, grids: dict, generators, y=None):
    """Ancestral DDPM on all T timesteps from x_T (image i's noise from generators[i]), once for several coarse grids
    {name: timesteps}. Returns the teacher's states at every grid's later timesteps and at -1 ({t: [N x ...]}), and
    for each grid its normalised Brownian aggregates xi_i ([N x ...], one per coarse step) and their scales sqrt(v_i)
    (module docstring)."""
    T = denoiser.alpha_bar.shape[0]
    targets = {name: {s for _, s in next_timesteps(grid)} for name, grid in grids.items()}
    wanted = set().union(*targets.values())
    states, xis, scales = {}, {name: [] for name in grids}, {name: [] for name in grids}
    acc = {name: (torch.zeros_like(x_T), 0.0) for name in grids}
    x = x_T
    for t in range(T - 1, -1, -1):
        s = t - 1
        c1, c2, sd = fine_step(denoiser.alpha_bar, t, s)
        x_next, x0_hat = posterior_step(denoiser, x, t, s, y, clip_x0=True, generator=generators)
        z = (x_next - c1 * x0_hat - c2 * x) / sd if sd > 0 else torch.zeros_like(x)  # the noise this step drew
        x = x_next
        if s in wanted:
            states[s] = x.clone()
        for name in grids:
            w, v = acc[name]
            if s >= 0:  # the last step (to -1) returns x0_hat alone (c2 = 0): its aggregate is the noise in x_0
                w, v = c2 * w + sd * z, c2 * c2 * v + sd * sd
            if s in targets[name]:
                xis[name].append(w / v**0.5 if v > 0 else torch.zeros_like(w))
                scales[name].append(v**0.5)
                w, v = torch.zeros_like(x), 0.0
            acc[name] = (w, v)
    return states, xis, scales


NOISES = ("moment", "fitted", "brownian", "none")


@torch.no_grad()
def fit(denoiser, x_T, states, xis, timesteps, history: int = HISTORY, y=None, scales=None) -> dict:
    """Step-by-step fit on the sampler's own states with the teacher's xi_i (module docstring). Returns per step the
    coefficients [a, b_0, ..., c, g] with the moment-matched g; and the regression's g ("fitted"), sqrt(v_i)
    ("brownian", from `scales`), and the RMS distance of the calibration states to the teacher's after each step."""
    x, estimates, coefficients, fitted, distance = x_T, [], [], [], []
    steps = next_timesteps(timesteps)
    for i, (t, t_next) in enumerate(steps):
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0=False)
        estimates.append(x0_hat)
        terms = columns(x, estimates, history) + [torch.ones_like(x), xis[i]]
        A = torch.stack([term.flatten().double() for term in terms], 1)  # (N * pixels, terms)
        target = states[t_next]
        c = torch.linalg.lstsq(A, target.flatten().double().unsqueeze(1)).solution.squeeze(1).tolist()
        mean = combine(terms[:-1], c[:-1])
        gap = float((target.double().var(0) - mean.double().var(0)).mean())  # per-pixel variance across images, pooled
        g = max(gap, 0.0) ** 0.5 if t_next >= 0 else 0.0
        coefficients.append(c[:-1] + [g])
        fitted.append(c[-1])
        x = mean + g * xis[i]
        distance.append(float((x - target).pow(2).mean().sqrt()))
    return {"coefficients": coefficients, "fitted": fitted, "brownian": list(scales or []), "distance": distance}


@torch.no_grad()
def sample_lsq_sde(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None,
                   coefficients=None, noise: str = "moment"):
    """x_{i+1} = a_i x_i + sum_k b_ik D_{i-k} + c_i + g_i xi_i with fitted coefficients and xi_i ~ N(0, I) from
    each image's generator; one network call per step. coefficients: one list per step, [a, b..., c, g] (default:
    the denoiser's calibration for this grid); `noise` replaces g by another of the calibration's noises (an
    ablation: "fitted", "brownian" or "none"; module docstring)."""
    steps = next_timesteps(timesteps)
    if clip_x0:
        raise ValueError(f"{NAME} is fitted on unclipped clean-image estimates; sample it with clip_x0=False (--no-clip)")
    if noise not in NOISES:
        raise ValueError(f"noise must be one of {', '.join(NOISES)}, got {noise!r}")
    if coefficients is None:
        fitted = calibration_for(denoiser, steps)
        coefficients = fitted["coefficients"]
        if noise != "moment":
            coefficients = [c[:-1] + [0.0 if noise == "none" or t_next < 0 else fitted[noise][i]]
                            for i, (c, (_, t_next)) in enumerate(zip(coefficients, steps))]
    elif noise != "moment":
        raise ValueError(f"noise={noise!r} reads the calibration's noises; it cannot be combined with given coefficients")
    if len(coefficients) != len(steps):
        raise ValueError(f"got coefficients for {len(coefficients)} steps, the grid has {len(steps)}")
    estimates = []
    for i, (t, t_next) in enumerate(steps):
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0)
        estimates.append(x0_hat)
        terms = columns(x, estimates, len(coefficients[i]) - 3) + [torch.ones_like(x), noise_like(x, generator)]
        x = combine(terms, coefficients[i])
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


def calibration_for(denoiser, steps) -> dict:
    """The denoiser's shipped lsq-sde fit for these (t, t_next) steps, or one line on what is missing."""
    fits = (getattr(denoiser, "calibration", None) or {}).get(NAME, {}).get("fits", {})
    fitted = fits.get(str(len(steps)))
    if fitted is not None and fitted["timesteps"] != [t for t, _ in steps]:
        raise ValueError(f"the {NAME} sampler's {len(steps)}-step coefficients are fitted on the {SPACING} grid "
                         f"{fitted['timesteps'][:4]}..., not on {[t for t, _ in steps][:4]}...: add --spacing {SPACING}")
    if fitted is None:
        raise ValueError(f"the {NAME} sampler has no coefficients for these {len(steps)} timesteps of this model "
                         f"(calibrated: {sorted(int(k) for k in fits) or 'none'} steps, {SPACING} spacing): run "
                         f"`python -m helpers.samplers.lsq_sde --checkpoint <its folder> --steps {len(steps)}`")
    return fitted


def calibrate(denoiser, num: int, step_counts, history: int = HISTORY, batch_size: int = 64, log=print) -> dict:
    """Teacher paths of `num` images of CALIBRATION_SEED (one ancestral run serves every grid), then one
    least-squares fit per number of steps."""
    start = time.time()
    grids = {n: grid_of(denoiser, n) for n in step_counts}
    x_T = initial_noise(image_generators(CALIBRATION_SEED, range(num)), denoiser.sample_shape)
    parts = [teacher_paths(denoiser, x_T[s:s + batch_size], grids,
                           image_generators(CALIBRATION_SEED + 1, range(s, min(num, s + batch_size))))
             for s in range(0, num, batch_size)]
    teacher_seconds = time.time() - start
    log(f"teacher: {num} ancestral paths of {denoiser.alpha_bar.shape[0]} steps in {teacher_seconds:.0f} s")
    states = {t: torch.cat([p[0][t] for p in parts]) for t in parts[0][0]}
    fits = {}
    for n, grid in grids.items():
        xis = [torch.cat([p[1][n][i] for p in parts]) for i in range(len(parts[0][1][n]))]
        result = fit(denoiser, x_T, states, xis, grid, history, scales=parts[0][2][n])
        fits[str(n)] = {"timesteps": grid, **result}
        log(f"{n} steps: noise g per step, moment-matched {[round(c[-1], 3) for c in result['coefficients']]}, "
            f"regression {[round(v, 3) for v in result['fitted']]}, respaced DDPM's {[round(v, 3) for v in result['brownian']]}; "
            f"distance to the teacher {[round(r, 4) for r in result['distance']]}")
    return {"fits": fits, "teacher_seconds": round(teacher_seconds, 1), "seconds": round(time.time() - start, 1)}


def main(argv=None) -> int:
    from helpers.checkpoints import CheckpointError
    from helpers.denoisers import from_checkpoint

    argv = list(sys.argv[1:] if argv is None else argv)
    args = fit_parser("python -m helpers.samplers.lsq_sde", __doc__, [4, 5, 6, 8, 10], "teacher paths").parse_args(argv)
    command = "python -m helpers.samplers.lsq_sde " + " ".join(shlex.quote(a) for a in argv)
    try:
        denoiser, _ = from_checkpoint(args.checkpoint)
        out = check_fit_options(args, argv, denoiser.alpha_bar.shape[0])
        result = calibrate(denoiser, args.num, sorted(set(args.steps)), args.history, args.batch_size)
    except (ValueError, OSError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = {**result, "num": args.num, "seed": CALIBRATION_SEED, "history": args.history, "spacing": SPACING,
              "teacher": "ancestral DDPM on all T timesteps, clipped x0_hat, from the same x_T and Brownian path",
              "coefficients": "per step [a, b_0, ..., c, g]: state, clean-image estimates newest first, intercept, "
                              "moment-matched noise",
              "command": command}
    save_calibration(out, NAME, record)
    print(f"{NAME}: fitted {sorted(int(k) for k in result['fits'])} steps on {args.num} paths in {record['seconds']:.0f} s "
          f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
