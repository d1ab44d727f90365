"""Type a sentence, get a digit: the workbook's text-to-image latent diffusion model (notebook 11).

    python -m helpers.text_to_image --prompt "a thick seven" --num 8 --seed 0 --out samples/thick-seven
    python -m helpers.text_to_image --prompt "an upright 3" --guidance 4 --steps 25 --num 4 --out samples/three

    from helpers.samplers.text_to_image import text_to_image
    images = text_to_image("a thin slanted right two", w=3.0, steps=50, seed=0, num=8)   # [8, 1, 28, 28] in [-1, 1]

The shipped model (checkpoints/t2i-mnist: a DiT cross-attending to the text encoder's tokens, on the autoencoder's
latents) by default. Words the tokenizer does not know become <unk>; the CLI names them on stderr and draws anyway.
A hub id (e.g. stabilityai/stable-diffusion-2-1-base) goes to diffusers' StableDiffusionPipeline, which needs the
internet and a GPU; offline it fails with one line that says so. Image i of a seed is the same at any --num.
"""
from __future__ import annotations

import sys
import time
from functools import lru_cache
from pathlib import Path

import torch

from helpers.datasets.captions import Tokenizer
from helpers.checkpoints import CheckpointError, has_checkpoint
from helpers.checks import finite_float, non_negative_int, positive_int
from helpers.cli import ArgumentParser, OutputFolder, device
from helpers.datasets.images import save_pngs
from helpers.denoisers import DiffusersModelError, from_checkpoint, is_hub_id, text_conditioned
from helpers.paths import ROOT
from helpers.samplers import SAMPLERS, generate

DEFAULT = ROOT / "checkpoints" / "t2i-mnist"


@lru_cache(maxsize=4)
def load(checkpoint: str, device: str = "cpu"):
    """(denoiser, card, tokenizer) of a text-to-image checkpoint, loaded once per process."""
    path = Path(checkpoint)
    if not has_checkpoint(path):
        raise CheckpointError(f"{path} holds no checkpoint (no model_card.json): train one with `make train-t2i-mnist` "
                              f"or pass --checkpoint")
    denoiser, card = from_checkpoint(path, device=device)
    if not text_conditioned(denoiser):
        raise CheckpointError(f"{path} is not a text-conditioned model (its card has no text encoder); "
                              "use python -m helpers.sample for it")
    return denoiser, card, Tokenizer(card["model"]["text"]["max_length"])


def text_to_image(prompt: str, w: float = 3.0, steps: int = 50, seed: int = 0, num: int = 1, sampler: str = "ddim",
                  checkpoint: str | Path = DEFAULT, device: str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """`num` images [num, 1, 28, 28] in [-1, 1] for `prompt`, CFG at scale w (diffusers' convention: 1 = no guidance)
    against the empty caption; image i starts from the x_T of (seed, i). The prompt '' is accepted only at w = 0 (an
    unconditional sample)."""
    from helpers.samplers.guidance import CFGDenoiser

    denoiser, _, tok = load(str(checkpoint), device)
    if w != 0 or prompt.strip():  # at w = 0 only the empty caption's branch runs: '' is how to ask for it
        tok.check(prompt)
    y = tok.batch([prompt] * num).to(device)
    return generate(CFGDenoiser(denoiser, w), num, seed, sampler=sampler, steps=steps, batch_size=batch_size,
                    device=device, y=y)


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.text_to_image", description=__doc__.split("\n")[0])
    p.add_argument("--prompt", required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for the PNGs (000000.png, ...)")
    p.add_argument("--checkpoint", default=str(DEFAULT), help="a text-to-image checkpoint, or a hub id (online, GPU)")
    p.add_argument("--num", type=positive_int, default=8)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--guidance", type=finite_float, default=3.0, help="CFG scale w (1: no guidance)")
    p.add_argument("--steps", type=positive_int, default=50)
    p.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the images and record a previous run of this command left in --out (nothing else)")
    args = p.parse_args(argv)
    try:
        if is_hub_id(args.checkpoint):
            from helpers.samplers.pipelines import load_pipeline

            pipe = load_pipeline("stable-diffusion", args.checkpoint, device=args.device)
            generator = torch.Generator(device="cpu").manual_seed(args.seed)
            images = pipe([args.prompt] * args.num, num_inference_steps=args.steps, guidance_scale=args.guidance,
                          generator=generator).images
            with OutputFolder(args.out, overwrite=args.overwrite) as out:
                for i, im in enumerate(images):
                    im.save(args.out / f"{i:06d}.png")
                out.finish({"prompt": args.prompt, "checkpoint": args.checkpoint, "guidance": args.guidance,
                            "steps": args.steps, "num": args.num, "seed": args.seed})
            return 0
        _, _, tok = load(args.checkpoint, args.device)
        tok.check(args.prompt)
        unknown = tok.unknown(args.prompt)
        if unknown:
            print(f"note: the model does not know the words {', '.join(repr(w) for w in unknown)}; they are read as "
                  "<unk>", file=sys.stderr)
        with OutputFolder(args.out, overwrite=args.overwrite) as out:
            start = time.time()
            images = text_to_image(args.prompt, args.guidance, args.steps, args.seed, args.num, args.sampler,
                                   args.checkpoint, args.device, args.batch_size)
            save_pngs(images, args.out)
            seconds = time.time() - start
            out.finish({"prompt": args.prompt, "tokens": tok.decode(tok.encode(args.prompt)), "unknown_words": unknown,
                        "checkpoint": args.checkpoint, "guidance": args.guidance, "steps": args.steps,
                        "sampler": args.sampler, "num": args.num, "seed": args.seed, "seconds": round(seconds, 2)})
    except (ValueError, OSError, CheckpointError, DiffusersModelError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.num} images of {args.prompt!r} in {seconds:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
