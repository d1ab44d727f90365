"""The command line of the tabular DDPM: `python -m helpers.tabular train / sample / evaluate` (see helpers.tabular)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from helpers import checkpoints as ckpt
from helpers.checks import non_negative_float, non_negative_int, positive_float, positive_int, unit_float
from helpers.cli import ArgumentParser, after_interrupt, check_budget, check_out_file, check_resume, given_options, run_status
from helpers.datasets.images import DataUnavailableError
from helpers.schedules import SCHEDULES
from helpers.tabular.data import DATASETS, TRANSFORMS
from helpers.tabular.train import TabularTrainConfig, load_checkpoint, sample_frame, train


def words(text: str) -> list[str]:
    return [w for w in text.split(",") if w]


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m helpers.tabular", description="A tabular DDPM (TabDDPM-style)")
    sub = p.add_subparsers(dest="command", required=True)
    d = TabularTrainConfig()
    tr = sub.add_parser("train", help="train (or --resume) a tabular DDPM")
    tr.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    tr.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (its options are reused)")
    tr.add_argument("--data", default=d.data, help=f"one of {', '.join(DATASETS)}")
    tr.add_argument("--columns", type=words, default=None, help="comma-separated columns to model (default: all)")
    tr.add_argument("--categorical", type=words, default=None, help="numeric columns to treat as categorical")
    tr.add_argument("--transform", choices=TRANSFORMS, default=d.transform)
    tr.add_argument("--steps", type=positive_int, default=d.steps,
                    help="total optimiser steps (with --resume: the new total)")
    types = {"batch_size": positive_int, "checkpoint_every": positive_int, "log_every": positive_int, "T": positive_int,
             "n_quantiles": positive_int, "warmup": non_negative_int, "split_seed": non_negative_int,
             "seed": non_negative_int, "lr": positive_float, "weight_decay": non_negative_float,
             "grad_clip": non_negative_float, "ema_decay": unit_float, "test_fraction": unit_float}
    for name, kind in types.items():
        tr.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name))
    tr.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    tr.add_argument("--hidden", type=positive_int, default=256)
    tr.add_argument("--layers", type=positive_int, default=3)
    tr.add_argument("--no-progress", dest="progress", action="store_false")
    sa = sub.add_parser("sample", help="draw synthetic rows into a CSV")
    ev = sub.add_parser("evaluate", help="fidelity, utility and privacy of the DDPM against the baselines")
    for s in (sa, ev):
        s.add_argument("--checkpoint", required=True, type=Path)
        s.add_argument("--seed", type=non_negative_int, default=0)
        s.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: all T)")
        s.add_argument("--batch-size", type=positive_int, default=2048)
    sa.add_argument("--num", type=positive_int, required=True)
    sa.add_argument("--out", type=Path, required=True, help="CSV file to write (new, unless --overwrite)")
    sa.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    ev.add_argument("--num", type=positive_int, default=None, help="rows per generator (default: the held-out set's size)")
    ev.add_argument("--write-card", action="store_true", help="store the table in the model card")
    p.train_parser = tr  # for given_options: a subparser parses into a fresh namespace
    return p


def main(argv=None) -> int:
    args = parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    command = "python -m helpers.tabular " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.command == "train":
            fields = TabularTrainConfig.__dataclass_fields__
            cfg = TabularTrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
            net = {"hidden": args.hidden, "layers": args.layers}
            if args.resume:  # the run's own options; --steps given: the new total
                saved = ckpt.read_card(args.out) if ckpt.has_checkpoint(args.out) else {}
                given = given_options(build_parser().train_parser, argv[1:])
                check_resume(args.out, True, given,
                             {**saved.get("train", {}), **{k: saved.get("model", {}).get(k) for k in ("hidden", "layers")}},
                             keep=("out", "resume", "steps", "progress"))
                steps = args.steps if "steps" in given else saved["train"]["steps"]
                cfg = TabularTrainConfig(**{**saved["train"], "steps": steps})
                net = {k: saved["model"][k] for k in net}
            card = train(cfg, args.out, args.resume, command, net, progress=args.progress)
            print(f"step {card['step']}, loss {card['final_loss']:.4f}, "
                  f"wall time {card['wall_time_s']:.0f} s -> {args.out}")
            return run_status(card, cfg.steps)
        elif args.command == "sample":
            check_out_file(args.out, args.overwrite)
            denoiser, transform, _ = load_checkpoint(args.checkpoint)
            check_budget(args.num, args.steps or denoiser.alpha_bar.shape[0])
            frame = sample_frame(denoiser, transform, args.num, args.seed, args.steps, args.batch_size)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(args.out, index=False)
            print(f"{len(frame)} rows -> {args.out}")
        else:
            from helpers.tabular.metrics import evaluate_checkpoint

            result = evaluate_checkpoint(args.checkpoint, args.num, args.seed, args.steps, args.batch_size)
            result["command"] = command
            print(result["text"])
            if args.write_card:
                card = ckpt.read_card(args.checkpoint)
                card["evaluation"] = {k: v for k, v in result.items() if k != "text"}
                ckpt.save_json(card, args.checkpoint / ckpt.CARD)
    except (ValueError, OSError, ckpt.CheckpointError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        return after_interrupt(err, getattr(args, "steps", None))
    return 0
