"""Paired comparisons of benchmark rows: FID(A) - FID(B) with a 95% paired-bootstrap interval, from the samples that
bench/sampler_fid.py kept. Image i of every row of one checkpoint and seed starts from the same x_T, so the noise the
two rows share cancels out of the difference, and a paired interval that excludes 0 resolves a comparison whose two
FID intervals overlap (metrics.fid_difference). Notebook 05 prints these verdicts beside the overlap rule's.

    python bench/paired_fid.py                  # notebook 05's comparisons, written to bench/results/fid_pairs.csv
    python bench/paired_fid.py --pair ddpm-50:ddpm-100 --out /tmp/p.csv

Run after `make bench` (it needs the PNGs under samples/bench of every row it compares; a row whose samples are gone,
or were made by another checkpoint or training step, is refused with one line). The FID recomputed from the PNGs must
equal the row's to three decimals, so a pair is scored on exactly the images its rows were.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.paths import ROOT

from helpers.evaluation import stats
from helpers.checkpoints import trained_step
from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser
from helpers.datasets.images import load_pngs
from helpers.evaluation.metrics import compute_features, fid_difference, frechet_to, reference_features
from helpers.studies.bench import read_rows, write_rows


def notebook05_pairs(names) -> list[tuple[str, str]]:
    """Notebook 05's comparisons (A, B) among the rows `names`: DDPM's steps, the ODE samplers against ancestral
    sampling, the samplers at equal steps, DDIM's eta, each clipping-ablation row against its default, and each row on
    Karras's timesteps against the same sampler on linspace timesteps."""
    pairs = [("ddpm-50", "ddpm-100"), ("ddpm-100", "ddpm-1000"), ("ddpm-50", "ddpm-1000"),
             ("ddim-1000-eta0", "ddpm-1000"), ("ddim-100-eta0", "ddim-1000-eta0"),
             ("dpmpp-2m-50", "ddim-1000-eta0"), ("heun-50", "ddim-1000-eta0")]
    for n in (10, 20, 50, 100):
        pairs += [(f"dpmpp-2m-{n}", f"ddim-{n}-eta0"), (f"ddpm-{n}", f"dpmpp-2m-{n}"), (f"ddpm-{n}", f"ddim-{n}-eta0")]
    for n in (10, 20, 50):
        pairs += [(f"ddim-{n}-eta{e}", f"ddim-{n}-eta0") for e in ("0.2", "0.5", "1")]
    pairs += [(name, name.removesuffix("-noclip").removesuffix("-clip")) for name in names
              if name.endswith(("-clip", "-noclip"))]
    pairs += [(name, name.removesuffix("-karras")) for name in sorted(names) if name.endswith("-karras")]
    return [(a, b) for a, b in pairs if a in names and b in names]


def sample_folder(row: dict, samples: Path) -> Path:
    """A row's sample folder, checked: it exists and was made by this row of this checkpoint at its current step."""
    name = row["name"]
    folder = samples / Path(row["checkpoint"]).name / f"{name}-seed{row['seed']}"
    stamp = folder / "made_by.json"
    if not stamp.exists():
        raise SystemExit(f"error: no samples of row {name} in {folder}; draw them with "
                         f"`python bench/sampler_fid.py --only {name}` (after removing the row from the CSV)")
    made = json.loads(stamp.read_text())
    step = trained_step(ROOT / row["checkpoint"])
    if (made.get("checkpoint"), made.get("step"), made.get("row"), str(made.get("seed"))) != (row["checkpoint"], step, name, str(row["seed"])):
        raise SystemExit(f"error: {folder} was made by {made}, not by row {name} of {row['checkpoint']} at step {step}, "
                         f"seed {row['seed']}")
    return folder


def row_features(row: dict, samples: Path, fid, cache: dict):
    """The features of a row's N images, read from its sample folder; their FID (`fid`, frechet_to of the real set)
    must be the row's."""
    name = row["name"]
    if name not in cache:
        folder, num = sample_folder(row, samples), int(row["num"])
        images = load_pngs(folder, limit=num)
        if len(images) < num:
            raise SystemExit(f"error: {folder} holds {len(images)} images; row {name} scored {num}")
        feats = compute_features(images, row["features"])
        value = fid(feats)
        if abs(value - float(row["fid"])) > 1e-3:
            raise SystemExit(f"error: the {num} images in {folder} give FID {value:.3f}, the CSV's row {name} says "
                             f"{row['fid']}; score the row again before comparing it")
        cache[name] = feats
    return cache[name]


FIELDS = ["name", "a", "b", "num", "features", "seed", "fid_a", "fid_b", "diff", "diff_lo", "diff_hi", "num_boot",
          "paired_verdict", "overlap_verdict"]


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "fid_vs_nfe.csv", help="the benchmark's rows")
    p.add_argument("--samples", type=Path, default=ROOT / "samples" / "bench", help="sampler_fid.py's --samples")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fid_pairs.csv")
    p.add_argument("--pair", action="append", metavar="A:B", help="compare row A with row B (repeatable; default: notebook 05's)")
    p.add_argument("--reference", default="mnist:test", help="the real data the rows were scored against (sampler_fid.py's --reference)")
    p.add_argument("--num-boot", type=positive_int, default=200)
    p.add_argument("--seed", type=non_negative_int, default=0, help="the bootstrap's seed")
    args = p.parse_args(argv)
    if args.num_boot < 2:
        p.error(f"--num-boot must be at least 2, got {args.num_boot}")
    rows = read_rows(args.csv)
    if not rows:
        p.error(f"--csv {args.csv} has no rows; run bench/sampler_fid.py first")
    if args.pair:
        pairs = [tuple(spec.split(":")) for spec in args.pair]
        bad = [spec for spec, pair in zip(args.pair, pairs) if len(pair) != 2 or not all(n in rows for n in pair)]
        if bad:
            p.error(f"--pair must be A:B with two row names of {args.csv}; got {', '.join(bad)}")
    else:
        pairs = notebook05_pairs(rows)
    for a, b in pairs:  # every check before any work
        for key in ("checkpoint", "seed", "num", "features"):
            if rows[a][key] != rows[b][key]:
                raise SystemExit(f"error: rows {a} and {b} differ in {key} ({rows[a][key]} against {rows[b][key]}); a "
                                 "paired comparison needs the same images on both sides")
        sample_folder(rows[a], args.samples), sample_folder(rows[b], args.samples)
    out, cache, refs = {}, {}, {}
    for a, b in pairs:
        ra, rb = rows[a], rows[b]
        if ra["features"] not in refs:  # the real set's features and its FID function, once per feature network
            real = reference_features(args.reference, ra["features"])
            refs[ra["features"]] = (real, frechet_to(real))
        real, fid = refs[ra["features"]]
        d = fid_difference(row_features(ra, args.samples, fid, cache), row_features(rb, args.samples, fid, cache), real,
                           num_boot=args.num_boot, seed=args.seed)
        overlap = stats.compare((float(ra["fid"]), float(ra["fid_lo"]), float(ra["fid_hi"])),
                                (float(rb["fid"]), float(rb["fid_lo"]), float(rb["fid_hi"])), (a, b))
        paired = stats.compare_paired(d, (a, b))
        out[f"{a} - {b}"] = {"name": f"{a} - {b}", "a": a, "b": b, "num": ra["num"], "features": ra["features"],
                             "seed": ra["seed"], "fid_a": ra["fid"], "fid_b": rb["fid"], "diff": round(d[0], 3),
                             "diff_lo": round(d[1], 3), "diff_hi": round(d[2], 3), "num_boot": args.num_boot,
                             "paired_verdict": paired.split(" (")[0], "overlap_verdict": overlap.split(" (")[0]}
        print(paired, flush=True)
    write_rows(args.out, out, FIELDS)
    print(f"{len(out)} pairs -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
