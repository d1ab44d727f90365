"""A multistep sampler whose coefficients are fitted in closed form to a many-step teacher ("lsq-ms", notebook 07).

Every step of DDIM and of DPM-Solver++(2M) is linear in the current state and the network's recent clean-image
estimates: x_{i+1} = a_i x_i + b_i0 D_i + b_i1 D_{i-1} + ..., with D_j = x0_hat(x_j, t_j) and coefficients fixed by the
schedule (DDIM: a = sigma_{i+1} / sigma_i, b_0 = alpha_{i+1} - a alpha_i). Here the coefficients of each step are
instead the least-squares fit that brings the state as close as possible to where a many-step solver of the same ODE
(the teacher: DPM-Solver++(2M) on all T timesteps) is at t_{i+1}, starting from the same x_T:

    (a_i, b_i0, ..., b_i,K-1) = argmin sum over calibration images and pixels of
                                ||a x_i + sum_k b_k D_{i-k} - x_teacher(t_{i+1})||^2,

fitted step by step on the sampler's own states (so that step i corrects the errors of the fitted steps before it),
with no gradient through the network: one lstsq of a few columns per step. The last step targets the teacher's
clean image. The calibration costs one teacher run on the calibration images plus one pass of the sampler; it
uses no feature network, and the coefficients are tied to the grid they were fitted on (one set per number of steps).

    python -m helpers.multistep_fit --checkpoint checkpoints/ddpm-mnist --steps 4 5 6 8 10 15 20 --num 256
    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler lsq-ms --steps 6 --out samples/lsq-6   # its grid: trailing
"""
from __future__ import annotations

import math
import shlex
import sys
import time
from pathlib import Path

import torch

from helpers.checkpoints import CALIBRATION
from helpers.samplers.cn2m import CALIBRATION_SEED, save_calibration
from helpers.checks import positive_int
from helpers.cli import ArgumentParser
from helpers.diffusion import alpha_bar_at, predict_x0
from helpers.samplers import image_generators, initial_noise, next_timesteps, sample_dpmpp_2m
from helpers.schedules import get_timesteps

NAME = "lsq-ms"
HISTORY = 3  # clean-image estimates per step: D_i, D_{i-1}, D_{i-2}
SPACING = "trailing"


def columns(x: torch.Tensor, estimates: list[torch.Tensor], history: int) -> list[torch.Tensor]:
    """The terms of one step: the state and the last `history` clean-image estimates, newest first."""
    return [x] + estimates[::-1][:history]


def combine(terms: list[torch.Tensor], coefficients) -> torch.Tensor:
    out = torch.zeros_like(terms[0])
    for c, term in zip(coefficients, terms):
        out = out + float(c) * term
    return out


@torch.no_grad()
def sample_lsq_ms(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None,
                  coefficients=None):
    """x_{i+1} = a_i x_i + sum_k b_ik D_{i-k} with fitted coefficients (module docstring); one network call per step.
    coefficients: one list per step; default: the denoiser's calibration for this grid. `generator` is unused."""
    steps = next_timesteps(timesteps)
    if coefficients is None:
        fitted = (getattr(denoiser, "calibration", None) or {}).get(NAME, {}).get("fits", {}).get(str(len(steps)))
        if fitted is not None and fitted["timesteps"] != [t for t, _ in steps]:
            raise ValueError(f"the {NAME} sampler's {len(steps)}-step coefficients are fitted on the {SPACING} grid "
                             f"{fitted['timesteps'][:4]}..., not on {[t for t, _ in steps][:4]}...: add --spacing {SPACING}")
        if fitted is None:
            have = sorted(int(k) for k in (getattr(denoiser, "calibration", None) or {}).get(NAME, {}).get("fits", {}))
            raise ValueError(f"the {NAME} sampler has no coefficients for these {len(steps)} timesteps of this model "
                             f"(calibrated: {have or 'none'} steps, {SPACING} spacing): run `python -m "
                             f"helpers.multistep_fit --checkpoint <its folder> --steps {len(steps)}`")
        coefficients = fitted["coefficients"]
    if len(coefficients) != len(steps):
        raise ValueError(f"got coefficients for {len(coefficients)} steps, the grid has {len(steps)}")
    estimates = []
    for i, (t, _) in enumerate(steps):
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0)
        estimates.append(x0_hat)
        terms = columns(x, estimates, len(coefficients[i]) - 1)
        x = combine(terms, coefficients[i])
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": x0_hat})
    return x


@torch.no_grad()
def teacher_states(denoiser, x_T: torch.Tensor, wanted: set[int], y=None, teacher_steps: int | None = None
                   ) -> dict[int, torch.Tensor]:
    """The teacher's states at the timesteps in `wanted` (-1: its final image): DPM-Solver++(2M) from x_T on
    `teacher_steps` linspace timesteps (default: all T) plus the wanted ones (x_T itself is the state at T - 1)."""
    T = denoiser.alpha_bar.shape[0]
    grid = sorted({int(t) for t in get_timesteps(T, teacher_steps or T, "linspace")} | {t for t in wanted if t >= 0}
                  | {T - 1}, reverse=True)
    states = {T - 1: x_T.clone()} if T - 1 in wanted else {}

    def keep(info):
        t_next = grid[info["i"] + 1] if info["i"] + 1 < len(grid) else -1
        if t_next in wanted and t_next >= 0:
            states[t_next] = info["x"].clone()

    states[-1] = sample_dpmpp_2m(denoiser, x_T, grid, callback=keep, y=y)
    return states


@torch.no_grad()
def fit(denoiser, x_T: torch.Tensor, states: dict[int, torch.Tensor], timesteps, history: int = HISTORY,
        y=None) -> tuple[list[list[float]], list[float]]:
    """Step-by-step least squares on the sampler's own states (module docstring). Returns the coefficients of each
    step and the RMS distance to the teacher after each step."""
    steps = next_timesteps(timesteps)
    x, estimates, coefficients, rms = x_T, [], [], []
    for t, t_next in steps:
        _, x0_hat = predict_x0(denoiser, x, t, y, clip_x0=False)
        estimates.append(x0_hat)
        terms = columns(x, estimates, history)
        A = torch.stack([term.flatten().double() for term in terms], 1)  # (N * pixels, terms)
        target = states[t_next].flatten().double()
        c = torch.linalg.lstsq(A, target.unsqueeze(1)).solution.squeeze(1)
        coefficients.append([float(v) for v in c])
        x = combine(terms, coefficients[-1])
        rms.append(float((x - states[t_next]).pow(2).mean().sqrt()))
    return coefficients, rms


def trajectories(denoiser, num: int, wanted: set[int], batch_size: int = 64, teacher_steps: int | None = None,
                 seed: int = CALIBRATION_SEED) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """x_T of images 0..num-1 of `seed` (the calibration's by default) and the teacher's states at the `wanted`
    timesteps (-1: its final images), computed in batches to bound memory."""
    x_T = initial_noise(image_generators(seed, range(num)), denoiser.sample_shape)
    states = {}
    for s in range(0, num, batch_size):
        for t, v in teacher_states(denoiser, x_T[s:s + batch_size], wanted, teacher_steps=teacher_steps).items():
            states.setdefault(t, []).append(v)
    return x_T, {t: torch.cat(v) for t, v in states.items()}


def grid_of(denoiser, steps: int) -> list[int]:
    """The timesteps lsq-ms is fitted on for `steps` network calls."""
    return [int(t) for t in get_timesteps(denoiser.alpha_bar.shape[0], steps, SPACING)]


def calibrate(denoiser, num: int, step_counts, history: int = HISTORY, batch_size: int = 64, log=print,
              teacher_steps: int | None = None) -> dict:
    """Teacher trajectories of `num` images of CALIBRATION_SEED, then one least-squares fit per number of steps."""
    grids = {n: grid_of(denoiser, n) for n in step_counts}
    start = time.time()
    x_T, states = trajectories(denoiser, num, {t for g in grids.values() for t in g} | {-1}, batch_size, teacher_steps)
    teacher_seconds = time.time() - start
    log(f"teacher: {num} trajectories of {teacher_steps or denoiser.alpha_bar.shape[0]} steps in {teacher_seconds:.0f} s")
    fits = {}
    for n, grid in grids.items():
        start = time.time()
        coefficients, rms = fit(denoiser, x_T, states, grid, history)
        fits[str(n)] = {"timesteps": grid, "coefficients": coefficients, "rms_to_teacher": rms,
                        "seconds": round(time.time() - start, 1)}
        log(f"{n} steps: RMS to the teacher after each step {[round(r, 4) for r in rms]}")
    return {"fits": fits, "teacher_seconds": round(teacher_seconds, 1)}


@torch.no_grad()
def distance_to_teacher(denoiser, x_T: torch.Tensor, states: dict[int, torch.Tensor], timesteps, coefficients
                        ) -> list[float]:
    """RMS per pixel between the state after each step of lsq-ms's form with these coefficients (fitted, or a fixed
    solver's from solver_coefficients) and the teacher's state at the same timestep (-1: its final image)."""
    after = []
    sample_lsq_ms(denoiser, x_T, timesteps, coefficients=coefficients, callback=lambda info: after.append(info["x"]))
    return [float((x - states[s]).pow(2).mean().sqrt()) for x, (_, s) in zip(after, next_timesteps(timesteps))]


def solver_coefficients(denoiser, timesteps, solver: str) -> list[list[float]]:
    """The coefficients (a_i, b_i0[, b_i1]) with which DDIM (eta = 0) or DPM-Solver++(2M) take each step of
    `timesteps` in lsq-ms's form, the fixed rules that the fit replaces: a = sigma_{i+1} / sigma_i; DDIM:
    b_0 = alpha_{i+1} - a alpha_i; DPM-Solver++(2M): b_0 = -alpha_{i+1} expm1(-h) (1 + 1/(2r)), b_1 = alpha_{i+1}
    expm1(-h) / (2r) with h = lambda_{i+1} - lambda_i and r = h_{i-1} / h (first order on the first step); the last
    step returns D_i."""
    if solver not in ("ddim", "dpmpp-2m"):
        raise ValueError(f"solver must be 'ddim' or 'dpmpp-2m', got {solver!r}")
    out, h_prev = [], None
    for t, s in next_timesteps(timesteps):
        if s < 0:
            out.append([0.0, 1.0])
            continue
        ab_t, ab_s = float(alpha_bar_at(denoiser.alpha_bar, t)), float(alpha_bar_at(denoiser.alpha_bar, s))
        (alpha_t, sigma_t), (alpha_s, sigma_s) = (ab_t**0.5, (1 - ab_t) ** 0.5), (ab_s**0.5, (1 - ab_s) ** 0.5)
        a = sigma_s / sigma_t
        h = math.log(alpha_s / sigma_s) - math.log(alpha_t / sigma_t)
        if solver == "ddim" or h_prev is None:
            out.append([a, alpha_s - a * alpha_t])  # = -alpha_s expm1(-h): DPM-Solver++(1) is DDIM
        else:
            r = h_prev / h
            out.append([a, -alpha_s * math.expm1(-h) * (1 + 1 / (2 * r)), alpha_s * math.expm1(-h) / (2 * r)])
        h_prev = h
    return out


def fit_parser(prog: str, doc: str, steps, what: str) -> ArgumentParser:
    """The command line of a fitted sampler's calibration (lsq-ms here, lsq-sde): checkpoint, step counts, images,
    history, batch size and the calibration file."""
    p = ArgumentParser(prog=prog, description=doc.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="the model's checkpoint folder")
    p.add_argument("--steps", type=positive_int, nargs="+", default=list(steps))
    p.add_argument("--num", type=positive_int, default=256, help=f"calibration images ({what})")
    p.add_argument("--history", type=positive_int, default=HISTORY, help="clean-image estimates per step")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--out", type=Path, default=None, help=f"where to write (default: CHECKPOINT/{CALIBRATION})")
    return p


def check_fit_options(args, argv, T: int) -> Path:
    """Refuse step counts above T, a --history (when given) above the largest step count, and a calibration file
    that cannot be written, before any work; returns the calibration file."""
    too_many = [n for n in args.steps if n > T]
    if too_many:
        raise ValueError(f"--steps {too_many[0]} is more than the model's T = {T} timesteps")
    if "--history" in argv and args.history > max(args.steps):
        raise ValueError(f"--history {args.history}: a step can use at most the estimates of the steps before it, "
                         f"so at most {max(args.steps)} with --steps up to {max(args.steps)}")
    out = args.out or args.checkpoint / CALIBRATION
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give the calibration file's name (e.g. {out / CALIBRATION})")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: the folder {out.parent} does not exist")
    return out


def main(argv=None) -> int:
    from helpers.checkpoints import CheckpointError
    from helpers.denoisers import from_checkpoint

    argv = list(sys.argv[1:] if argv is None else argv)
    p = fit_parser("python -m helpers.multistep_fit", __doc__, [4, 5, 6, 8, 10, 15, 20], "teacher trajectories")
    args = p.parse_args(argv)
    command = "python -m helpers.multistep_fit " + " ".join(shlex.quote(a) for a in argv)
    try:
        denoiser, _ = from_checkpoint(args.checkpoint)
        out = check_fit_options(args, argv, denoiser.alpha_bar.shape[0])
        start = time.time()
        result = calibrate(denoiser, args.num, sorted(set(args.steps)), args.history, args.batch_size)
    except (ValueError, OSError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = {**result, "num": args.num, "seed": CALIBRATION_SEED, "history": args.history, "spacing": SPACING,
              "teacher": "DPM-Solver++(2M) on all T timesteps, from the same x_T", "seconds": round(time.time() - start, 1),
              "command": command}
    save_calibration(out, NAME, record)
    print(f"{NAME}: fitted {sorted(int(k) for k in result['fits'])} steps on {args.num} trajectories in "
          f"{record['seconds']:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
