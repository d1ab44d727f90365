"""Draw samples from a checkpoint and write one PNG per image (000000.png, 000001.png, ...).

    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler ddpm --steps 1000 --num 64 --seed 0 \
        --batch-size 64 --out samples/ddpm-1000

Class labels and guidance (helpers/samplers/guidance.py; w follows diffusers' guidance_scale: 0 unconditional, 1 conditional):

    python -m helpers.sample --checkpoint CONDITIONAL --class-label 3 --guidance 3 --num 16 --out samples/cfg-3
    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --class-label 0,1,2,3 --classifier-scale 2 --num 4 \
        --classifier checkpoints/noisy-classifier --out samples/classifier-2

Image i of seed s is the same at any batch size: its x_T and every later draw come from its own generator.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from helpers.checkpoints import CheckpointError
from helpers.checks import finite_float, non_negative_int, positive_int, unit_float
from helpers.cli import ArgumentParser, OutputFolder, check_budget, device
from helpers.datasets.images import save_samples
from helpers.denoisers import DiffusersModelError, check_labels, load_denoiser, model_num_classes
from helpers.samplers import SAMPLERS, generate, get_sampler
from helpers.samplers.registry import SAMPLER_REGISTRY, default_spacing
from helpers.schedules import SPACINGS


def parse_args(argv=None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m helpers.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a checkpoint folder written by helpers.training.ddpm, a diffusers model folder, or a hub id")
    p.add_argument("--sampler", default=None, help=f"one of: {', '.join(SAMPLERS)}, or diffusers:SCHEDULER for any "
                   "diffusers scheduler, e.g. diffusers:UniPCMultistepScheduler (default: the checkpoint's own "
                   "sampling, e.g. a distilled student's grid; else ddpm)")
    p.add_argument("--scheduler-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a config option of a diffusers:SCHEDULER, e.g. solver_order=3 (repeatable; VALUE read as JSON)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: the checkpoint's own, else all T)")
    p.add_argument("--spacing", default=None,
                   help=f"timestep spacing for fewer steps: {', '.join(SPACINGS)}, or calibrated (a calibrated sampler's own grid; default: the checkpoint's or the sampler's, else linspace)")
    p.add_argument("--num", type=positive_int, default=None, help="number of images (default 64, or the rows of --noise)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs (new or empty)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the images and record a previous run of this command left in --out (nothing else)")
    p.add_argument("--off-grid", action="store_true",
                   help="sample a distilled student with another sampler, step count or spacing than its own")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in --out (same options) from its last complete batch")
    p.add_argument("--eta", type=unit_float, default=None,
                   help="the noise share in [0, 1] of ddim (0: deterministic), dpmpp-2m-sde (0: the ODE solver) and "
                   "gn-2m (every step's, in place of its calibrated noise)")
    p.add_argument("--noise", type=Path, default=None, help="x_T as a .npy array of shape N x C x H x W")
    p.add_argument("--no-clip", dest="clip", action="store_false", default=None,
                   help="do not clip x0_hat to [-1, 1] (default: the checkpoint's sampling if it has one, else the "
                        "sampler's: ddpm and ddim clip, the ODE/SDE solvers do not)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True,
                   help="use the EMA weights (default); --no-ema uses the raw ones")
    p.add_argument("--class-label", default=None,
                   help="a class for every image, or a comma-separated list with one per image (then --num defaults "
                        "to its length); needs a conditional model or --classifier-scale")
    p.add_argument("--guidance", type=finite_float, default=None,
                   help="classifier-free guidance scale w: eps_u + w (eps_c - eps_u); needs a conditional model and "
                        "--class-label")
    p.add_argument("--classifier-scale", type=finite_float, default=None,
                   help="classifier guidance scale s (Dhariwal & Nichol 2021); needs --class-label; not together with "
                        "--guidance")
    p.add_argument("--classifier", type=Path, default=None,
                   help="noisy-classifier checkpoint for --classifier-scale (default checkpoints/noisy-classifier)")
    p.add_argument("--device", type=device, default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def load_noise(path: Path) -> torch.Tensor:
    """x_T from a .npy file of floating-point numbers, all finite."""
    if not path.is_file():
        raise FileNotFoundError(f"--noise {path} is not a file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"--noise {path} is not a .npy array: {err}") from err
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"--noise {path} holds {array.dtype} values; expected floating-point numbers")
    if not np.isfinite(array).all():
        raise ValueError(f"--noise {path} holds NaN or inf values")
    return torch.from_numpy(array).float()


def parse_labels(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--class-label must be an integer or a comma-separated list of integers, got {text!r}"
                         ) from None


def check_options(args) -> None:
    """Combinations of the label and guidance options that cannot work, before loading anything."""
    if args.guidance is not None and args.classifier_scale is not None:
        raise ValueError("use either --guidance (classifier-free) or --classifier-scale (classifier guidance), "
                         "not both")
    if args.guidance is not None and args.class_label is None:
        raise ValueError("--guidance needs --class-label (the classes to guide towards)")
    if args.classifier_scale is not None and args.class_label is None:
        raise ValueError("--classifier-scale needs --class-label (the classes to guide towards)")
    if args.classifier is not None and args.classifier_scale is None:
        raise ValueError("--classifier is used only with --classifier-scale")
    for name in ("guidance", "classifier_scale"):
        value = getattr(args, name)
        if value is not None and abs(value) > MAX_SCALE:
            raise ValueError(f"--{name.replace('_', '-')} {value:g}: expected a scale of at most {MAX_SCALE:g} in size "
                             "(larger ones push x0_hat far out of [-1, 1], and clipping makes flat, saturated images)")


MAX_SCALE = 100.0
def label_tensor(labels: list[int], num: int) -> torch.Tensor:
    """One label for every image, or exactly one per image."""
    if len(labels) == 1:
        return torch.full((num,), labels[0], dtype=torch.long)
    if len(labels) != num:
        raise ValueError(f"--class-label has {len(labels)} labels for {num} images; give one label, or one per image")
    return torch.tensor(labels, dtype=torch.long)


DEFAULTS = {"sampler": "ddpm", "steps": None, "spacing": "linspace", "clip": None, "eta": None}


def sampling_options(args, sampling: dict) -> None:
    """Fill the sampling options not given on the command line with the checkpoint's defaults
    (checkpoints.sampling_defaults: a distilled student's grid, a calibrated sampler's spacing), else DEFAULTS;
    `sampling` is the card's for a model that is not our checkpoint (a diffusers folder: none)."""
    from helpers.checkpoints import has_checkpoint, sampling_defaults

    own = sampling_defaults(args.checkpoint, args.sampler) if has_checkpoint(args.checkpoint) else dict(sampling)
    check_student_grid(args)
    spacing_given = args.spacing is not None
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, own.get("clip_x0" if name == "clip" else name, default))
    if args.sampler in SAMPLER_REGISTRY and "spacing" not in own and not spacing_given:
        args.spacing = default_spacing(args.sampler)  # e.g. diffusers' multistep schedulers: trailing (the benchmark's)
    if args.clip is None:  # the sampler's own default: DDPM and DDIM clip x0_hat, the ODE/SDE solvers do not
        args.clip = inspect.signature(get_sampler(args.sampler)).parameters["clip_x0"].default


def check_student_grid(args) -> None:
    """A distilled student was trained for one sampler on one grid: another --sampler, --steps, --spacing or --eta
    runs it where it never learnt to step, so it is refused unless --off-grid says so."""
    from helpers.checkpoints import has_checkpoint, read_card

    if getattr(args, "off_grid", False) or not has_checkpoint(args.checkpoint):
        return
    card = read_card(args.checkpoint)
    if "distillation" not in card:
        return
    own = card["sampling"]
    asked = {"sampler": args.sampler, "steps": args.steps, "spacing": args.spacing, "eta": args.eta}
    differ = [f"--{k} {v}" for k, v in asked.items() if v is not None and v != own.get(k)]
    if differ:
        raise ValueError(f"{args.checkpoint} is a distilled student for {own['sampler']} with {own['steps']} "
                         f"{own['spacing']} steps (eta {own.get('eta', 0)}); {', '.join(differ)} samples it off that grid. "
                         "Leave them out, or pass --off-grid to do it anyway")


def load(args) -> tuple:
    """The denoiser to sample, and load_denoiser's info plus "num_classes", "label_owner" and "classifier": guided
    (helpers.samplers.guidance) only when a guidance option asks for it."""
    if args.guidance is None and args.classifier_scale is None:
        denoiser, info = load_denoiser(str(args.checkpoint), ema=args.ema, device=args.device)
        return denoiser, {**info, "num_classes": model_num_classes(denoiser), "label_owner": "the model's",
                          "classifier": None}
    from helpers.samplers.guidance import guided_denoiser

    return guided_denoiser(str(args.checkpoint), guidance=args.guidance, classifier_scale=args.classifier_scale,
                           classifier=args.classifier, ema=args.ema, device=args.device)


def scheduler_options(args) -> dict:
    """--scheduler-option KEY=VALUE pairs (VALUE read as JSON, else kept as a string), for a diffusers:SCHEDULER only."""
    if args.scheduler_option and not str(args.sampler).startswith("diffusers:"):
        raise ValueError("--scheduler-option applies to --sampler diffusers:SCHEDULER only")
    out = {}
    for item in args.scheduler_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--scheduler-option {item!r}: expected KEY=VALUE, e.g. solver_order=3")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def draw(args, denoiser, info, num: int, first: int, x_T, y) -> tuple[float, int]:
    """Images first..num-1 of the run, written as they are drawn; returns the seconds and the batched network calls."""
    options = {"clip_x0": args.clip, **({"eta": args.eta} if args.eta is not None else {}),
               **scheduler_options(args)}
    start, calls = time.time(), denoiser.nfe
    if first < num:
        generate(denoiser, num - first, args.seed, info["shape"], sampler=args.sampler, steps=args.steps,
                 spacing=args.spacing, batch_size=args.batch_size, device=args.device,
                 y=None if y is None else y[first:], x_T=None if x_T is None else x_T[first:], first_index=first,
                 on_batch=lambda i, images: save_samples(images, args.out, start=first + i), **options)
    return time.time() - start, denoiser.nfe - calls


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        check_options(args)
        labels = parse_labels(args.class_label) if args.class_label is not None else None
        denoiser, info = load(args)
        if labels is not None and info["num_classes"] is None:
            raise ValueError(f"--class-label needs a class-conditional model (or --classifier-scale); "
                             f"{args.checkpoint} is unconditional")
        sampling_options(args, info.get("sampling", {}))
        x_T = load_noise(args.noise) if args.noise else None
        num = args.num or (len(x_T) if x_T is not None else len(labels) if labels and len(labels) > 1 else 64)
        y = None
        if labels is not None:
            y = label_tensor(labels, num)
            check_labels(y, info["num_classes"], info["label_owner"])
        check_budget(num, args.steps or info["T"])
        if args.sampler.startswith("diffusers:") and args.eta is not None:
            raise ValueError("--eta applies to ddim, dpmpp-2m-sde and gn-2m; a diffusers scheduler takes its own "
                             "options through --scheduler-option (e.g. eta=1.0 for DDIMScheduler)")
        spaced = SAMPLER_REGISTRY.get(args.sampler)
        if args.sampler.startswith("diffusers:") or (spaced is not None and spaced.spaced):
            # a scheduler that cannot run on this grid: refused before any file is written
            from helpers.samplers.schedulers import ESTABLISHED, check
            from helpers.schedules import get_timesteps

            grid = get_timesteps(info["T"], args.steps or info["T"], args.spacing, alpha_bar=denoiser.alpha_bar).tolist()
            cls, options = (ESTABLISHED[args.sampler] if args.sampler in ESTABLISHED
                            else (args.sampler.split(":", 1)[1], scheduler_options(args)))
            if args.sampler in ESTABLISHED and args.clip:
                raise ValueError(f"--sampler {args.sampler} ({cls}) does not clip x0_hat; drop --clip")
            try:
                check(cls, denoiser.alpha_bar, grid, args.spacing, args.clip, **options)
            except ValueError as err:
                raise ValueError(f"--sampler {args.sampler}: {err}") from None
        from helpers.samplers.gn2m import VARIANTS, calibrated_eta
        from helpers.samplers.registry import sampling_grid

        grid = sampling_grid(denoiser, args.sampler, args.steps or info["T"], args.spacing)  # refused before writing
        if args.sampler in VARIANTS.values() and args.eta is None:
            calibrated_eta(denoiser, grid, args.sampler)
        plan = {"checkpoint": str(args.checkpoint), "sampler": args.sampler, "steps": args.steps,
                "spacing": args.spacing, "eta": args.eta, "clip_x0": args.clip,
                "noise": str(args.noise) if args.noise else None, "num": num, "seed": args.seed,
                "batch_size": args.batch_size, "ema": args.ema, "class_label": None if y is None else y.tolist(),
                "guidance": args.guidance, "classifier_scale": args.classifier_scale,
                "scheduler_options": scheduler_options(args) or None}
        with OutputFolder(args.out, overwrite=args.overwrite, resume=args.resume, plan=plan, resumable=True) as out:
            first = out.first_missing(args.batch_size)
            seconds, calls = draw(args, denoiser, info, num, first, x_T, y)
            batches = -(-(num - first) // args.batch_size)
            nfe = calls // batches if batches else None  # per image (every batch makes the same calls); None: none drawn
            out.finish({**plan, "steps": args.steps or info["T"], "classifier": info["classifier"], "nfe": nfe,
                        "resumed_from": first or None, "seconds": round(seconds, 2)})
    except (ValueError, OSError, CheckpointError, DiffusersModelError, FileNotFoundError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {args.out} is incomplete; continue it with the same command and --resume", file=sys.stderr)
        return 130
    drawn = num - first
    print(f"{drawn} images in {seconds:.1f} s ({seconds / max(1, drawn):.3f} s per image, {nfe} network evaluations "
          f"per image) -> {args.out}" + (f" (resumed at image {first})" if first else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
