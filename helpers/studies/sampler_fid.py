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
from helpers.datasets.images import DataUnavailableError, load_pngs, save_pngs
from helpers.denoisers import DiffusersModelError, from_checkpoint
from helpers.evaluation.features import valid_share
from helpers.evaluation.metrics import compute_features, fid_blocks, reference_features, scores
from helpers.samplers.registry import SAMPLER_REGISTRY
from helpers.samplers import generate
from helpers.studies import bench
from helpers.checkpoints import CheckpointError, sampling_defaults, trained_step
from helpers.studies.bench import claim_folder, read_rows
from helpers.studies.grids import CHAINS, GRIDS

FIELDS = ["name", "sampler", "steps", "eta", "spacing", "nfe", "num", "features", "fid", "kid", "kid_std", "s_per_image",
          "timed_images", "compiled", "threads", "gflop_per_call", "checkpoint", "seed", "clip_x0", "fid_lo", "fid_hi", "blocks", "fid_sd", "interval", "labels", "guidance", "valid_share", "fid_sets"]


def config_name(sampler: str, steps: int, eta: float | None, spacing: str = "linspace", clip: bool | None = None) -> str:
    """clip None is the sampler's default (DDPM and DDIM clip x0_hat to [-1, 1], the ODE solvers do not); an explicit
    choice is part of the name ("-clip", "-noclip"), so that both variants of one sampler can share a CSV."""
    return (f"{sampler}-{steps}" + ("" if eta is None else f"-eta{eta:g}")
            + ("" if spacing == "linspace" else f"-{spacing}") + {None: "", True: "-clip", False: "-noclip"}[clip])


FITTED = ("lsq-ms", "lsq-sde", "gn-2m", "gn-2m-noise", "gn-2m-grid")  # samplers whose settings a calibration fits per number of steps


def fitted_steps(checkpoint, sampler: str) -> set[str]:
    """The step counts that `checkpoint`'s calibration.json holds a fit of `sampler` for."""
    path = ROOT / checkpoint / "calibration.json"
    return set(json.loads(path.read_text()).get(sampler, {}).get("fits", {})) if path.exists() else set()


def up_to_date(row: dict | None, num: int, blocks: int) -> bool:
    """Whether a CSV row already answers a configuration: the same N, at least as many sets, an interval and, for
    several sets, the per-set FIDs that paired comparisons read (older rows are scored again, from their saved PNGs
    where these still exist)."""
    return (row is not None and int(row["num"]) == num and int(row.get("blocks") or 1) >= blocks
            and bool(row.get("interval")) and (blocks == 1 or bool(str(row.get("fid_sets") or "").strip())))


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
        # (compilation, allocation; seen: 0.66 s against 0.02 s per image), which the timed call must not include; a
        # fitted sampler has coefficients for its own step counts only, so it warms up on those
        run(int(row["steps"]) if row["sampler"] in FITTED else min(2, int(row["steps"])))
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
           "valid_share": "" if judge is None else round(valid_share(judge, images), 4),
           "fid_sets": " ".join(f"{v:.3f}" for v in f["sets"])}
    return row, timing, f, s


def paired_sets(rows, a: str, b: str):
    """FID(a) - FID(b) over the sets of two rows of a benchmark CSV (a DataFrame indexed by name, or a dict of rows)
    drawn from the same seed, N and labels, so that set k of both starts from the same noise: the t-interval of the
    per-set differences (stats.paired_sets)."""
    from helpers.evaluation import stats

    ra, rb = rows.loc[a] if hasattr(rows, "loc") else rows[a], rows.loc[b] if hasattr(rows, "loc") else rows[b]
    for key in ("seed", "num", "labels"):
        if str(ra.get(key, "")) != str(rb.get(key, "")):
            raise ValueError(f"{a} and {b} were not drawn from the same noise: {key} {ra.get(key)} against {rb.get(key)}")
    sets = []
    for name, r in ((a, ra), (b, rb)):
        text = r.get("fid_sets", "")
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"row {name} keeps no per-set FIDs (measured before they were kept): score it again with "
                             f"--only {name}")
        sets.append([float(v) for v in text.split()])
    return stats.paired_sets(*sets)


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


def grid_names(grid: str, checkpoint: str) -> list[str]:
    """The configuration names of a grid (a chain's student by its row name, trained or not)."""
    return [f"{CHAINS[e[0]][0]}-{e[1]}" if e[0] in CHAINS else resolve(e, checkpoint)["name"] for e in GRIDS[grid]]


def main(argv=None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.guidance is not None and args.labels == "none":
        p.error("--guidance needs --labels balanced (guidance steers towards a class)")
    if args.only and not (args.copy_from or args.retime):
        unknown = [n for n in args.only if n not in grid_names(args.grid, args.checkpoint)]
        if unknown:
            p.error(f"--only {', '.join(unknown)}: not a configuration of --grid {args.grid} (its names: "
                    f"{', '.join(grid_names(args.grid, args.checkpoint))})")
    try:
        return run(args)
    except (ValueError, OSError, CheckpointError, DataUnavailableError, DiffusersModelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the rows written so far are kept; the same command continues from the saved images",
              file=sys.stderr)
        return 130


def run(args) -> int:
    """The benchmark of main(): copy rows, re-time rows, or draw and score every configuration of the grid that the
    CSV does not yet answer."""
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
        if c["sampler"] in FITTED and str(c["steps"]) not in fitted_steps(c["checkpoint"], c["sampler"]):
            how = (SAMPLER_REGISTRY[c["sampler"]].calibrate
                   or f"python -m helpers.samplers.{c['sampler'].replace('-', '_')} --checkpoint <its folder>")
            print(f"{name}: skipped, {c['checkpoint']} has no {c['sampler']} calibration for {c['steps']} steps yet "
                  f"({how.format(steps=c['steps']).replace('<its folder>', c['checkpoint'])})", flush=True)
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
