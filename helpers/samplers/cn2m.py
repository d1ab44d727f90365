"""Calibrated-noise DPM-Solver++(2M) ("cn-2m", notebook 07): how much noise to inject where, fitted once per model.

The idea. On the shipped MNIST model the probability-flow ODE itself is the bottleneck: every deterministic solver
levels off well above ancestral sampling (notebook 05), while with few steps the ODE solvers beat ancestral steps.
SDE-DPM-Solver++(2M) (samplers.sample_dpmpp_2m_sde) spans both with a noise share eta per step (0: the ODE solver;
1: the SDE solver, whose first-order step is DDPM's). cn-2m makes eta a function of the noise level: three bands of
the timestep (t >= 2T/3, T/3 <= t < 2T/3, t < T/3), one eta each, chosen by coordinate search to minimise a Fréchet
distance between generated and real *training* images on the features of a different network than the evaluation's
(the noise-aware classifier's pooled features at t = 0; the evaluation uses the MNIST-CNN and the test split). Because
eta depends on t, not on the step index, one calibration serves every number of steps.

    python -m helpers.calibrate --checkpoint checkpoints/ddpm-mnist --steps 6 --num 500
    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler cn-2m --steps 6 --out samples/cn-2m-6

The result is written to calibration.json in the checkpoint folder (found there by from_checkpoint, so that
`--sampler cn-2m` needs no other option), with its search history, cost and command.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from helpers.checkpoints import CALIBRATION
from helpers.checks import positive_int
from helpers.cli import ArgumentParser
from helpers.samplers import sample_dpmpp_2m_sde

NAME = "cn-2m"
BAND_EDGES = (2 / 3, 1 / 3)  # fractions of T: band 0 is t >= 2T/3 (high noise), band 2 is t < T/3 (low noise)
GRID = (0.0, 0.25, 0.5, 0.75, 1.0)  # the values of eta tried for each band
CALIBRATION_SEED = 1  # the evaluation draws seed 0; the calibration's images are others


def band_etas(eta_bands, timesteps, T: int) -> list[float]:
    """One eta per step: the eta of the band that holds the step's starting timestep."""
    if len(eta_bands) != len(BAND_EDGES) + 1:
        raise ValueError(f"eta_bands must hold {len(BAND_EDGES) + 1} values (high, middle, low noise), got {eta_bands}")
    return [float(eta_bands[sum(int(t) < edge * T for edge in BAND_EDGES)]) for t in timesteps]


@torch.no_grad()
def sample_cn_2m(denoiser, x, timesteps, generator=None, callback=None, clip_x0: bool = False, y=None,
                 eta_bands=None):
    """DPM-Solver++(2M) with a noise share per band of noise levels (module docstring). eta_bands: (high, middle,
    low); default: the denoiser's calibration (calibration.json of its checkpoint)."""
    if eta_bands is None:
        found = (getattr(denoiser, "calibration", None) or {}).get(NAME)
        if found is None:
            raise ValueError(f"the {NAME} sampler needs a calibration of this model: run `python -m helpers.calibrate "
                             "--checkpoint <its folder>`, or pass eta_bands=(high, middle, low)")
        eta_bands = found["eta_bands"]
    etas = band_etas(eta_bands, timesteps, denoiser.alpha_bar.shape[0])
    return sample_dpmpp_2m_sde(denoiser, x, timesteps, generator, callback, clip_x0, y, eta=etas)


@torch.no_grad()
def classifier_features(classifier, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """The noise-aware classifier's pooled features of clean images (t = 0): [N x 64]."""
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        out.append(classifier.features(x, torch.zeros(len(x), dtype=torch.long)).double().numpy())
    return np.concatenate(out)


def calibrate(denoiser, classifier, real: np.ndarray, steps: int, num: int, spacing: str = "trailing",
              sweeps: int = 2, batch_size: int = 250, log=print) -> dict:
    """Coordinate search over the three bands' eta on GRID, starting from the ODE (all 0): each candidate draws `num`
    images of CALIBRATION_SEED with `steps` steps and scores their Fréchet distance to `real` features."""
    from helpers.evaluation.metrics import frechet_distance
    from helpers.samplers import generate

    def score(bands) -> float:
        images = generate(denoiser, num, CALIBRATION_SEED, sampler=NAME, steps=steps, spacing=spacing,
                          batch_size=batch_size, eta_bands=tuple(bands))
        return frechet_distance(classifier_features(classifier, images), real)

    best = [0.0] * (len(BAND_EDGES) + 1)
    history = [{"eta_bands": list(best), "distance": score(best)}]
    best_score = history[0]["distance"]
    log(f"start (the ODE): {best_score:.3f}")
    for sweep in range(sweeps):
        changed = False
        for band in range(len(best)):
            for value in GRID:
                if value == best[band]:
                    continue
                trial = best.copy()
                trial[band] = value
                d = score(trial)
                history.append({"eta_bands": trial, "distance": d})
                log(f"sweep {sweep + 1}, band {band}: eta {trial} -> {d:.3f}")
                if d < best_score:
                    best, best_score, changed = trial, d, True
        if not changed:
            break
    return {"eta_bands": best, "distance": best_score, "history": history}


def save_calibration(path: Path, name: str, record: dict) -> None:
    """Store one sampler's calibration under `name` in the JSON file `path`, keeping the other samplers' entries."""
    from helpers.paths import write_atomic

    existing = json.loads(path.read_text()) if path.exists() else {}
    text = json.dumps({**existing, name: record}, indent=1) + "\n"
    write_atomic(Path(path), lambda tmp: Path(tmp).write_text(text))  # an interrupted write leaves the old file


def search_parser(prog: str, doc: str) -> ArgumentParser:
    """The options of a calibration that searches against a network's features (cn-2m, gn-2m)."""
    p = ArgumentParser(prog=prog, description=doc.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="the model's checkpoint folder")
    p.add_argument("--classifier", default=None, help="the checkpoint of the network whose features the search "
                   "compares (default: the shipped one)")
    p.add_argument("--num", type=positive_int, default=500, help="images per candidate")
    p.add_argument("--real", default="mnist:train", help="the real images the features are compared with")
    p.add_argument("--real-num", type=positive_int, default=10000)
    p.add_argument("--sweeps", type=positive_int, default=2)
    p.add_argument("--out", type=Path, default=None, help=f"where to write (default: CHECKPOINT/{CALIBRATION})")
    p.add_argument("--dry-run", action="store_true", help="search, print, write nothing")
    return p


def search_inputs(args, check=None):
    """(denoiser, the calibration file to write) of search_parser's args; raises ValueError, OSError or
    CheckpointError with the option at fault. `check(denoiser)` refuses options that do not fit the model before
    anything else is loaded."""
    from helpers.denoisers import from_checkpoint

    denoiser, _ = from_checkpoint(args.checkpoint)
    if check is not None:
        check(denoiser)
    out = args.out or args.checkpoint / CALIBRATION
    if not args.dry_run and (out.is_dir() or not out.parent.is_dir()):
        raise ValueError(f"--out {out}: expected a file name in an existing folder")
    return denoiser, out


def main(argv=None) -> int:
    from helpers.checkpoints import CheckpointError
    from helpers.datasets.images import DataUnavailableError, load_images
    from helpers.samplers.guidance import load_noisy_classifier

    argv = list(sys.argv[1:] if argv is None else argv)
    p = search_parser("python -m helpers.calibrate", __doc__)
    p.add_argument("--steps", type=positive_int, default=6, help="the number of steps the search samples with")
    p.add_argument("--spacing", default="trailing")
    args = p.parse_args(argv)
    command = "python -m helpers.calibrate " + " ".join(shlex.quote(a) for a in argv)
    try:
        denoiser, out = search_inputs(args)
        classifier, _ = load_noisy_classifier(args.classifier)
        real = classifier_features(classifier, load_images(args.real).images[:args.real_num])
        start = time.time()
        result = calibrate(denoiser, classifier, real, args.steps, args.num, args.spacing, args.sweeps)
    except (ValueError, OSError, CheckpointError, DataUnavailableError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = {**result, "band_edges_fraction_of_T": list(BAND_EDGES), "grid": list(GRID), "steps": args.steps,
              "spacing": args.spacing, "num": args.num, "seed": CALIBRATION_SEED, "real": args.real,
              "real_num": len(real), "features": "noisy-classifier pooled features at t = 0",
              "seconds": round(time.time() - start, 1), "nfe": len(result["history"]) * args.num * args.steps,
              "command": command}
    print(f"{NAME}: eta_bands {result['eta_bands']} (distance {result['distance']:.3f}, ODE "
          f"{result['history'][0]['distance']:.3f}) in {record['seconds']:.0f} s, {record['nfe']:,} network calls")
    if not args.dry_run:
        save_calibration(out, NAME, record)
        print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
