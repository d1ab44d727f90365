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

import torch

from .checkpoints import CheckpointError
from .data import save_pngs
from .denoisers import from_checkpoint
from .samplers import SAMPLERS, generate
from .schedules import SPACINGS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m helpers.sample", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path, help="a checkpoint folder written by helpers.train")
    p.add_argument("--sampler", default="ddpm", help=f"one of: {', '.join(SAMPLERS)}")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: all T of the model)")
    p.add_argument("--spacing", default="linspace", help=f"timestep spacing for fewer steps: {', '.join(SPACINGS)}")
    p.add_argument("--num", type=int, default=64, help="number of images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="use the raw weights instead of the EMA ones")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        if args.num < 1 or args.batch_size < 1:
            raise ValueError(f"--num and --batch-size must be positive, got {args.num} and {args.batch_size}")
        denoiser, card = from_checkpoint(args.checkpoint, ema=args.ema, device=args.device)
        cfg = card["model"]
        shape = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
        start = time.time()
        generate(denoiser, args.num, args.seed, shape, sampler=args.sampler, steps=args.steps, spacing=args.spacing,
                 batch_size=args.batch_size, device=args.device,
                 on_batch=lambda i, images: save_pngs(images, args.out, start=i))
    except (ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.time() - start
    info = {"checkpoint": str(args.checkpoint), "sampler": args.sampler, "steps": args.steps or card["schedule"]["T"],
            "spacing": args.spacing, "num": args.num, "seed": args.seed, "ema": args.ema, "nfe": denoiser.nfe,
            "seconds": round(seconds, 2)}
    (args.out / "sampling.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"{args.num} images in {seconds:.1f} s ({seconds / args.num:.3f} s per image, {denoiser.nfe} network calls) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
