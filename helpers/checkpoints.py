"""Checkpoints as safetensors plus a JSON model card; never pickles.

A checkpoint folder holds
    model.safetensors      the raw weights (a state_dict)
    ema.safetensors        the EMA weights, same keys
    optimizer.safetensors  the optimiser's tensors, for resuming (keys "<param index>.<name>")
    model_card.json        model config, schedule, objective, data, training options, step, wall time, loss history,
                           and the command that made it
"""
from __future__ import annotations

import json
import re
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from helpers.models import build_model
from helpers.paths import write_atomic
from helpers.schedules import Schedule

CARD = "model_card.json"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
OPTIMIZER = "optimizer.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or corrupt; the message names the file."""


def has_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / CARD).exists()


def trained_step(folder: str | Path) -> int | None:
    """The training step a checkpoint's card records; None for a folder without a card (a diffusers pipeline)."""
    return read_card(folder)["step"] if has_checkpoint(folder) else None


def save_tensors(tensors: dict, path: Path) -> None:
    write_atomic(path, lambda tmp: save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp)))


def save_json(obj: dict, path: Path) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Split an optimiser state_dict into flat tensors (for safetensors) and JSON-able rest."""
    sd = optimizer.state_dict()
    tensors = {f"{i}.{k}": v for i, st in sd["state"].items() for k, v in st.items()}
    return tensors, {"param_groups": sd["param_groups"]}


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


COMMIT = "commit.json"  # present only while a checkpoint's new files are being moved into place
NEXT = ".next"


def save_checkpoint(folder, model, ema_state: dict, card: dict, optimizer=None) -> None:
    """Write the checkpoint as one transaction, so that a run killed at any moment resumes from a consistent set of
    files (weights, EMA, optimiser and card of one step): 1. every new file is written as NAME.next; 2. commit.json,
    listing them, is written atomically; 3. each NAME.next replaces NAME; 4. commit.json is removed. A kill before 2
    leaves the previous checkpoint (its .next files are discarded on resume); after 2, `recover` completes step 3."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [MODEL, EMA]
    save_tensors(model.state_dict(), folder / (MODEL + NEXT))
    save_tensors(ema_state, folder / (EMA + NEXT))
    card = dict(card)
    if optimizer is not None:
        tensors, meta = optimizer_tensors(optimizer)
        save_tensors(tensors, folder / (OPTIMIZER + NEXT))
        card["optimizer"] = meta
        names.append(OPTIMIZER)
    save_json(card, folder / (CARD + NEXT))
    save_json({"files": names + [CARD]}, folder / COMMIT)
    recover(folder)


def recover(folder: str | Path) -> None:
    """Finish or discard an interrupted save_checkpoint (see there): with commit.json, move its files into place;
    without it, delete leftover NAME.next files. Call it only when no process is writing to the folder."""
    folder = Path(folder)
    commit = folder / COMMIT
    if commit.exists():
        for name in json.loads(commit.read_text())["files"]:
            if (folder / (name + NEXT)).exists():
                os.replace(folder / (name + NEXT), folder / name)
        commit.unlink()
    for leftover in folder.glob("*" + NEXT):
        leftover.unlink()


def read_card(folder: str | Path) -> dict:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CheckpointError(f"{folder} is a file; a checkpoint is a folder with {CARD} and safetensors files")
    if not folder.is_dir():
        import difflib

        siblings = [p.name for p in folder.parent.iterdir() if p.is_dir()] if folder.parent.is_dir() else []
        close = difflib.get_close_matches(folder.name, siblings, n=1)
        hint = f" (did you mean {folder.parent / close[0]}?)" if close else ""
        raise CheckpointError(f"checkpoint folder {folder} does not exist{hint}")
    path = folder / CARD
    if not path.exists():
        raise CheckpointError(f"{folder} is not a checkpoint: {CARD} is missing")
    try:
        card = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is corrupt: {err}") from err
    if not isinstance(card, dict):
        raise CheckpointError(f"{path} holds a JSON {type(card).__name__}, not a model card (an object with \"model\", "
                              "\"schedule\", ...); the file was edited or belongs to something else")
    return card


def read_tensors(path: Path) -> dict:
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint file {path} is corrupt: {err}") from err


def load_model(folder: str | Path, ema: bool = True, device: str | torch.device = "cpu",
               weights: str | Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The network of a checkpoint, of whichever registered architecture its model card names (helpers.models), in
    eval mode, and its card. EMA weights by default where the run kept an EMA (the card has "ema"); `weights`: another
    safetensors file of the same network (a snapshot) instead."""
    folder = Path(folder)
    card = read_card(folder)
    try:
        model = build_model(card)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder / CARD} has no valid model config: {type(err).__name__}: {err}") from err
    shape = getattr(getattr(model, "config", None), "sample_shape", None)
    trained_on = card.get("data", {}).get("shape") if isinstance(card.get("data"), dict) else None
    if shape is not None and trained_on is not None and list(shape) != list(trained_on):
        raise CheckpointError(f"{folder / CARD} describes {list(shape)} samples but the model was trained on "
                              f"{list(trained_on)} data; the card was edited or belongs to another model")
    path = Path(weights) if weights is not None else folder / (EMA if ema and "ema" in card else MODEL)
    if weights is None and not ema and not path.exists() and (folder / EMA).exists():
        raise CheckpointError(f"{folder} ships only its EMA weights ({EMA}); the raw weights ({MODEL}) were not kept, "
                              "so --no-ema cannot be served: drop it")
    try:
        model.load_state_dict(read_tensors(path))
    except RuntimeError as err:
        where = folder if weights is None else path
        problems = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
        first = (problems[0] if problems else str(err).splitlines()[0])[:200]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CheckpointError(f"weights in {where} do not match the config in the model card of {folder}: {first}{more}"
                              ) from None
    return model.to(device).eval(), card


def card_schedule(card: dict, folder: str | Path) -> Schedule:
    """The Schedule a diffusion model's card names, checked: a "schedule" with a known name and a positive integer T
    and, where the card has one, the fingerprint of alpha_bar stored at training time (an edited name or T no longer
    matches it)."""
    path = Path(folder) / CARD
    sched = card.get("schedule")
    if not isinstance(sched, dict) or "name" not in sched or "T" not in sched:
        raise CheckpointError(f"{path} has no \"schedule\" with a \"name\" and \"T\"; it is not a diffusion model's card")
    try:
        schedule = Schedule.from_name(sched["name"], sched["T"])
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from err
    if "fingerprint" not in sched:
        raise CheckpointError(f"{path} has no schedule fingerprint, so the schedule it names cannot be checked against "
                              "the one the weights were trained with; retrain, or restore the card that training wrote")
    if sched["fingerprint"] != schedule.fingerprint():
        raise CheckpointError(f"{path} names the {sched['name']!r} schedule with T = {sched['T']}, but the model was "
                              "trained with another one (the card's schedule fingerprint differs); restore the card")
    check_training_record(card, path)
    return schedule


def check_training_record(card: dict, path: Path) -> None:
    """The card's schedule and prediction against its own training record (card["train"]), and a distilled
    student's prediction (its record's --prediction; v for the students trained before that option): an edited
    field that the record contradicts is refused."""
    train, sched = card.get("train") or {}, card["schedule"]
    for key, mine in (("schedule", sched["name"]), ("T", sched["T"]), ("prediction", card.get("prediction"))):
        if key in train and train[key] != mine:
            raise CheckpointError(f"{path} says {key} {mine!r} but its training record (\"train\") says {train[key]!r}; "
                                  "the card was edited: restore it")
    # a distilled student's prediction is its training record's (--prediction); students trained before the option
    # existed record none and are v-students
    student = train.get("prediction", "v")
    if "distillation" in card and card.get("prediction") != student:
        raise CheckpointError(f"{path} is a distilled student trained with {student}-prediction but says prediction "
                              f"{card.get('prediction')!r}; restore the card")


SNAPSHOTS = "snapshots"  # folder/snapshots/step-XXXXXX/{model,ema}.safetensors, written by training's --keep-every


def snapshot_path(folder: str | Path, step: int, ema: bool = True) -> Path:
    return Path(folder) / SNAPSHOTS / f"step-{step:06d}" / (EMA if ema else MODEL)


SNAPSHOT_INFO = "snapshot.json"  # beside a snapshot's weights: when it was taken (step, wall time, threads)


def save_snapshot(folder: str | Path, step: int, model, ema_state: dict, wall_time: float | None = None) -> None:
    """The raw and EMA weights of a training run at `step`, kept beside its checkpoint, with the training's wall time
    so far, this process's threads and their product in CPU hours (what quality-against-CPU-hours curves read:
    snapshot_info)."""
    snapshot_path(folder, step).parent.mkdir(parents=True, exist_ok=True)
    save_tensors(model.state_dict(), snapshot_path(folder, step, ema=False))
    save_tensors(ema_state, snapshot_path(folder, step, ema=True))
    if wall_time is not None:
        threads, wall = torch.get_num_threads(), round(wall_time, 1)
        save_json({"step": step, "wall_time_s": wall, "threads": threads, "cpu_hours": round(wall * threads / 3600, 4)},
                  snapshot_path(folder, step).parent / SNAPSHOT_INFO)


def snapshot_info(folder: str | Path, step: int) -> dict | None:
    """What save_snapshot recorded with a snapshot ({"step", "wall_time_s", "threads", "cpu_hours"}); None for a
    snapshot kept before it recorded anything."""
    path = snapshot_path(folder, step).parent / SNAPSHOT_INFO
    return json.loads(path.read_text()) if path.exists() else None


def snapshot_steps(folder: str | Path) -> list[int]:
    """The steps of a checkpoint's snapshots, sorted; CheckpointError if there are none."""
    root = Path(folder) / SNAPSHOTS
    steps = sorted(int(m.group(1)) for p in (root.iterdir() if root.is_dir() else [])
                   if (m := re.fullmatch(r"step-(\d+)", p.name)) and p.is_dir())
    if not steps:
        raise CheckpointError(
            f"{folder} has no snapshots ({root}/step-XXXXXX/ with model.safetensors and ema.safetensors); they are "
            "written by `python -m helpers.train ... --keep-every K` and are not committed")
    return steps


CALIBRATION = "calibration.json"  # fitted settings of our samplers (helpers.samplers.cn2m, lsq_ms), by sampler name


def read_calibration(folder: str | Path) -> dict:
    """The checkpoint's calibration.json ({} when there is none); a file that is not a JSON object is refused."""
    path = Path(folder) / CALIBRATION
    if not path.is_file():
        return {}
    try:
        calibration = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); calibrate again to rewrite it") from None
    if not isinstance(calibration, dict):
        raise CheckpointError(f"{path} holds {type(calibration).__name__}, not an object of calibrations by sampler")
    wrong = [name for name, value in calibration.items() if not isinstance(value, dict)]
    if wrong:
        raise CheckpointError(f"{path}: the calibration of {', '.join(wrong)} is not an object (of settings); "
                              "calibrate again to rewrite it")
    return calibration


def sampling_defaults(folder: str | Path, sampler: str | None = None) -> dict:
    """What the checkpoint in `folder` samples with by default, the one answer for the CLI, the benchmark and the
    denoiser: its card's "sampling" (a distilled student's sampler and grid; a latent model's clip_x0) when `sampler`
    is None or the card's own (a card's clip_x0 alone holds for every sampler), else the spacing of `sampler`'s
    calibration. Keys among sampler, steps, spacing, eta, clip_x0; absent keys are the sampler's own defaults."""
    sampling = read_card(folder).get("sampling", {}) if has_checkpoint(folder) else {}
    if sampler in (None, sampling.get("sampler")) or "sampler" not in sampling:
        own = dict(sampling)
    else:
        own = {}
    spacing = read_calibration(folder).get(sampler or own.get("sampler") or "", {}).get("spacing")
    if "spacing" not in own and spacing is not None:
        own["spacing"] = spacing
    return own
