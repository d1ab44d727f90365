"""FID against network evaluations (NFE) for every sampler on the shipped MNIST model, and for the distilled
students of notebook 06, written to CSVs that notebooks 05 and 06 read.

    python bench/sampler_fid.py                       # the full grid, N = 1000 (hours of CPU; resumable)
    python bench/sampler_fid.py --grid distill --no-compile --csv bench/results/distill_fid.csv   # notebook 06
    python bench/sampler_fid.py --grid quick --num 50 --csv /tmp/quick.csv
    python bench/sampler_fid.py --grid dit --checkpoint checkpoints/dit-mnist --labels balanced --no-compile \
        --csv bench/results/dit_fid.csv     # notebook 10: the latent DiT, image i asking for digit i % 10

A grid entry is (sampler, steps, eta[, spacing[, clip]]) on --checkpoint, or ("student", K): the distilled student
checkpoints/distill/v-K sampled as its model card says (its own grid of K steps, no clipping). A class-conditional
model samples with --labels balanced (image i asks for digit i % 10, so classes are balanced and image i asks for the
same digit in every configuration) and optionally CFG at --guidance W; a latent model's samples are decoded by its
autoencoder before they are scored. Every row has a 95%
interval for its FID: with --blocks K (for configurations of at most --blocks-max-nfe network calls per image), K
disjoint sets of N images are drawn and the row gives the mean FID at N over them with its t-interval
(metrics.fid_blocks); otherwise one set and a bootstrap interval over its images (metrics.fid_interval).

Every configuration draws images 0..N-1 of seed 0 (image i starts from the same x_T in every configuration) from the
EMA weights of checkpoints/ddpm-mnist, keeps them as PNGs under samples/bench/CHECKPOINT/NAME-seedS/ (continued if a
run was stopped, and only if the folder's made_by.json names the same checkpoint, training step and row) and scores
them against the MNIST test split with the MNIST-CNN features. Time per image is measured on the images drawn in the
run that drew them, with the network compiled by torch.compile unless --no-compile; when other
work shared the CPU meanwhile, `--retime K` measures it again on images 0..K-1 of every configuration in the CSV
(not saved; the scores stay those of the N images). Processes with disjoint --only share one --csv: each re-reads it
before adding its row.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from helpers.paths import ROOT

from helpers.checks import finite_float, non_negative_int, positive_int
from helpers.cli import ArgumentParser
from helpers.evaluation.cost import gflop_per_call
from helpers.datasets.images import load_pngs, save_pngs
from helpers.denoisers import from_checkpoint
from helpers.evaluation.features import valid_share
from helpers.evaluation.metrics import compute_features, fid_blocks, reference_features, scores
from helpers.samplers import generate
from helpers.studies import bench
from helpers.checkpoints import sampling_defaults, trained_step
from helpers.studies.bench import claim_folder, read_rows

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
             ("dpmpp-2m", 20, None, "karras"), ("ddim", 10, 0.0, "karras"),
             # Clipping x0_hat to [-1, 1], each sampler the other way from its default (issue 13).
             ("ddim", 50, 0.0, "linspace", False), ("dpmpp-2m", 20, None, "linspace", True),
             ("heun", 10, None, "linspace", True), ("ddim", 10, 0.0, "linspace", False),
             ("dpmpp-2m", 10, None, "linspace", True), ("ddpm", 1000, None, "linspace", False)],
    "quick": [("ddim", 10, 0.0), ("dpmpp-2m", 10, None), ("heun", 3, None), ("ddpm", 10, None)],
    # Notebook 06 (`make bench-distill`): the students against the teacher's samplers at the same NFE (on the students'
    # "trailing" grids, which start at t = 999; linspace's one-step grid would be t = 0) and DDIM-50 as in notebook 05.
    # DDPM-1000 (a million calls per set) is copied from notebook 05's CSV with --copy-from.
    "distill": [("student", 4), ("student", 8), ("student", 2), ("student", 1), ("ddim", 50, 0.0),
                *[("ddim", k, 0.0, "trailing") for k in (1, 2, 4, 8)],
                *[("dpmpp-2m", k, None, "trailing") for k in (2, 4, 8)],
                *[("ddpm", k, None, "trailing") for k in (1, 2, 4, 8)],
                ("student", 16), ("student", 32), ("student", 64)],
    "distill-quick": [("student", 4), ("ddim", 4, 0.0, "trailing")],
    # Issue 40, round 0: the first chain's conversion (v-128) against the teacher's own DDIM on the same grid, spacing
    # and clipping (trailing, no clipping), and the new round 0 (128 teacher steps to a 32-step student) against the
    # teacher's DDIM-32 and DDIM-128; then the new chain's students at their NFE (rows appear as rounds finish).
    "distill-round0": [("ddim", 128, 0.0, "trailing", False), ("student", 128), ("ddim", 32, 0.0, "trailing", False),
                       ("pd", 32)],
    "pd": [("pd", 16), ("pd", 8), ("pd", 4), ("pd", 2), ("pd", 1), ("ddim", 16, 0.0, "trailing", False),
           ("ddim", 8, 0.0, "trailing", False), ("ddim", 4, 0.0, "trailing", False)],
    # Notebook 07 (`make bench-fast`): our samplers (lsq-ms, cn-2m; calibrations in the checkpoint's calibration.json)
    # against DPM-Solver++(2M), all on trailing grids; run with --blocks 5 --blocks-max-nfe 10 (five sets of N = 1000 up
    # to 10 NFE, one set with a bootstrap interval at 15 and 20).
    "fast": [(name, k, None, "trailing") for k in (4, 5, 6, 8, 10, 15, 20) for name in ("lsq-ms", "cn-2m", "dpmpp-2m")],
    # ... and the other baselines and the all-stochastic ablation, one set each (run with --blocks 1); the rows at 4 and
    # 8 NFE and the students come from notebook 06's CSV (--copy-from). Heun's K steps cost 2K - 1 calls: K = 3, 5, 8,
    # 10 give NFE 5, 9, 15, 19.
    "fast-baselines": [*[(name, k, eta, "trailing") for k in (5, 6, 10, 15, 20) for name, eta in (("ddim", 0.0), ("ddpm", None))],
                       *[("heun", k, None, "trailing") for k in (3, 5, 8, 10)],
                       *[("dpmpp-2m-sde", k, 1.0, "trailing") for k in (6, 10)]],
    "fast-quick": [("lsq-ms", 4, None, "trailing"), ("dpmpp-2m", 4, None, "trailing")],
    # Notebook 10 (`make bench-dit`): the latent DiT's steps question, DDIM and DPM-Solver++(2M) at 5 to 250 steps.
    # Ancestral DDPM at 50 and 100 steps too: is the ODE samplers' plateau the ODE's, as for the pixel U-Net (notebook 05)?
    "dit": [*[(name, k, eta) for k in (5, 10, 20, 50) for name, eta in (("ddim", 0.0), ("dpmpp-2m", None))],
            *[(name, k, eta) for k in (100, 250) for name, eta in (("ddim", 0.0), ("dpmpp-2m", None))],
            ("ddpm", 50, None), ("ddpm", 100, None)],
    "dit-quick": [("ddim", 5, 0.0), ("dpmpp-2m", 5, None)],
    # Notebook 09 (`make bench-shapes`): the colour models at each size, DDIM and ancestral DDPM at several step counts,
    # scored on the shapes' attribute classifier of that size (--features feature-net:FOLDER --reference shapes:S:test).
    "shapes": [("ddim", 10, 0.0), ("ddim", 25, 0.0), ("ddim", 50, 0.0), ("ddpm", 50, None), ("ddim", 100, 0.0),
               ("ddpm", 100, None), ("ddpm", 250, None)],
    "shapes-quick": [("ddim", 5, 0.0), ("ddpm", 5, None)],
}
STUDENTS = "checkpoints/distill/v-{}"  # ("student", K) rows: the first chain (600-1000 steps a round)
# ("pd", K) rows: the chain trained to convergence by the held-out rule (make distill-mnist, issue 40)
CHAINS = {"student": ("student", STUDENTS), "pd": ("pd", "checkpoints/pd-mnist/v-{}")}
FIELDS = ["name", "sampler", "steps", "eta", "spacing", "nfe", "num", "features", "fid", "kid", "kid_std", "s_per_image",
          "timed_images", "compiled", "threads", "gflop_per_call", "checkpoint", "seed", "clip_x0", "fid_lo", "fid_hi", "blocks", "fid_sd", "interval", "labels", "guidance", "valid_share"]


def config_name(sampler: str, steps: int, eta: float | None, spacing: str = "linspace", clip: bool | None = None) -> str:
    """clip None is the sampler's default (DDPM and DDIM clip x0_hat to [-1, 1], the ODE solvers do not); an explicit
    choice is part of the name ("-clip", "-noclip"), so that both variants of one sampler can share a CSV."""
    return (f"{sampler}-{steps}" + ("" if eta is None else f"-eta{eta:g}")
            + ("" if spacing == "linspace" else f"-{spacing}") + {None: "", True: "-clip", False: "-noclip"}[clip])


def up_to_date(row: dict | None, num: int, blocks: int) -> bool:
    """Whether a CSV row already answers a configuration: the same N, at least as many sets, and an interval (rows
    written before the benchmark gave intervals are scored again, from their saved PNGs where these still exist)."""
    return (row is not None and int(row["num"]) == num and int(row.get("blocks") or 1) >= blocks
            and bool(row.get("interval")))


def resolve(entry: tuple, checkpoint: str) -> dict:
    """A grid entry as (name, checkpoint, sampler, steps, eta, spacing, clip); a student's options come from its card
    (None for a student whose round has not finished)."""
    if entry[0] in CHAINS:
        prefix, pattern = CHAINS[entry[0]]
        folder = pattern.format(entry[1])
        card_path = ROOT / folder / "model_card.json"
        card = json.loads(card_path.read_text()) if card_path.exists() else None
        if card is None or card["step"] < card.get("planned_steps", card["train"]["steps"]):
            return None  # not trained yet, or its round is unfinished: a later run adds the row
        sampling = sampling_defaults(ROOT / folder)
        return {"name": f"{prefix}-{entry[1]}", "checkpoint": folder, "sampler": sampling["sampler"],
                "steps": sampling["steps"], "eta": sampling.get("eta"), "spacing": sampling["spacing"],
                "clip": sampling.get("clip_x0", True)}
    sampler, steps, eta, *rest = entry
    spacing = rest[0] if rest else "linspace"
    clip = rest[1] if len(rest) > 1 else None
    return {"name": config_name(sampler, steps, eta, spacing, clip), "checkpoint": checkpoint, "sampler": sampler,
            "steps": steps, "eta": eta, "spacing": spacing, "clip": clip}


def image_labels(denoiser, labels: str, first: int, last: int):
    """The class labels of images first..last-1 (None: unconditional sampling)."""
    if labels == "none":
        return None
    from helpers.denoisers import model_num_classes

    num_classes = model_num_classes(denoiser)
    if num_classes is None:
        raise SystemExit("error: --labels balanced needs a class-conditional checkpoint; this one is unconditional")
    return torch.arange(first, last) % num_classes


def draw(denoiser, folder: Path, sampler: str, steps: int, eta, spacing: str, num: int, seed: int,
         batch_size: int, clip: bool | None = None, labels: str = "none") -> dict:
    """Draw the images of `folder` that are missing (continuing from the PNGs already there); returns timing."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "timing.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"seconds": 0.0, "images": 0, "nfe": None}
    have = len(list(folder.glob("*.png"))) // batch_size * batch_size
    if have < num:
        options = ({} if eta is None else {"eta": eta}) | ({} if clip is None else {"clip_x0": clip})
        nfe_before, start = denoiser.nfe, time.perf_counter()
        generate(denoiser, num - have, seed, sampler=sampler, steps=steps, spacing=spacing,
                 batch_size=batch_size, first_index=have, y=image_labels(denoiser, labels, have, num), on_batch=lambda i, images: save_pngs(images, folder, start=have + i), **options)
        batches = -(-(num - have) // batch_size)
        meta = {"seconds": meta["seconds"] + time.perf_counter() - start, "images": meta["images"] + num - have,
                "nfe": (denoiser.nfe - nfe_before) // batches}
        meta_path.write_text(json.dumps(meta) + "\n")
    return meta


def retime(denoisers, rows: dict, args) -> None:
    """Time drawing images 0..K-1 (one batch of K) of every row again and update its time per image."""
    for name, row in rows.items():
        if args.only and name not in args.only:
            continue
        eta = None if row["eta"] in ("", None) else float(row["eta"])
        clip = {"True": True, "False": False}.get(row.get("clip_x0") or "")
        options = ({} if eta is None else {"eta": eta}) | ({} if clip is None else {"clip_x0": clip})
        denoiser = denoisers(row["checkpoint"])
        run = lambda steps: generate(denoiser, args.retime, args.seed, sampler=row["sampler"],
                                     steps=steps, spacing=row.get("spacing") or "linspace", batch_size=args.retime,
                                     y=image_labels(denoiser, row.get("labels") or "none", 0, args.retime), **options)
        # untimed, two steps on the same batch: a process's first sampling call at a batch size pays one-off costs
        # (compilation, allocation; seen: 0.66 s against 0.02 s per image), which the timed call must not include
        run(min(2, int(row["steps"])))
        start = time.perf_counter()
        run(int(row["steps"]))
        seconds = time.perf_counter() - start
        row.update(s_per_image=round(seconds / args.retime, 5), timed_images=args.retime, compiled=args.compile,
                   threads=torch.get_num_threads())
        write_rows(args.csv, rows)
        print(f"{name}: {row['s_per_image']} s/image (retimed on {args.retime} images)", flush=True)


def copy_rows(args, rows: dict) -> int:
    """Rows of another benchmark CSV (the same network, seed and features; e.g. notebook 05's DDPM-1000, too
    expensive to draw twice) into this one; a row of one set gets no interval, and says where it came from."""
    source = read_rows(args.copy_from)
    missing = [name for name in args.only or [] if name not in source]
    if not args.only or missing:
        print(f"error: --copy-from needs --only with rows of {args.copy_from}; missing: {', '.join(missing) or 'none given'}",
              file=sys.stderr)
        return 2
    for name in args.only:
        row = {k: source[name].get(k, "") for k in FIELDS}
        row.update(blocks=row["blocks"] or 1, interval=row["interval"] or f"none: one set, copied from {args.copy_from.name}",
                   clip_x0=row["clip_x0"] or (row["sampler"] in ("ddpm", "ddim")))
        rows[name] = row
        print(f"{name}: copied from {args.copy_from}")
    write_rows(args.csv, rows)
    return 0


def write_rows(path: Path, rows: dict) -> None:
    bench.write_rows(path, rows, FIELDS)


def denoiser_cache(args):
    """checkpoint -> its denoiser (EMA weights), loaded once; compiled (and warmed up at the batch size, so that no
    timing includes compilation) unless --no-compile."""
    cache = {}

    def get(checkpoint: str):
        if checkpoint not in cache:
            denoiser, _ = from_checkpoint(ROOT / checkpoint)
            if args.compile:
                denoiser.net = torch.compile(denoiser.net)
                batch = args.retime or args.batch_size
                with torch.no_grad():  # as in the samplers (a different grad mode would recompile)
                    denoiser.net(torch.randn(batch, *denoiser.sample_shape).contiguous(memory_format=torch.channels_last),
                                 torch.full((batch,), 500))
            if args.guidance is not None:
                from helpers.samplers.guidance import CFGDenoiser

                denoiser = CFGDenoiser(denoiser, args.guidance, source=checkpoint)
            cache[checkpoint] = denoiser
        return cache[checkpoint]

    return get


def measure(c: dict, args, denoiser, real, judge, blocks: int) -> tuple[dict, dict, dict, object]:
    """Draw one configuration's images (resumable from its folder), score them, and return its CSV row, the timing,
    the FID interval and the KID scores."""
    shape = denoiser.sample_shape  # from the model card
    net = getattr(denoiser, "denoiser", denoiser).net  # under CFG, the wrapped model's network
    gflop = gflop_per_call(getattr(net, "_orig_mod", net), torch.randn(2, *shape), torch.full((2,), 500))
    folder = args.samples / Path(str(c["checkpoint"])).name / f"{c['name']}-seed{args.seed}"
    claim_folder(folder, {"checkpoint": str(c["checkpoint"]), "step": trained_step(ROOT / c["checkpoint"]), "row": c["name"],
                          "seed": args.seed, "labels": args.labels, "guidance": args.guidance})
    timing = draw(denoiser, folder, c["sampler"], c["steps"], c["eta"], c["spacing"], blocks * args.num, args.seed,
                  args.batch_size, c["clip"], args.labels)
    images = load_pngs(folder, limit=blocks * args.num)
    feats = compute_features(images, args.features)
    s = scores(feats, real, args.features, seed=args.seed)  # KID (unbiased at any N) on all the images
    f = fid_blocks(feats, real, args.num)
    own = getattr(denoiser, "clip_x0", None)  # a latent model's own (False), else the samplers' defaults
    clip = c["clip"] if c["clip"] is not None else own if own is not None else c["sampler"] in ("ddpm", "ddim")
    # (every other sampler's clip_x0 defaults to False)
    row = {"name": c["name"], "sampler": c["sampler"], "steps": c["steps"], "eta": "" if c["eta"] is None else c["eta"],
           "spacing": c["spacing"], "nfe": timing["nfe"], "num": args.num, "features": args.features,
           "fid": round(f["fid"], 3), "kid": round(s.kid, 6), "kid_std": round(s.kid_std, 6),
           "s_per_image": round(timing["seconds"] / timing["images"], 5), "timed_images": timing["images"],
           "compiled": args.compile, "threads": torch.get_num_threads(), "gflop_per_call": round(gflop, 4),
           "checkpoint": c["checkpoint"], "seed": args.seed, "clip_x0": clip, "fid_lo": round(f["lo"], 3),
           "fid_hi": round(f["hi"], 3), "blocks": f["blocks"], "fid_sd": round(f["sd"], 3), "interval": f["interval"],
           "labels": args.labels, "guidance": "" if args.guidance is None else args.guidance,
           "valid_share": "" if judge is None else round(valid_share(judge, images), 4)}
    return row, timing, f, s


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m helpers.studies.sampler_fid", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/ddpm-mnist")
    p.add_argument("--grid", choices=GRIDS, default="full")
    p.add_argument("--num", type=positive_int, default=1000)
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--batch-size", type=positive_int, default=250)
    p.add_argument("--blocks", type=positive_int, default=1, help="disjoint sets of --num images per configuration")
    p.add_argument("--blocks-max-nfe", type=positive_int, default=64, help="configurations with more steps draw one set")
    p.add_argument("--samples", type=Path, default=ROOT / "samples" / "bench")
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "fid_vs_nfe.csv")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--only", action="append", help="a configuration name, e.g. ddim-10-eta0 (repeatable)")
    p.add_argument("--retime", type=non_negative_int, default=0, help="only re-measure the time per image of the CSV's rows on K images")
    p.add_argument("--labels", choices=("none", "balanced"), default="none",
                   help="balanced: image i asks for class i %% num_classes (a class-conditional model)")
    p.add_argument("--guidance", type=finite_float, default=None, help="CFG scale w (diffusers' convention; with --labels balanced)")
    p.add_argument("--features", default="mnist-cnn", help="the feature network: mnist-cnn or feature-net:FOLDER")
    p.add_argument("--reference", default="mnist:test", help="the real data scored against, e.g. shapes:32:test")
    p.add_argument("--copy-from", type=Path, default=None,
                   help="only copy the rows named by --only from this CSV (another grid's run) into --csv, marked as copied")
    return p


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.guidance is not None and args.labels == "none":
        p.error("--guidance needs --labels balanced (guidance steers towards a class)")

    rows = read_rows(args.csv)
    if args.copy_from:
        return copy_rows(args, rows)
    denoisers = denoiser_cache(args)
    if args.retime:
        retime(denoisers, rows, args)
        return 0
    real = reference_features(args.reference, args.features)
    judge = None  # a feature network also judges each sample's attributes (the share read with confidence)
    if args.features.startswith("feature-net:"):
        from helpers.checkpoints import load_model
        from helpers.evaluation.metrics import feature_net_weights

        judge = load_model(feature_net_weights(args.features).parent)[0]
    for entry in GRIDS[args.grid]:
        c = resolve(entry, args.checkpoint)
        if c is None:
            print(f"{entry}: skipped, {CHAINS[entry[0]][1].format(entry[1])} is not a finished student yet", flush=True)
            continue
        name = c["name"]
        blocks = args.blocks if c["steps"] <= args.blocks_max_nfe else 1
        if (args.only and name not in args.only) or up_to_date(rows.get(name), args.num, blocks):
            continue
        row, timing, f, k = measure(c, args, denoisers(c["checkpoint"]), real, judge, blocks)
        rows = read_rows(args.csv)  # the rows another process with disjoint --only may have added meanwhile
        rows[name] = row
        write_rows(args.csv, rows)
        print(f"{name}: NFE {timing['nfe']}, FID at N={args.num} {f['fid']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}] ({f['interval']}), "
              f"KID {k.kid:.3f} +- {k.kid_std:.3f}, {rows[name]['s_per_image']} s/image", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
