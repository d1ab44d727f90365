"""Refusing bad input, in one place per concern: command-line values, output folders, and the inputs of the
samplers. Every message names the option or value, says what was expected and, where it helps, how to fix it.

- `ArgumentParser`: argparse with one-line errors ("error: argument --steps: expected a positive integer, got 0"),
  exit status 2, and the types below.
- `positive_int`, `non_negative_int`, `positive_float`, `finite_float`, `unit_float`, `device`: argparse types.
- `prepare_out_dir`: a folder to write into: refuses a file, a path under a file, and a non-empty folder unless
  overwrite (then it is emptied first), so that a set of samples is never a mix of two runs.
- `check_count`, `check_timesteps`, `check_generators`, `check_finite`: the samplers' inputs and outputs.
"""
from __future__ import annotations

import argparse
import math
import numbers
import shutil
import sys
from pathlib import Path

import torch

INTERRUPTED = 143  # the exit status of a run stopped by SIGTERM (128 + 15) after it saved


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line on stderr ("error: ..."), exit status 2."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
                                         ) from None


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def finite_float(text: str) -> float:
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value:g}")
    return value


def unit_float(text: str) -> float:
    value = finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value:g}")
    return value


def device(text: str) -> str:
    """A torch device that exists here: cpu, or cuda[:i] when CUDA is available, or mps where it is."""
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu or cuda, got {text!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} was asked for but this machine has no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: there are only {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} was asked for but MPS is not available here; use --device cpu")
    return text


def prepare_out_dir(path: Path, overwrite: bool = False, option: str = "--out") -> Path:
    """Make `path` a folder to write into. A file, or a path under a file, is refused; so is a folder that already
    holds files unless `overwrite`, which empties it first."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            where = "is a file" if parent == path else f"is under the file {parent}"
            raise ValueError(f"{option} {path} {where}; give a folder")
    if path.is_dir() and any(path.iterdir()):
        if not overwrite:
            raise ValueError(f"{option} {path} is not empty; choose a new folder, or pass --overwrite to empty it first")
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_count(value, name: str, minimum: int = 1) -> int:
    """An integer count (a Python int, numpy integer or 0-d integer tensor; not a bool) of at least `minimum`."""
    if torch.is_tensor(value) and value.ndim == 0 and not value.is_floating_point() and value.dtype != torch.bool:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {int(value)}")
    return int(value)


def check_timesteps(timesteps, T: int | None = None) -> list[int]:
    """A strictly decreasing sequence of integer timesteps in [0, T - 1] (T = None: any t >= 0), as the samplers
    take it."""
    if torch.is_tensor(timesteps):
        if timesteps.is_floating_point() or timesteps.is_complex() or timesteps.dtype == torch.bool:
            raise ValueError(f"timesteps must be integers, got a {timesteps.dtype} tensor")
        timesteps = timesteps.tolist()
    ts = list(timesteps)
    if not ts:
        raise ValueError("timesteps is empty; give at least one timestep")
    for t in ts:
        if isinstance(t, bool) or not isinstance(t, numbers.Integral):
            raise ValueError(f"timesteps must be integers, got {t!r} ({type(t).__name__})")
        if t < 0 or (T is not None and t >= T):
            upper = f"0..{T - 1} (the model has T = {T} diffusion steps)" if T is not None else "0, 1, 2, ..."
            raise ValueError(f"timestep {t} is outside {upper}")
    for a, b in zip(ts, ts[1:]):
        if b >= a:
            raise ValueError(f"timesteps must decrease strictly (from noise to data), but {b} follows {a}")
    return [int(t) for t in ts]


def check_generators(generator, n: int) -> None:
    """One generator for the batch, or a list with exactly one per sample (a shorter list would share draws)."""
    if isinstance(generator, (list, tuple)) and len(generator) != n:
        raise ValueError(f"got {len(generator)} generators for a batch of {n}; give one per sample (or a single one)")


def check_finite(x: torch.Tensor, step: int, t: int) -> None:
    """Stop a sampler whose state has stopped being finite, saying where."""
    if not torch.isfinite(x).all():
        raise FloatingPointError(f"the sampler produced non-finite values at step {step} (t = {t}); check the "
                                 "guidance scale, the starting noise and the model's weights for NaN or inf")


def given_options(parser: argparse.ArgumentParser, argv) -> dict:
    """The options given on the command line (dest -> parsed value), without the defaults of the others."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parsed = parser.parse_args(argv, namespace=namespace)
    return {k: v for k, v in vars(parsed).items() if v is not unset}


def check_resume(out: Path, resume: bool, given: dict, saved: dict, keep=("out", "resume", "steps")) -> None:
    """--resume needs a checkpoint in `out`, and continues it with its own options: an option given now that differs
    from the saved run's (`saved`: dest -> value) is refused, named with both values."""
    from .checkpoints import has_checkpoint

    if not resume:
        return
    if not has_checkpoint(out):
        raise ValueError(f"--resume: {out} holds no checkpoint to continue; drop --resume to start a new run there")
    differ = [f"--{k.replace('_', '-')} {given[k]!r} (the run's: {saved[k]!r})" for k in given
              if k not in keep and k in saved and _normal(given[k]) != _normal(saved[k])]
    if differ:
        raise ValueError(f"--resume continues the run in {out} with its own options, but these differ from it: "
                         f"{', '.join(differ)}; drop them, or start a new run in another --out")


def _normal(value):
    """Compare a parsed option with its JSON-saved value (tuples come back as lists, paths as strings)."""
    if isinstance(value, (tuple, list)):
        return [_normal(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value:g}")
    return value


def check_out_file(path: Path, overwrite: bool = False, option: str = "--out") -> Path:
    """A file to write: not a folder, not under a file, and new unless `overwrite`."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{option} {path} is under the file {parent}; give a path in a folder")
    if path.exists() and not overwrite:
        raise ValueError(f"{option} {path} already exists; choose a new name, or pass --overwrite to replace it")
    return path


def training_options(p, out_default=None, steps: int = 1500, batch_size: int = 64, lr: float = 1e-3) -> None:
    """The options every small training CLI shares (a classifier, a feature network, the text encoder): --out (required
    unless a default is given), --overwrite, --steps, --batch-size, --lr and --seed."""
    from pathlib import Path

    p.add_argument("--out", type=Path, required=out_default is None, default=out_default, help="the checkpoint folder")
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    p.add_argument("--steps", type=positive_int, default=steps)
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--lr", type=positive_float, default=lr)
    p.add_argument("--seed", type=non_negative_int, default=0)


def check_new_checkpoint(out: Path, overwrite: bool = False, option: str = "--out") -> Path:
    """A folder for a new checkpoint: not a file, and not holding a checkpoint already unless `overwrite` (checked
    before training, so that a finished model is not replaced by accident)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is a file; give a folder for the checkpoint")
    if (out / "model_card.json").exists() and not overwrite:
        raise ValueError(f"{option} {out} already holds a checkpoint; choose another folder, or pass --overwrite "
                         "to replace it")
    return out


def run_status(card: dict, steps: int) -> int:
    """The exit status of a training command: 0 when its run reached `steps`; INTERRUPTED (143) when SIGTERM stopped
    it early (it saved first), which is said on stderr."""
    if card and card["step"] < steps:
        print(f"stopped by SIGTERM at step {card['step']} of {steps}, saved; continue with --resume", file=sys.stderr)
        return INTERRUPTED
    return 0
