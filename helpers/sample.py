"""Draw samples from a checkpoint and write one PNG per image (000000.png, 000001.png, ...).

    python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler ddpm --steps 1000 --num 64 --seed 0 \
        --batch-size 64 --out samples/ddpm-1000

Image i of seed s is the same at any batch size: its x_T and every later draw come from its own generator.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CheckpointError
from .data import save_pngs
from .denoisers import DiffusersModelError, load_denoiser
from .samplers import SAMPLERS, generate
from .schedules import SPACINGS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m helpers.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="a checkpoint folder written by helpers.train, a diffusers model folder, or a hub id")
    p.add_argument("--sampler", default="ddpm", help=f"one of: {', '.join(SAMPLERS)}")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: all T of the model)")
    p.add_argument("--spacing", default="linspace", help=f"timestep spacing for fewer steps: {', '.join(SPACINGS)}")
    p.add_argument("--num", type=int, default=None, help="number of images (default 64, or the rows of --noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    p.add_argument("--eta", type=float, default=None, help="DDIM's eta in [0, 1] (0: deterministic; ddim only)")
    p.add_argument("--noise", type=Path, default=None, help="x_T as a .npy array of shape N x C x H x W")
    p.add_argument("--no-clip", dest="clip", action="store_false", help="do not clip x0_hat to [-1, 1]")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights instead of the EMA ones")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def load_noise(path: Path) -> torch.Tensor:
    if not path.exists():
        raise FileNotFoundError(f"noise file {path} does not exist")
    try:
        return torch.from_numpy(np.load(path)).float()
    except ValueError as err:
        raise ValueError(f"{path} is not a .npy array: {err}") from err


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if (args.num is not None and args.num < 1) or args.batch_size < 1:
            raise ValueError(f"--num and --batch-size must be positive, got {args.num} and {args.batch_size}")
        denoiser, info = load_denoiser(str(args.checkpoint), ema=args.ema, device=args.device)
        x_T = load_noise(args.noise) if args.noise else None
        num = args.num or (len(x_T) if x_T is not None else 64)
        options = {"clip_x0": args.clip, **({"eta": args.eta} if args.eta is not None else {})}
        start = time.time()
        generate(denoiser, num, args.seed, info["shape"], sampler=args.sampler, steps=args.steps, spacing=args.spacing,
                 batch_size=args.batch_size, device=args.device, x_T=x_T,
                 on_batch=lambda i, images: save_pngs(images, args.out, start=i), **options)
    except (ValueError, CheckpointError, DiffusersModelError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.time() - start
    info = {"checkpoint": str(args.checkpoint), "sampler": args.sampler, "steps": args.steps or info["T"],
            "spacing": args.spacing, "eta": args.eta, "clip_x0": args.clip, "noise": str(args.noise) if args.noise else None, "num": num, "seed": args.seed, "ema": args.ema, "nfe": denoiser.nfe,
            "seconds": round(seconds, 2)}
    (args.out / "sampling.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"{num} images in {seconds:.1f} s ({seconds / num:.3f} s per image, {denoiser.nfe} network calls) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
