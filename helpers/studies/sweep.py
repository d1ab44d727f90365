"""The schedule x loss experiments of notebook 03: 4 beta schedules x 3 losses, plus the simplified objective against
the weighted variational bound, all with one shared CPU-sized budget (same model, steps, batch and seed).

    python -m helpers.sweep train                        # every run, in order; resumes a run that was stopped
    python -m helpers.sweep train --only cosine-l1       # one run
    python -m helpers.sweep train --only cosine-l1-seed1 # any run with another training seed (a replicate)
    python -m helpers.sweep evaluate                     # FID/KID of every trained run, stored in its model card
    python -m helpers.sweep train --budget long          # the same grid at 4x the steps, under checkpoints/sweep-long

Each run is an ordinary `python -m helpers.train` checkpoint under checkpoints/sweep/NAME; the command of each run
is in its model card. Evaluation draws N images with DDIM (eta = 0) from the EMA weights, the same noise for every
run, and scores them against the MNIST test split with the MNIST-CNN features.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from helpers.checks import positive_int
from helpers.cli import INTERRUPTED, ArgumentParser
from helpers.evaluation.metrics import EVAL_N
from helpers.paths import ROOT

SWEEP_DIR = ROOT / "checkpoints" / "sweep"
SCHEDULE_NAMES = ("linear", "cosine", "quadratic", "sigmoid")
LOSS_NAMES = ("l2", "l1", "huber")
# The shared budget: a 0.69M-parameter U-Net, 1500 steps of batch 64 (96k images, 1.6 epochs of MNIST's 60k).
BUDGET = {"base-channels": 16, "channel-mults": "1,2,4", "batch-size": 64, "steps": 1500, "lr": 1e-3,
          "seed": 0, "checkpoint-every": 500}
# The larger budget (issue 13: at 1500 steps no run draws digits yet): the same runs trained 4x longer, from scratch
# (the learning rate is constant after warm-up, so a stopped run resumes, and a budget can be extended, exactly).
BUDGETS = {"short": BUDGET, "long": {**BUDGET, "steps": 6000}}
FOLDERS = {"short": SWEEP_DIR, "long": ROOT / "checkpoints" / "sweep-long"}
# Evaluation: N images, DDIM eta = 0 with 50 steps, seed 0 (the same x_T for every run).
EVAL = {"num": EVAL_N, "sampler": "ddim", "steps": 50, "seed": 0}


@dataclass(frozen=True)
class Run:
    schedule: str
    loss: str
    weighting: str = "none"
    seed: int = 0  # the training seed (initial weights, batches, t and noise)

    @property
    def name(self) -> str:
        return (f"{self.schedule}-{self.loss}" + ("" if self.weighting == "none" else f"-{self.weighting}")
                + ("" if self.seed == 0 else f"-seed{self.seed}"))

    def train_args(self, out: Path, budget: dict = BUDGET) -> list[str]:
        args = ["--dataset", "mnist", "--out", str(out), "--schedule", self.schedule, "--loss", self.loss,
                "--weighting", self.weighting]
        for key, value in {**budget, "seed": self.seed}.items():
            args += [f"--{key}", str(value)]
        return args


# The 4 x 3 grid, L_simple against the VLB weighting, and one replicate with another training seed (how much of a
# difference between runs is the luck of one training run).
RUNS = (tuple(Run(s, l) for s in SCHEDULE_NAMES for l in LOSS_NAMES)
        + (Run("linear", "l2", "vlb"), Run("linear", "l2", seed=1)))


def get_run(name: str) -> Run:
    """A run of the grid by name, or a replicate of one with another training seed ("cosine-l1-seed2")."""
    for run in RUNS:
        if run.name == name:
            return run
    base, _, seed = name.rpartition("-seed")
    if base and seed.isdigit() and int(seed) > 0:
        for run in RUNS:
            if run.name == base and run.seed == 0:
                return Run(run.schedule, run.loss, run.weighting, int(seed))
    raise ValueError(f"unknown run {name!r}; known runs: {', '.join(r.name for r in RUNS)} "
                     f"(add -seedK, K >= 1, for a replicate with another training seed)")


def runs_in(folder: Path) -> list[Run]:
    """The grid's runs, then the replicates (NAME-seedK) that `folder` holds a checkpoint of."""
    replicates = sorted({p.parent.name for p in Path(folder).glob("*-seed*/model_card.json")} - {r.name for r in RUNS})
    return [*RUNS, *(get_run(n) for n in replicates)]


class Stopped(RuntimeError):
    """A run stopped by SIGTERM after it saved its state (not a failure: the same command resumes it)."""


def train_run(run: Run, folder: Path = SWEEP_DIR, budget: dict = BUDGET) -> dict:
    """Train (or resume, or leave alone if finished) one run; returns its model card."""
    from helpers import checkpoints as ckpt
    from helpers.training.ddpm import main as train_main

    out = Path(folder) / run.name
    if ckpt.has_checkpoint(out):
        card = ckpt.read_card(out)
        if card["step"] >= int(budget["steps"]):
            return card
        argv = ["--out", str(out), "--resume", "--steps", str(budget["steps"])]
    else:
        argv = run.train_args(out, budget)
    status = train_main(argv)
    if status == INTERRUPTED:
        raise Stopped(f"{run.name} stopped by SIGTERM at step {ckpt.read_card(out)['step']}, saved; the same command "
                      f"continues it")
    if status != 0:
        raise RuntimeError(f"training {run.name} failed; see the error above")
    return ckpt.read_card(out)


def draw(folder: Path, num: int, steps: int = EVAL["steps"], seed: int = EVAL["seed"], device="cpu"):
    """`num` EMA samples of one run with the evaluation sampler: image i starts from the same x_T in every run."""
    from helpers.denoisers import from_checkpoint
    from helpers.samplers import generate

    denoiser, _ = from_checkpoint(folder, device=device)
    return generate(denoiser, num, seed, sampler=EVAL["sampler"], steps=steps, batch_size=250,
                    device=device)


def evaluate_run(folder: Path, real_feats=None, num: int = EVAL["num"], steps: int = EVAL["steps"],
                 seed: int = EVAL["seed"], device="cpu") -> dict:
    """FID (with its 95% bootstrap interval) and KID (MNIST-CNN features, N = num) of one checkpoint's EMA samples,
    the share of samples the MNIST classifier reads with confidence >= 0.9 (do they draw digits at all?), and the
    sampling time."""
    from helpers import checkpoints as ckpt
    from helpers.evaluation.digits import digit_report, load_classifier, predict
    from helpers.evaluation.metrics import compute_features, fid_interval, reference_features, scores

    card = ckpt.read_card(folder)
    start = time.perf_counter()
    images = draw(folder, num, steps, seed, device)
    seconds = time.perf_counter() - start
    if real_feats is None:
        real_feats = reference_features("mnist:test")
    feats = compute_features(images, "mnist-cnn", device=device)
    s = scores(feats, real_feats, "mnist-cnn", seed=seed)
    _, lo, hi = fid_interval(feats, real_feats, seed=seed)
    confident = digit_report(predict(load_classifier(device=device), images))["confident_fraction"]
    return {"features": "mnist-cnn", "N": num, "fid": s.fid, "fid_lo": lo, "fid_hi": hi, "kid": s.kid, "kid_std": s.kid_std,
            "confident_fraction": confident,
            "sampler": EVAL["sampler"], "eta": 0.0, "steps": steps, "seed": seed, "sampling_seconds": round(seconds, 1),
            "checkpoint_step": card["step"],
            "command": f"python -m helpers.sweep evaluate --only {Path(folder).name} --num {num}"
                       + {"sweep": "", "sweep-long": " --budget long"}.get(Path(folder).parent.name,
                                                                           f" --folder {Path(folder).parent.as_posix()}")}


def results_table(folder: Path = SWEEP_DIR):
    """One row per trained run (the grid's, then any replicates): its options, training cost and (if evaluated)
    FID/KID and the confident share, from the model cards."""
    import pandas as pd

    from helpers import checkpoints as ckpt
    from helpers.evaluation.metrics import label

    rows = []
    for run in runs_in(folder):
        out = Path(folder) / run.name
        if not ckpt.has_checkpoint(out):
            continue
        card = ckpt.read_card(out)
        ev = card.get("evaluation", {})
        row = {"run": run.name, "schedule": run.schedule, "loss": run.loss, "weighting": run.weighting,
               "seed": run.seed, "steps": card["step"], "train time (min)": card["wall_time_s"] / 60,
               "final loss": card["final_loss"]}
        if ev:
            row[label("FID", ev["features"], ev["N"])] = ev["fid"]
            if "fid_lo" in ev:  # evaluations made before intervals and the confident share have neither
                row.update({"FID 95% lo": ev["fid_lo"], "FID 95% hi": ev["fid_hi"], "confident >= 0.9": ev["confident_fraction"]})
            row[label("KID", ev["features"], ev["N"])] = ev["kid"]
            row["KID std"] = ev["kid_std"]
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.sweep", description=__doc__.split("\n")[0])
    p.add_argument("action", choices=("train", "evaluate", "list"))
    p.add_argument("--only", action="append", help="run name (repeatable); default: all runs")
    p.add_argument("--budget", choices=tuple(BUDGETS), default="short",
                   help="short: 1500 steps (checkpoints/sweep); long: 6000 steps (checkpoints/sweep-long)")
    p.add_argument("--folder", type=Path, default=None, help="default: the budget's folder")
    p.add_argument("--num", type=positive_int, default=EVAL["num"], help="images per evaluation")
    args = p.parse_args(argv)
    from helpers import checkpoints as ckpt

    if args.folder is None:
        args.folder = FOLDERS[args.budget].relative_to(ROOT) if Path.cwd() == ROOT else FOLDERS[args.budget]

    try:
        runs = ([get_run(n) for n in args.only] if args.only
                else runs_in(args.folder) if args.action == "evaluate" else list(RUNS))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.action == "list":
        for run in runs:
            print(run.name, "python -m helpers.train " + " ".join(run.train_args(args.folder / run.name, BUDGETS[args.budget])))
        return 0
    for run in runs:
        if args.action == "train":
            try:
                card = train_run(run, args.folder, BUDGETS[args.budget])
            except Stopped as stop:
                print(stop, file=sys.stderr)
                return INTERRUPTED
            print(f"{run.name}: step {card['step']}, loss {card['final_loss']:.4f}, {card['wall_time_s']:.0f} s", flush=True)
            continue
        out = args.folder / run.name
        if not ckpt.has_checkpoint(out):
            print(f"error: {out} has no checkpoint; train it first with python -m helpers.sweep train --only {run.name}",
                  file=sys.stderr)
            return 2
        result = evaluate_run(out, num=args.num)  # the reference features are cached on disk
        card = ckpt.read_card(out)
        card["evaluation"] = result
        ckpt.save_json(card, out / ckpt.CARD)
        print(f"{run.name}: " + json.dumps({k: result[k] for k in ("fid", "kid", "kid_std", "sampling_seconds")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
