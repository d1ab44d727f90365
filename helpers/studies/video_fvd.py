"""Notebook 12's benchmark: video diffusion on moving MNIST, scored by FVD (our video features), per-frame FID
(MNIST-CNN features of each frame's digit) and temporal consistency, for several samplers, step counts, clip lengths
and the two video models (without and with VDM's joint image training).

    python bench/video_fvd.py --num 128                          # every row (hours on one thread; resumable)
    python bench/video_fvd.py --grid quick --num 8 --csv /tmp/v.csv --samples /tmp/v
    python bench/video_fvd.py --num 128 --rows vdm-ddpm-250-f8                  # one row (processes with disjoint --rows share the grid)

Every row draws clips 0..N-1 of seed 0 (clip i starts from the same noise in every row of the same length; a longer
clip's noise is not an extension of a shorter one's) and keeps them in samples/video/NAME/clips.pt (continued if a run
was stopped). The references are the first N_REF test clips of the same length (prefixes of the 16-frame test clips,
so the same trajectories at every length). Per-frame FID scores FRAME_FID_FRAMES evenly spaced frames of every clip,
generated and reference, at every length (FID's small-sample bias depends on the number of images, so scoring all
N x F frames would favour the longer clips). FVD and per-frame FID carry a 95% bootstrap interval over the generated
clips (metrics.fid_interval; a clip's frames are resampled together); consistency is the share of clips whose frames the MNIST classifier gives one label
(metrics.consistency, with a 95% Wilson interval); lit pixels the share of pixels brighter than -0.6 (metrics.lit_pixels:
in real clips only the digit's; noise a model leaves in the background lights more).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from helpers.paths import ROOT

from helpers.checkpoints import load_model, read_card, snapshot_path
from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser
from helpers.evaluation.digits import load_classifier
from helpers.datasets.images import load_images
from helpers.denoisers import from_checkpoint, from_snapshot
from helpers.evaluation.features import features
from helpers.evaluation.metrics import compute_features, consistency, fid_interval, lit_pixels
from helpers.datasets.moving_mnist import frame_digits
from helpers.samplers import generate
from helpers.studies import bench
from helpers.studies.bench import claim_folder, read_rows

# name -> checkpoint folder, or FOLDER@STEP for the snapshot of that step (FOLDER/snapshots/step-XXXXXX): the
# video-only model at the joint model's budget (4000 steps) is the snapshot its longer run kept.
MODELS = {"vdm": "checkpoints/vdm-mnist", "vdm-4k": "checkpoints/vdm-mnist@4000", "vdm-joint": "checkpoints/vdm-mnist-joint"}
# (model, sampler, steps, frames), most informative first
GRIDS = {
    "full": [("vdm", "ddim", 50, 8), ("vdm", "ddim", 10, 8), ("vdm", "ddpm", 50, 8), ("vdm", "ddim", 25, 8),
             ("vdm-4k", "ddim", 50, 8), ("vdm-joint", "ddim", 50, 8), ("vdm", "ddpm", 100, 8), ("vdm", "ddpm", 50, 4),
             ("vdm", "ddpm", 50, 16), ("vdm", "ddim", 50, 4), ("vdm", "ddim", 50, 16), ("vdm-4k", "ddim", 50, 16),
             ("vdm-joint", "ddim", 50, 16), ("vdm", "ddpm", 250, 8)],
    "quick": [("vdm", "ddim", 5, 8), ("vdm", "ddim", 5, 4)],
}
FIELDS = ["name", "model", "checkpoint", "step", "sampler", "steps", "frames", "num", "seed", "fvd", "fvd_lo", "fvd_hi",
          "frame_fid", "frame_fid_lo", "frame_fid_hi", "frame_fid_frames", "consistency", "consistency_lo", "consistency_hi",
          "frame_accuracy_confident", "lit_pixels", "s_per_clip", "threads", "reference_clips", "num_boot"]
N_REF = 2000  # test clips per reference
FRAME_FID_FRAMES = 4  # frames per clip that per-frame FID scores, at every clip length (the grid's shortest clips)


def split_spec(spec: str) -> tuple[str, int | None]:
    """(folder, step) of FOLDER@STEP, (folder, None) of FOLDER; a step that is not a whole number is refused."""
    folder, at, step = spec.partition("@")
    if not folder or (at and not step.isdigit()):
        raise ValueError(f"expected FOLDER or FOLDER@STEP with a whole-number STEP, got {spec!r}")
    return folder, int(step) if at else None


def trained(spec: str) -> tuple[int | None, str]:
    """(the step of a model spec's weights, "") when they are ready to sample, else (None, why not): a folder's
    training must have reached its own --steps; FOLDER@STEP names the snapshot of that step."""
    folder, at = split_spec(spec)
    if not (ROOT / folder / "model_card.json").exists():
        return None, f"{folder} is not trained yet"
    if at is not None:
        snapshot = snapshot_path(ROOT / folder, at)
        return (at, "") if snapshot.exists() else (None, f"{folder} has no snapshot of step {at} ({snapshot.parent})")
    card = read_card(ROOT / folder)
    step, total = card["step"], card["train"]["steps"]
    return (step, "") if step >= total else (None, f"{folder} is at step {step} of {total} (finish it with --resume)")


def denoiser_of(spec: str):
    folder, at = split_spec(spec)
    return from_snapshot(ROOT / folder, at) if at is not None else from_checkpoint(ROOT / folder)[0]


def name_of(model: str, sampler: str, steps: int, frames: int) -> str:
    return f"{model}-{sampler}-{steps}-f{frames}"


def draw(denoiser, folder: Path, sampler: str, steps: int, frames: int, num: int, seed: int, batch_size: int) -> dict:
    """The clips of `folder` (continuing a stopped run), and the sampling time per clip."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clips.pt"
    saved = torch.load(path) if path.exists() else {"clips": torch.empty(0), "seconds": 0.0}
    clips = [saved["clips"]] if len(saved["clips"]) else []
    have, seconds = len(saved["clips"]), saved["seconds"]
    shape = (frames, *denoiser.sample_shape[1:])
    while have < num:
        n = min(batch_size, num - have)
        start = time.perf_counter()
        clips.append(generate(denoiser, n, seed, shape, sampler=sampler, steps=steps, batch_size=n, first_index=have))
        seconds += time.perf_counter() - start
        have += n
        torch.save({"clips": torch.cat(clips), "seconds": seconds}, path)
    return {"clips": torch.cat(clips)[:num], "s_per_clip": seconds / max(have, 1)}


def spaced_frames(clips: torch.Tensor, k: int = FRAME_FID_FRAMES) -> torch.Tensor:
    """k evenly spaced frames of each clip, first and last included: [N, F, ...] -> [N, k, ...] (F = 8: 0, 2, 5, 7)."""
    if clips.shape[1] < k:
        raise ValueError(f"per-frame FID scores {k} frames per clip; these clips have {clips.shape[1]}")
    return clips[:, torch.linspace(0, clips.shape[1] - 1, k).round().long()]


def references(feature_net, frames: int, cache: dict, n: int = N_REF) -> dict:
    """Video features, and per-frame MNIST-CNN features of spaced_frames, of the first `n` test clips of `frames` frames."""
    if frames not in cache:
        clips = load_images("moving-mnist:16:test").images[:n, :frames]
        cache[frames] = {"video": features(feature_net, clips),
                         "frames": compute_features(frame_digits(spaced_frames(clips)), "mnist-cnn")}
    return cache[frames]


def score(clips: torch.Tensor, ref: dict, feature_net, classifier, seed: int, num_boot: int = 200) -> dict:
    fvd, fvd_lo, fvd_hi = fid_interval(features(feature_net, clips), ref["video"], num_boot, seed=seed)
    digits = frame_digits(spaced_frames(clips))
    ffid, ffid_lo, ffid_hi = fid_interval(compute_features(digits, "mnist-cnn"), ref["frames"], num_boot, seed=seed,
                                          group=FRAME_FID_FRAMES)
    c = {k: round(v, 4) for k, v in consistency(clips, classifier).items()}
    c["lit_pixels"] = round(lit_pixels(clips), 4)
    return {"fvd": round(fvd, 3), "fvd_lo": round(fvd_lo, 3), "fvd_hi": round(fvd_hi, 3), "frame_fid": round(ffid, 3),
            "frame_fid_lo": round(ffid_lo, 3), "frame_fid_hi": round(ffid_hi, 3), "frame_fid_frames": FRAME_FID_FRAMES, **c}


def write_rows(path: Path, rows: dict) -> None:
    bench.write_rows(path, rows, FIELDS)


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--grid", choices=GRIDS, default="full")
    p.add_argument("--num", type=positive_int, default=128)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--reference-clips", type=positive_int, default=N_REF, help="test clips per reference")
    p.add_argument("--num-boot", type=positive_int, default=200, help="bootstrap resamples per interval")
    p.add_argument("--features", default="checkpoints/video-features")
    p.add_argument("--model", action="append", default=[], metavar="NAME=FOLDER",
                   help="another checkpoint (FOLDER, or FOLDER@STEP for a snapshot) for a model name of the grid, e.g. vdm=/tmp/tiny")
    p.add_argument("--rows", default="", metavar="NAME[,NAME...]",
                   help="only these rows of the grid; processes given disjoint rows can share the grid (each adds its rows to the CSV; two processes on one row would write the same samples)")
    p.add_argument("--samples", type=Path, default=ROOT / "samples" / "video")
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "video_fvd.csv")
    args = p.parse_args(argv)
    models = dict(MODELS)
    for m in args.model:
        name, eq, spec = m.partition("=")
        if not eq:
            p.error(f"--model {m}: expected NAME=FOLDER or NAME=FOLDER@STEP")
        if name not in MODELS:
            p.error(f"--model {m}: NAME must be one of {', '.join(MODELS)}")
        try:
            split_spec(spec)
        except ValueError as e:
            p.error(f"--model {m}: {e}")
        models[name] = spec
    grid = GRIDS[args.grid]
    if args.rows:
        names, wanted = {name_of(*r): r for r in grid}, args.rows.split(",")
        unknown = [n for n in wanted if n not in names]
        if unknown:
            p.error(f"--rows {', '.join(unknown)}: not a row of --grid {args.grid} (rows: {', '.join(names)})")
        grid = [names[n] for n in wanted]
    feature_net, _ = load_model(ROOT / args.features)
    classifier = load_classifier()
    rows, refs, loaded = read_rows(args.csv), {}, {}
    for model, sampler, steps, frames in grid:
        name = name_of(model, sampler, steps, frames)
        step, why_not = trained(models[model])
        if step is None:
            print(f"{name}: skipped, {why_not}", flush=True)
            continue
        done = rows.get(name, {})
        if [int(done.get(k) or -1) for k in ("num", "reference_clips", "num_boot", "step", "frame_fid_frames")] == [
                args.num, args.reference_clips, args.num_boot, step, FRAME_FID_FRAMES]:  # else (re)scored; drawn clips are kept
            continue
        if model not in loaded:
            loaded[model] = denoiser_of(models[model])
        folder = args.samples / f"{name}-seed{args.seed}"
        claim_folder(folder, {"checkpoint": models[model], "step": step, "row": name, "seed": args.seed})
        drawn = draw(loaded[model], folder, sampler, steps, frames, args.num, args.seed, args.batch_size)
        s = score(drawn["clips"], references(feature_net, frames, refs, args.reference_clips), feature_net, classifier, args.seed, args.num_boot)
        rows = read_rows(args.csv)  # the rows another process may have added meanwhile
        rows[name] = {"name": name, "model": model, "checkpoint": models[model], "step": step, "sampler": sampler, "steps": steps,
                      "frames": frames, "num": args.num, "seed": args.seed, **s, "s_per_clip": round(drawn["s_per_clip"], 4),
                      "threads": torch.get_num_threads(), "reference_clips": args.reference_clips,
                      "num_boot": args.num_boot}
        write_rows(args.csv, rows)
        print(f"{name}: FVD (our video features) {s['fvd']:.1f} [{s['fvd_lo']:.1f}, {s['fvd_hi']:.1f}], per-frame FID "
              f"{s['frame_fid']:.1f}, consistency {s['consistency']:.0%}, {drawn['s_per_clip']:.3f} s/clip", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
