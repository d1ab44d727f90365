"""Judge a MNIST checkpoint's samples with the separately trained digit classifier (checkpoints/mnist-cnn).

    python -m helpers.evaluate --checkpoint checkpoints/ddpm-mnist --num 500 --steps 1000 --seed 0 --write-card

Prints (and with --write-card stores in the model card under "evaluation") the share of samples classified with
confidence >= 0.9 and the share of each digit. It samples as the checkpoint's card says (a distilled student: its
sampler on its own grid), else with ancestral DDPM on --steps (default: all T).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from helpers import checkpoints as ckpt
from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser, OutputFolder, check_budget
from helpers.evaluation.digits import digit_report, load_classifier, predict
from helpers.datasets.images import save_pngs
from helpers.denoisers import from_checkpoint
from helpers.samplers import generate


def evaluate_checkpoint(folder, num: int, steps: int | None, seed: int, batch_size: int = 250, ema: bool = True,
                        out: Path | None = None, device="cpu") -> dict:
    denoiser, card = from_checkpoint(folder, ema=ema, device=device)
    if denoiser.sample_shape != (1, 28, 28):
        raise ValueError(f"the digit classifier judges 1 x 28 x 28 images; {folder} makes "
                         f"{' x '.join(map(str, denoiser.sample_shape))} ones")
    own = ckpt.sampling_defaults(folder)  # a student's sampler and grid; {} for a plain DDPM
    if own.get("steps") is not None and steps not in (None, own["steps"]):
        raise ValueError(f"{folder} samples on its own grid of {own['steps']} steps (its card's \"sampling\"); drop "
                         f"--steps, or draw {steps} steps with `python -m helpers.sample --off-grid` and score them "
                         "with helpers.fid")
    sampler, steps = own.get("sampler", "ddpm"), own.get("steps", steps)
    options = {k: own[k] for k in ("spacing",) if k in own}
    options.update({k: own[k] for k in ("eta", "clip_x0") if k in own and own[k] is not None})
    start = time.time()
    images = generate(denoiser, num, seed, sampler=sampler, steps=steps, batch_size=batch_size, device=device, **options)
    seconds = time.time() - start
    if out is not None:
        save_pngs(images, out)
    report = digit_report(predict(load_classifier(), images))
    return {**report, "sampler": sampler, "steps": steps or card["schedule"]["T"], **options, "seed": seed, "ema": ema,
            "checkpoint_step": card["step"], "sampling_seconds": round(seconds, 1), "classifier": "checkpoints/mnist-cnn",
            "command": f"python -m helpers.evaluate --checkpoint {folder} --num {num} --steps {steps} --seed {seed}"}


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--num", type=positive_int, default=500)
    p.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: all T)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=250)
    p.add_argument("--no-ema", dest="ema", action="store_false")
    p.add_argument("--out", type=Path, default=None, help="also write the samples as PNGs here (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the images and record a previous run of this command left in --out (nothing else)")
    p.add_argument("--write-card", action="store_true", help="store the result in the model card")
    args = p.parse_args(argv)
    try:
        check_budget(args.num, args.steps or 1000)  # before loading anything (T = 1000 for every shipped model)
        if args.out is None:
            result = evaluate_checkpoint(args.checkpoint, args.num, args.steps, args.seed, args.batch_size, args.ema)
        else:
            from_checkpoint(args.checkpoint, ema=args.ema)  # a bad checkpoint is refused before the folder is touched
            with OutputFolder(args.out, overwrite=args.overwrite, record="evaluation.json") as out:
                result = evaluate_checkpoint(args.checkpoint, args.num, args.steps, args.seed, args.batch_size,
                                             args.ema, args.out)
                out.finish(result)
    except (ValueError, OSError, ckpt.CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    if args.write_card:
        card = ckpt.read_card(args.checkpoint)
        card["evaluation"] = result
        ckpt.save_json(card, args.checkpoint / ckpt.CARD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
