"""DPM-Solver++(2M) with its grid and its noise searched jointly, per number of steps ("gn-2m", issue 39).

The idea. On the shipped MNIST model the probability-flow ODE is the bottleneck (notebook 05: every deterministic
solver levels off well above ancestral sampling), yet with very few steps noise costs more than it repairs: at 4 NFE
SDE-DPM-Solver++(2M) is worse than its ODE, at 6 and 10 better. How much noise helps depends on where the steps are,
and where the steps should be depends on how much noise they carry. So gn-2m searches both at once, for each number
of steps K: the K - 1 inner timesteps of the grid (moved in log-SNR towards a neighbour) and one noise share eta per
step of SDE-DPM-Solver++(2M) (samplers.solvers.sample_dpmpp_2m_sde; eta 0 is the ODE step, 1 the SDE step), by
coordinate search from the better of the two established ends (the trailing grid at eta 0 and at eta 1).

The criterion never uses the evaluation's network: each candidate draws `num` images of CALIBRATION_SEED (every
candidate the same x_T and per-image noise streams; a step with eta 0 draws no noise, so candidates share their noise
draws only when the same steps are noisy) and is scored by the Fréchet distance between the features of those images and of real *training* digits, on a network
the benchmark never uses: by default the MNIST-CNN's twin (the evaluation network's architecture and recipe, trained
separately with seed 1: `make train-mnist-cnn-twin`); the evaluation uses the shipped MNIST-CNN (seed 0) and the
test digits. Networks of another kind rank samplers differently (the noise-aware classifier's features and the
autoencoder's latents prefer the ODE's samples at 5 and 6 NFE, where the MNIST-CNN prefers the SDE's: notebook 07),
so a search on them answers a different question; `--features noisy-classifier` (or `autoencoder`) runs it. The
chosen and the starting settings are scored again on VALIDATION_SEED (other images), which says how much of the
search's gain is selection noise.

Closest published work: AdaSDE (one learned noise coefficient per step, trained against an ODE teacher), Align Your
Steps (grids optimised for a given stochastic or deterministic solver), GITS and LD3 (grids searched or learned
against a teacher), our cn-2m (three noise bands on a fixed grid), EDM's S_churn and SA-Solver's tau (one noise level
for a range of noise levels). What this adds: the grid and the per-step noise chosen together, with no teacher and no
gradient, against a distance to real data, so it can go below what an ODE teacher reaches.

    python -m helpers.samplers.gn2m --checkpoint checkpoints/ddpm-mnist --steps 4 5 6 8 10 --num 500
    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler gn-2m --steps 4 --out samples/gn-2m-4
"""
from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import torch

from helpers.checks import positive_int
from helpers.samplers.cn2m import CALIBRATION_SEED, classifier_features, save_calibration, search_inputs, search_parser
from helpers.samplers.registry import default_spacing, image_generators, initial_noise, sample_shape
from helpers.samplers.solvers import sample_dpmpp_2m_sde
from helpers.schedules import get_timesteps

NAME = "gn-2m"
SPACING = "calibrated"  # the grid is the calibration's own (registry.sampling_grid)
ETAS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the noise shares tried for each step
MOVES = (1 / 3, 1 / 6)  # sweep s moves an inner timestep this share of the log-SNR gap to a neighbour (last: later)
VALIDATION_SEED = 2  # the evaluation draws seed 0, the search seed 1
FEATURES = ("digit-twin", "noisy-classifier", "autoencoder")  # the criterion's networks (featurizer)
VARIANTS = {"both": NAME, "noise": "gn-2m-noise", "grid": "gn-2m-grid"}  # --search: what moves, and its sampler
TWIN = "checkpoints/mnist-cnn-twin"


def calibrated_fit(denoiser, steps: int, name: str = NAME) -> dict:
    """The calibration of `steps` steps ({"timesteps", "eta", ...}); a clear error when there is none."""
    fits = (getattr(denoiser, "calibration", None) or {}).get(name, {}).get("fits", {})
    if str(steps) not in fits:
        search = {v: k for k, v in VARIANTS.items()}[name]
        raise ValueError(f"the {name} sampler has no calibration of {steps} steps for this model (calibrated: "
                         f"{sorted(int(k) for k in fits) or 'none'}): run `python -m helpers.samplers.gn2m "
                         f"--checkpoint <its folder> --steps {steps}"
                         + (search != "both") * f" --search {search}" + "`")
    return fits[str(steps)]


@torch.no_grad()
def sample_gn_2m(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None, eta=None,
                 name: str = NAME):
    """SDE-DPM-Solver++(2M) on the calibrated grid with the calibrated eta per step (module docstring); `eta` (one
    per step) overrides the calibration's, on any grid. `name`: the calibration read (an ablation's, VARIANTS)."""
    eta = calibrated_eta(denoiser, timesteps, name) if eta is None else eta
    return sample_dpmpp_2m_sde(denoiser, x, timesteps, generator, callback, clip_x0, y, eta=eta)


def calibrated_eta(denoiser, timesteps, name: str = NAME) -> list[float]:
    """The calibrated eta per step of `name` for these timesteps; refused in one line when there is no calibration
    of that many steps or it was made on another grid (the CLI asks before it writes anything)."""
    grid = [int(t) for t in timesteps]
    fit = calibrated_fit(denoiser, len(grid), name)
    if fit["timesteps"] != grid:
        raise ValueError(f"the {name} sampler's {len(grid)}-step noise is calibrated on the grid "
                         f"{fit['timesteps']}, not on {grid}: use --spacing {default_spacing(name)} (its default)")
    return fit["eta"]


def sample_gn_2m_noise(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None):
    """The ablation without the grid search: the trailing grid, the per-step noise searched on it."""
    return sample_gn_2m(denoiser, x, timesteps, generator, callback, clip_x0, y, name=VARIANTS["noise"])


def sample_gn_2m_grid(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None):
    """The ablation without the noise search: the grid searched with one eta on every step (the better start's)."""
    return sample_gn_2m(denoiser, x, timesteps, generator, callback, clip_x0, y, name=VARIANTS["grid"])


def log_snr(alpha_bar: torch.Tensor) -> torch.Tensor:
    """lambda_t = log(alpha_t / sigma_t) for t = 0..T-1 (decreasing in t)."""
    ab = alpha_bar.double()
    return 0.5 * (ab.log() - (1 - ab).log())


def moved(grid: list[int], i: int, share: float, lam: torch.Tensor) -> list[int] | None:
    """The grid with inner timestep grid[i] moved `share` of the log-SNR gap towards its neighbour (share > 0: the
    later, lower-noise one; the last inner timestep's later neighbour is t = 0); None if it lands on a neighbour or
    does not move."""
    later = grid[i + 1] if i + 1 < len(grid) else 0
    neighbour = later if share > 0 else grid[i - 1]
    target = lam[grid[i]] + abs(share) * (lam[neighbour] - lam[grid[i]])
    t = int((lam - target).abs().argmin())
    low = later if i + 1 < len(grid) else -1
    if not (low < t < grid[i - 1]) or t == grid[i]:
        return None
    return grid[:i] + [t] + grid[i + 1:]


def search(score, T: int, steps: int, lam: torch.Tensor, sweeps: int = 2, log=print, moves: str = "both") -> dict:
    """Coordinate search over the per-step etas (on ETAS) and the inner timesteps (MOVES) from the better start of
    (trailing, eta 0) and (trailing, eta 1); `moves` "noise" or "grid" searches only that (the ablations). `score(grid,
    etas)` is the criterion (lower is better). Returns the best {"timesteps", "eta", "distance"}, the two starts and
    the history of every candidate."""
    trailing = [int(t) for t in get_timesteps(T, steps, "trailing")]
    starts = {e: {"timesteps": trailing, "eta": [e] * (steps - 1) + [0.0]} for e in (0.0, 1.0)}
    history, seen = [], {}

    def scored(grid, etas):  # each setting scored once (a coordinate's old value comes round again)
        key = (tuple(grid), tuple(etas))
        if key not in seen:
            seen[key] = score(grid, etas)
            history.append({"timesteps": grid, "eta": etas, "distance": seen[key]})
        return seen[key]

    for e, start in starts.items():
        start["distance"] = scored(start["timesteps"], start["eta"])
        log(f"{steps} steps, start eta {e:g} on the trailing grid: {start['distance']:.3f}")
    best = dict(min(starts.values(), key=lambda s: s["distance"]))
    for sweep in range(sweeps):
        changed = False
        share = MOVES[min(sweep, len(MOVES) - 1)]
        for i in range(steps - 1 if moves != "grid" else 0):  # the last step returns x0_hat: its eta does nothing
            for value in ETAS:
                if value != best["eta"][i]:
                    trial = best["eta"][:i] + [value] + best["eta"][i + 1:]
                    d = scored(best["timesteps"], trial)
                    if d < best["distance"]:
                        best, changed = {**best, "eta": trial, "distance": d}, True
        for i in range(1, steps if moves != "noise" else 1):
            for direction in (1, -1):
                grid = moved(best["timesteps"], i, direction * share, lam)
                if grid is not None:
                    d = scored(grid, best["eta"])
                    if d < best["distance"]:
                        best, changed = {**best, "timesteps": grid, "distance": d}, True
        log(f"{steps} steps, sweep {sweep + 1}: {best['distance']:.3f}, grid {best['timesteps']}, eta {best['eta']}")
        if not changed and share == MOVES[-1]:  # nothing moved at the finest share
            break
    return {**best, "starts": {f"eta {e:g}": s for e, s in starts.items()}, "history": history}


def featurizer(name: str, folder=None):
    """(images -> [N x D] float64 features, a description for the record) of the criterion's network `name` (FEATURES)
    from `folder` (default: its shipped checkpoint)."""
    from helpers.checkpoints import CheckpointError
    from helpers.evaluation.digits import load_classifier
    from helpers.paths import ROOT
    from helpers.samplers.guidance import load_noisy_classifier

    if name == "noisy-classifier":
        classifier, _ = load_noisy_classifier(folder)
        return (lambda x: classifier_features(classifier, x)), "noisy-classifier pooled features at t = 0"
    if name == "autoencoder":
        from helpers.checkpoints import load_model

        ae, _ = load_model(folder or ROOT / "checkpoints" / "autoencoder-mnist")

        @torch.no_grad()
        def latents(x):
            return torch.cat([ae.encode(x[i:i + 500]).mean.flatten(1).double() for i in range(0, len(x), 500)]).numpy()
        return latents, "autoencoder-mnist's latent means (4 x 7 x 7)"
    folder = Path(folder) if folder is not None else ROOT / TWIN
    try:
        twin = load_classifier(folder)
    except CheckpointError as err:
        raise CheckpointError(f"the MNIST-CNN twin: {err} (train it with `make train-mnist-cnn-twin`)") from err

    @torch.no_grad()
    def features(x):
        return torch.cat([twin.features(x[i:i + 1000]).double() for i in range(0, len(x), 1000)]).numpy()
    return features, (f"MNIST-CNN twin ({folder.name}: the evaluation network's architecture and recipe, trained "
                      "separately with seed 1; its weights never judge the benchmark)")


def criterion(denoiser, featurize, real, num: int, seed: int, batch_size: int = 250):
    """score(grid, etas): the Fréchet distance between the features `featurize` gives `num` images of `seed` drawn
    with those settings and the real images' features `real`."""
    from helpers.evaluation.metrics import frechet_distance

    shape = sample_shape(denoiser)

    def score(grid, etas) -> float:
        images = []
        for start in range(0, num, batch_size):
            gens = image_generators(seed, range(start, min(num, start + batch_size)))
            x = initial_noise(gens, shape)
            images.append(sample_dpmpp_2m_sde(denoiser, x, torch.tensor(grid), gens, eta=etas))
        return frechet_distance(featurize(torch.cat(images)), real)
    return score


def main(argv=None) -> int:
    from helpers.checkpoints import CheckpointError
    from helpers.datasets.images import DataUnavailableError, load_images

    argv = list(sys.argv[1:] if argv is None else argv)
    p = search_parser("python -m helpers.samplers.gn2m", __doc__)
    p.add_argument("--steps", type=positive_int, nargs="+", default=[4, 5, 6, 8, 10],
                   help="the step counts to calibrate")
    p.add_argument("--features", choices=FEATURES, default=FEATURES[0],
                   help="the criterion's network (module docstring)")
    p.add_argument("--search", choices=tuple(VARIANTS), default="both",
                   help="what the search moves: both (gn-2m), noise only (gn-2m-noise) or grid only (gn-2m-grid)")
    args = p.parse_args(argv)
    command = "python -m helpers.samplers.gn2m " + " ".join(shlex.quote(a) for a in argv)

    def check(denoiser):
        if max(args.steps) > denoiser.alpha_bar.shape[0]:
            raise ValueError(f"--steps {max(args.steps)}: more than the model's T = {denoiser.alpha_bar.shape[0]} "
                             "timesteps")
    try:
        denoiser, out = search_inputs(args, check)
        featurize, described = featurizer(args.features, args.classifier)
        real = featurize(load_images(args.real).images[:args.real_num])
        T = denoiser.alpha_bar.shape[0]
    except (ValueError, OSError, CheckpointError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    lam = log_snr(denoiser.alpha_bar)
    search_score = criterion(denoiser, featurize, real, args.num, CALIBRATION_SEED)
    check_score = criterion(denoiser, featurize, real, args.num, VALIDATION_SEED)
    name = VARIANTS[args.search]
    for steps in args.steps:
        start = time.time()
        found = search(search_score, T, steps, lam, args.sweeps, moves=args.search)
        origin = min(found["starts"].values(), key=lambda s: s["distance"])
        validation = {"chosen": check_score(found["timesteps"], found["eta"]),
                      "start": check_score(origin["timesteps"], origin["eta"])}
        seconds = time.time() - start
        fit = {**found, "validation": validation, "seconds": round(seconds, 1),
               "nfe": (len(found["history"]) + 2) * args.num * steps, "num": args.num, "features": described,
               "command": command}  # per fit: step counts may come from different runs
        print(f"{name}-{steps}: distance {found['distance']:.3f} (start {origin['distance']:.3f}); on seed "
              f"{VALIDATION_SEED} {validation['chosen']:.3f} (start {validation['start']:.3f}); grid "
              f"{found['timesteps']}, eta {found['eta']}; {seconds:.0f} s, {fit['nfe']:,} network calls", flush=True)
        if not args.dry_run:  # written after every step count, so that an interrupted run keeps what it found
            record = json.loads(out.read_text()) if out.is_file() else {}
            fits = {**record.get(name, {}).get("fits", {}), str(steps): fit}
            save_calibration(out, name, {
                "fits": fits, "spacing": default_spacing(name), "search": args.search, "num": args.num,
                "seed": CALIBRATION_SEED,
                "validation_seed": VALIDATION_SEED, "etas_tried": list(ETAS), "moves": list(MOVES),
                "real": args.real, "real_num": len(real), "features": described,
                "command": command})
            print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
