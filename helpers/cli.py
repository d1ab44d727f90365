"""The command-line glue every command shares: one-line errors, training options, resume checks, exit statuses and
the output folders of the commands that write samples.

- `ArgumentParser`: argparse whose errors are one line ("error: argument --steps: expected a positive integer, got
  0"), exit status 2; the value types are in helpers.checks.
- `OutputFolder`: a folder one run writes. It refuses a file, a folder another live run is writing (a lock holding
  its pid), and a non-empty folder unless --overwrite or --resume; --overwrite removes only the files the command
  itself writes (its numbered images, clips and record) and refuses a folder holding anything else, so that
  `--out . --overwrite` can never delete a project. While it is written the folder carries `.in-progress` (the run's
  options): readers refuse it (`check_complete`), and `--resume` continues it.
- `check_resume`, `given_options`, `training_options`, `check_new_checkpoint`, `check_out_file`, `run_status`.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import torch

from helpers.checks import non_negative_int, positive_float, positive_int

INTERRUPTED = 143  # the exit status of a run stopped by SIGTERM (128 + 15) or Ctrl-C after it saved
MARKER, LOCK = ".in-progress", ".lock"
# the numbered images, clips and frame strips, and what a kill in the middle of writing one leaves (write_atomic's)
OWN_FILES = re.compile(r"\d{6}\.(png|gif)|\d{6}-frames\.png|\.\d{6}(-frames)?\.(png|gif)\.\d+\.tmp")


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line on stderr ("error: ..."), exit status 2."""

    def error(self, message: str):
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputFolder:
    """The folder of one run of a command that writes numbered images (and `record`, its JSON record). Use as

        with OutputFolder(args.out, overwrite=args.overwrite, resume=args.resume, record="sampling.json",
                          plan=options) as out:
            first = out.first_missing(batch_size)       # 0, or where an interrupted run stopped (--resume)
            ...write images...
            out.finish(record)                          # the record; the folder is complete

    Leaving the block without `finish` (an error, Ctrl-C) keeps `.in-progress`, so the folder reads as incomplete."""

    def __init__(self, path, overwrite: bool = False, resume: bool = False, record: str = "sampling.json",
                 plan: dict | None = None, option: str = "--out", resumable: bool = False):
        self.path, self.overwrite, self.resume, self.record = Path(path), overwrite, resume, record
        self.resumable = resumable  # whether the command has --resume (its messages offer it only then)
        self.plan, self.option, self.locked = plan or {}, option, False
        if overwrite and resume:
            raise ValueError("--overwrite and --resume exclude each other: --resume continues the images in "
                             f"{option}, --overwrite removes them")

    def own(self, name: str) -> bool:
        return bool(OWN_FILES.fullmatch(name)) or name in (self.record, MARKER, LOCK)

    def _check_path(self) -> None:
        for parent in [self.path, *self.path.parents]:
            if parent.exists() and not parent.is_dir():
                where = "is a file" if parent == self.path else f"is under the file {parent}"
                raise ValueError(f"{self.option} {self.path} {where}; give a folder")

    def _check_lock(self) -> None:
        lock = self.path / LOCK
        try:
            pid = int(lock.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return
        if pid and pid != os.getpid() and _alive(pid):
            raise ValueError(f"{self.option} {self.path} is being written by another run (process {pid}); wait for it, "
                             f"or choose another folder (if no such run exists, delete {lock})")

    def __enter__(self) -> "OutputFolder":
        self._check_path()
        if self.path.is_dir():
            self._check_lock()
            entries = sorted(p.name for p in self.path.iterdir())
            foreign = [n for n in entries if not self.own(n)]
            if entries and not (self.overwrite or self.resume):
                hint = " or --resume to continue it" if MARKER in entries and self.resumable else ""
                raise ValueError(f"{self.option} {self.path} is not empty; choose a new folder, or pass --overwrite to "
                                 f"replace this command's own files{hint}")
            if entries and foreign:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                raise ValueError(f"{self.option} {self.path} holds files this command did not write ({shown}); it "
                                 f"never removes or mixes with those: choose a new or empty folder")
            if self.resume:
                self._check_plan(entries)
                for name in entries:  # half-written files of the interrupted run
                    if name.endswith(".tmp"):
                        (self.path / name).unlink()
            elif entries:
                for name in entries:
                    (self.path / name).unlink()
        elif self.resume:
            raise ValueError(f"--resume: {self.option} {self.path} does not exist; drop --resume to start there")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        (self.path / MARKER).write_text(json.dumps({"plan": self.plan, "pid": os.getpid()}, indent=2, default=str) + "\n")
        return self

    def _check_plan(self, entries: list[str]) -> None:
        if MARKER not in entries:
            raise ValueError(f"--resume: {self.option} {self.path} holds a finished run (no {MARKER}); nothing to continue")
        saved = json.loads((self.path / MARKER).read_text()).get("plan", {})
        differ = [f"{k} {self.plan.get(k)!r} (the run's: {saved.get(k)!r})" for k in sorted(set(saved) | set(self.plan))
                  if json.dumps(saved.get(k), default=str) != json.dumps(self.plan.get(k), default=str)]
        if differ:
            raise ValueError(f"--resume continues the run in {self.path} with its own options, but these differ: "
                             f"{', '.join(differ)}")

    def _lock(self) -> None:
        """Take the folder's lock atomically (O_EXCL); a lock whose process is gone is replaced, a live one refused
        (two runs started at once: exactly one gets the folder)."""
        lock = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._check_lock()  # refuses a live writer
                lock.unlink(missing_ok=True)  # the stale lock of a process that is gone
                continue
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            self.locked = True
            return
        raise ValueError(f"{self.option} {self.path} is being taken by another run at the same moment; try again")

    def first_missing(self, batch_size: int) -> int:
        """The first image to draw: 0, or on --resume the start of the first batch with a missing image (images are
        drawn in the same batches as before, so the resumed set equals an uninterrupted one)."""
        n = 0
        while (self.path / f"{n:06d}.png").exists() or (self.path / f"{n:06d}.gif").exists():
            n += 1
        return (n // batch_size) * batch_size

    def finish(self, record: dict) -> None:
        (self.path / self.record).write_text(json.dumps(record, indent=2) + "\n")
        (self.path / MARKER).unlink()

    def __exit__(self, *exc) -> None:
        if self.locked:
            (self.path / LOCK).unlink(missing_ok=True)
            self.locked = False


def check_complete(folder) -> None:
    """Refuse a folder of images that a run is still writing or that an interrupted run left (its `.in-progress`)."""
    if (Path(folder) / MARKER).exists():
        raise ValueError(f"{folder} is incomplete: the run writing it was interrupted or is still going; continue it "
                         "with the same command and --resume (helpers.sample), or draw it again")


def device(text: str) -> str:
    """A torch device that exists here: cpu, or cuda[:i] when CUDA is available, or mps where it is."""
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu or cuda, got {text!r}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"expected a device that computes: cpu, cuda[:i] or mps; got {text!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} was asked for but this machine has no CUDA device; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: there are only {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r} was asked for but MPS is not available here; use --device cpu")
    return text

def given_options(parser: argparse.ArgumentParser, argv) -> dict:
    """The options given on the command line (dest -> parsed value), without the defaults of the others."""
    unset = object()
    namespace = argparse.Namespace(**{a.dest: unset for a in parser._actions if a.dest != argparse.SUPPRESS})
    parsed = parser.parse_args(argv, namespace=namespace)
    return {k: v for k, v in vars(parsed).items() if v is not unset}

def check_resume(out: Path, resume: bool, given: dict, saved: dict, keep=("out", "resume", "steps")) -> None:
    """--resume needs a checkpoint in `out`, and continues it with its own options: an option given now that differs
    from the saved run's (`saved`: dest -> value) is refused, named with both values."""
    from helpers.checkpoints import has_checkpoint

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

def user_error(err: Exception) -> int:
    """A user's mistake said in one line on stderr; the exit status 2."""
    print(f"error: {err}", file=sys.stderr)
    return 2


def after_interrupt(err: KeyboardInterrupt, steps: int | None) -> int:
    """The exit status and line of a training command stopped by Ctrl-C: 143 with the saved step when the loop saved
    (helpers.training.loop.Interrupted carries its card), else 130 with nothing saved."""
    card = getattr(err, "card", None)
    if card:
        return run_status({**card, "stopped_by": "SIGINT"}, card.get("planned_steps", steps or card["step"] + 1))
    print("interrupted before training started; nothing was saved", file=sys.stderr)
    return 130


def run_status(card: dict, steps: int) -> int:
    """The exit status of a training command: 0 when its run reached `steps`; INTERRUPTED (143) when SIGTERM or Ctrl-C
    stopped it early (it saved first), which is said on stderr."""
    if card and card["step"] < steps:
        by = {"SIGINT": "Ctrl-C"}.get(card.get("stopped_by"), "SIGTERM")
        print(f"stopped by {by} at step {card['step']} of {steps}, saved; continue with --resume", file=sys.stderr)
        return INTERRUPTED
    return 0


MAX_EVALUATIONS = 1e8  # network evaluations per run: about 4.6 days at the shipped U-Net's 4 ms per image per call here
SECONDS_PER_EVALUATION = 4e-3


def check_budget(num: int, steps: int) -> None:
    """Refuse a run whose size alone makes it hopeless, before any work: num images (or rows) x steps network calls
    each (helpers.sample, helpers.evaluate, helpers.tabular sample and evaluate)."""
    evaluations = num * steps
    if evaluations > MAX_EVALUATIONS:
        days = evaluations * SECONDS_PER_EVALUATION / 86400
        raise ValueError(f"--num {num} with {steps} steps is {evaluations:.3g} network evaluations (about {days:.3g} days "
                         f"at 4 ms each on this CPU); the limit is {MAX_EVALUATIONS:.0e}: lower --num or --steps")
