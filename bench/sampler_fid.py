"""FID against network evaluations (NFE) for every sampler on the shipped MNIST model, written to a CSV that
notebook 05 reads.

    python bench/sampler_fid.py                       # the full grid, N = 1000 (hours of CPU; resumable)
    python bench/sampler_fid.py --grid quick --num 50 --csv /tmp/quick.csv

Every configuration draws images 0..N-1 of seed 0 (image i starts from the same x_T in every configuration) from the
EMA weights of checkpoints/ddpm-mnist, keeps them as PNGs under samples/bench/NAME/ (reused and continued if a run was
stopped) and scores them against the MNIST test split with the MNIST-CNN features. Time per image is measured on the
images drawn in the run that drew them, with the network compiled by torch.compile unless --no-compile; when other
work shared the CPU meanwhile, `--retime K` measures it again on images 0..K-1 of every configuration in the CSV
(not saved; the scores stay those of the N images).
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers.cost import gflop_per_call  # noqa: E402
from helpers.data import load_pngs, save_pngs  # noqa: E402
from helpers.denoisers import from_checkpoint  # noqa: E402
from helpers.metrics import compute_features, reference_features, scores  # noqa: E402
from helpers.samplers import generate  # noqa: E402

# (sampler, steps, eta[, spacing]), most informative first so that a partial run is already useful; the spacing is
# linspace unless given.
GRIDS = {
    "full": [("ddim", 10, 0.0), ("dpmpp-2m", 10, None), ("ddim", 50, 0.0), ("ddpm", 1000, None),
             ("ddim", 20, 0.0), ("dpmpp-2m", 20, None), ("heun", 5, None), ("heun", 10, None),
             ("ddpm", 10, None), ("ddpm", 20, None), ("ddpm", 50, None), ("ddpm", 100, None),
             ("ddim", 100, 0.0), ("dpmpp-2m", 50, None), ("heun", 25, None),
             ("ddim", 10, 0.2), ("ddim", 10, 0.5), ("ddim", 10, 1.0), ("ddim", 20, 0.2), ("ddim", 20, 0.5),
             ("ddim", 20, 1.0), ("ddim", 50, 0.2), ("ddim", 50, 0.5), ("ddim", 50, 1.0),
             ("ddim", 1000, 0.0), ("dpmpp-2m", 100, None), ("heun", 50, None),
             # Karras et al.'s sigma spacing (dense at low noise) for the ODE solvers at low NFE.
             ("heun", 5, None, "karras"), ("heun", 10, None, "karras"), ("dpmpp-2m", 10, None, "karras"),
             ("dpmpp-2m", 20, None, "karras"), ("ddim", 10, 0.0, "karras")],
    "quick": [("ddim", 10, 0.0), ("dpmpp-2m", 10, None), ("heun", 3, None), ("ddpm", 10, None)],
}
FIELDS = ["name", "sampler", "steps", "eta", "spacing", "nfe", "num", "features", "fid", "kid", "kid_std", "s_per_image",
          "timed_images", "compiled", "threads", "gflop_per_call", "checkpoint", "seed"]


def config_name(sampler: str, steps: int, eta: float | None, spacing: str = "linspace") -> str:
    return (f"{sampler}-{steps}" + ("" if eta is None else f"-eta{eta:g}")
            + ("" if spacing == "linspace" else f"-{spacing}"))


def draw(denoiser, folder: Path, sampler: str, steps: int, eta, spacing: str, num: int, seed: int,
         batch_size: int) -> dict:
    """Draw the images of `folder` that are missing (continuing from the PNGs already there); returns timing."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "timing.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"seconds": 0.0, "images": 0, "nfe": None}
    have = len(list(folder.glob("*.png"))) // batch_size * batch_size
    if have < num:
        options = {} if eta is None else {"eta": eta}
        nfe_before, start = denoiser.nfe, time.perf_counter()
        generate(denoiser, num - have, seed, sampler=sampler, steps=steps, spacing=spacing,
                 batch_size=batch_size, first_index=have, on_batch=lambda i, images: save_pngs(images, folder, start=have + i), **options)
        batches = -(-(num - have) // batch_size)
        meta = {"seconds": meta["seconds"] + time.perf_counter() - start, "images": meta["images"] + num - have,
                "nfe": (denoiser.nfe - nfe_before) // batches}
        meta_path.write_text(json.dumps(meta) + "\n")
    return meta


def retime(denoiser, rows: dict, args) -> None:
    """Time drawing images 0..K-1 (one batch of K) of every row again and update its time per image."""
    for name, row in rows.items():
        if args.only and name not in args.only:
            continue
        eta = None if row["eta"] in ("", None) else float(row["eta"])
        options = {} if eta is None else {"eta": eta}
        start = time.perf_counter()
        generate(denoiser, args.retime, args.seed, sampler=row["sampler"], steps=int(row["steps"]),
                 spacing=row.get("spacing") or "linspace", batch_size=args.retime, **options)
        seconds = time.perf_counter() - start
        row.update(s_per_image=round(seconds / args.retime, 5), timed_images=args.retime, compiled=args.compile,
                   threads=torch.get_num_threads())
        write_rows(args.csv, rows)
        print(f"{name}: {row['s_per_image']} s/image (retimed on {args.retime} images)", flush=True)


def read_rows(path: Path) -> dict:
    if not path.exists():
        return {}
    with path.open() as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def write_rows(path: Path, rows: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows.values())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/ddpm-mnist")
    p.add_argument("--grid", choices=GRIDS, default="full")
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--samples", type=Path, default=ROOT / "samples" / "bench")
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "fid_vs_nfe.csv")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--only", action="append", help="a configuration name, e.g. ddim-10-eta0 (repeatable)")
    p.add_argument("--retime", type=int, default=0, help="only re-measure the time per image of the CSV's rows on K images")
    args = p.parse_args(argv)

    denoiser, card = from_checkpoint(ROOT / args.checkpoint)
    shape = denoiser.sample_shape  # from the model card
    x, t = torch.randn(2, *shape), torch.full((2,), 500)
    gflop = gflop_per_call(denoiser.net, x, t)
    if args.compile:  # compiled once, then warmed up at the batch size so that no timing includes compilation
        denoiser.net = torch.compile(denoiser.net)
        batch = args.retime or args.batch_size
        with torch.no_grad():  # as in the samplers (a different grad mode would recompile)
            denoiser.net(torch.randn(batch, *shape).contiguous(memory_format=torch.channels_last),
                         torch.full((batch,), 500))
    rows = read_rows(args.csv)
    if args.retime:
        retime(denoiser, rows, args)
        return 0
    real = reference_features("mnist:test")
    for sampler, steps, eta, *rest in GRIDS[args.grid]:
        spacing = rest[0] if rest else "linspace"
        name = config_name(sampler, steps, eta, spacing)
        if (args.only and name not in args.only) or (name in rows and int(rows[name]["num"]) == args.num):
            continue
        timing = draw(denoiser, args.samples / f"{name}-seed{args.seed}", sampler, steps, eta, spacing, args.num,
                      args.seed, args.batch_size)
        images = load_pngs(args.samples / f"{name}-seed{args.seed}", limit=args.num)
        s = scores(compute_features(images, "mnist-cnn"), real, "mnist-cnn", seed=args.seed)
        rows[name] = {"name": name, "sampler": sampler, "steps": steps, "eta": "" if eta is None else eta, "spacing": spacing,
                      "nfe": timing["nfe"], "num": args.num, "features": "mnist-cnn", "fid": round(s.fid, 3),
                      "kid": round(s.kid, 6), "kid_std": round(s.kid_std, 6),
                      "s_per_image": round(timing["seconds"] / timing["images"], 5), "timed_images": timing["images"],
                      "compiled": args.compile, "threads": torch.get_num_threads(), "gflop_per_call": round(gflop, 4),
                      "checkpoint": args.checkpoint, "seed": args.seed}
        write_rows(args.csv, rows)
        print(f"{name}: NFE {timing['nfe']}, {s}, {rows[name]['s_per_image']} s/image", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
