"""Our few-step samplers against the established ones (notebook 07): the targets table, the moonshot at 10 NFE and
the facts its conclusions read, from the benchmark's CSV (helpers.studies.sampler_fid, grid `fast`), and the FID
row with its interval that every ablation prints."""
from __future__ import annotations

import pandas as pd

from helpers.evaluation import stats
from helpers.evaluation.metrics import compute_features, fid_interval, label

OURS = ("lsq-ms", "cn-2m")
NFES = (4, 5, 6, 8, 10, 15, 20)


def score(images, real, features: str = "mnist-cnn", num_boot: int = 200, seed: int = 0) -> dict:
    """FID of `images` against the reference features `real`, with its 95% bootstrap interval over the images."""
    fid, lo, hi = fid_interval(compute_features(images, features), real, num_boot=num_boot, seed=seed)
    return {label("FID", features, len(images)): fid, "95% lo": lo, "95% hi": hi}


def estimate(by: pd.DataFrame, name: str) -> tuple[float, float, float]:
    return by.loc[name, "fid"], by.loc[name, "fid_lo"], by.loc[name, "fid_hi"]


def targets(results: pd.DataFrame) -> pd.DataFrame:
    """Each of our samplers against DPM-Solver++(2M) at the same NFE (trailing spacing), against the best other
    sampler at that NFE, and against DDPM-1000."""
    by, rows = results.set_index("name"), []
    for k in NFES:
        base = f"dpmpp-2m-{k}-trailing"
        rivals = results[(results.nfe == k) & ~results.sampler.isin(OURS) & ~results.name.eq("ddpm-1000")]
        best = rivals.loc[rivals.fid.idxmin(), "name"] if len(rivals) else None
        for ours in OURS:
            name = f"{ours}-{k}-trailing"
            if name not in by.index or base not in by.index:
                continue
            fid = by.loc[name, "fid"]
            rows.append({"NFE": k, "sampler": ours, "FID": fid, "95% lo": by.loc[name, "fid_lo"],
                         "95% hi": by.loc[name, "fid_hi"], "DPM-Solver++(2M)": by.loc[base, "fid"],
                         "ratio to DPM-Solver++(2M)": fid / by.loc[base, "fid"],
                         "verdict against DPM-Solver++(2M)": stats.compare(estimate(by, name), estimate(by, base),
                                                                           (ours, "DPM-Solver++(2M)")),
                         "best other sampler at this NFE": best, "ratio to it": fid / by.loc[best, "fid"],
                         "ratio to DDPM-1000": fid / by.loc["ddpm-1000", "fid"]})
    return pd.DataFrame(rows)


def moonshot(results: pd.DataFrame) -> dict:
    """Our samplers at 10 NFE against DDPM-1000: the FID ratio (one set each) and the KID verdict (KID with its
    spread over the real subsets)."""
    by = results.set_index("name")
    kid = lambda n: (by.loc[n, "kid"], by.loc[n, "kid"] - 1.96 * by.loc[n, "kid_std"],
                     by.loc[n, "kid"] + 1.96 * by.loc[n, "kid_std"])
    return {o: {"FID ratio to DDPM-1000 (one set, no interval)": by.loc[f"{o}-10-trailing", "fid"] / by.loc["ddpm-1000", "fid"],
                "KID verdict": stats.compare(kid(f"{o}-10-trailing"), kid("ddpm-1000"), (f"{o}-10", "DDPM-1000"))}
            for o in OURS if f"{o}-10-trailing" in by.index}


def facts(results: pd.DataFrame, targets_table: pd.DataFrame, held_out: pd.DataFrame, second: pd.DataFrame,
          digits_nfe, digits_label: str) -> dict:
    """The comparisons the conclusions of notebook 07 rest on."""
    by, out = results.set_index("name"), {}
    for k in NFES:
        for ours in OURS:
            row = targets_table[(targets_table.NFE == k) & (targets_table.sampler == ours)]
            if len(row):
                out[f"{ours} at {k} NFE"] = (f"{row.iloc[0]['ratio to DPM-Solver++(2M)']:.2f}x DPM-Solver++(2M)'s FID; "
                                             f"{row.iloc[0]['verdict against DPM-Solver++(2M)']}")
    same = [k for k in (4, 5, 6, 8, 10) if f"cn-2m-{k}-trailing" in by.index
            and by.loc[f"cn-2m-{k}-trailing", "fid"] == by.loc[f"dpmpp-2m-{k}-trailing", "fid"]]
    out["NFE at which cn-2m draws exactly DPM-Solver++(2M)'s images (its noise falls only on the last step, which "
        "returns x0_hat)"] = same
    for k in (6, 10):
        sde = f"dpmpp-2m-sde-{k}-eta1-trailing"
        for ours in OURS:
            if sde in by.index and f"{ours}-{k}-trailing" in by.index:
                out[f"{ours} against SDE-DPM-Solver++(2M) (eta 1) at {k} NFE"] = stats.compare(
                    estimate(by, f"{ours}-{k}-trailing"), estimate(by, sde), (ours, "SDE-DPM-Solver++(2M)"))
    for k in (4, 8):
        if f"student-{k}" in by.index and f"lsq-ms-{k}-trailing" in by.index:
            out[f"lsq-ms against the distilled student at {k} NFE"] = stats.compare(
                estimate(by, f"lsq-ms-{k}-trailing"), estimate(by, f"student-{k}"), ("lsq-ms", f"student-{k}"))
    fin = held_out.pivot(index="NFE", columns="sampler", values="final image")
    out["held-out RMS to the teacher, lsq-ms / DPM-Solver++(2M) (final image)"] = {
        int(k): round(float(v), 3) for k, v in (fin["lsq-ms"] / fin["DPM-Solver++(2M)"]).items()}
    for k in digits_nfe:
        a, b = (second[(second.sampler == n) & (second.NFE == k)].iloc[0] for n in ("lsq-ms", "dpmpp-2m"))
        out[f"8x8 model, {k} NFE"] = stats.compare((a[digits_label], a["95% lo"], a["95% hi"]),
                                                   (b[digits_label], b["95% lo"], b["95% hi"]), ("lsq-ms", "DPM-Solver++(2M)"))
    return out


def per_nfe(results: pd.DataFrame, ours=("lsq-sde", "lsq-ms", "cn-2m", "gn-2m", "gn-2m-noise", "gn-2m-grid"), reference: str = "ddpm-250-trailing",
            nfes=NFES) -> tuple[pd.DataFrame, list[str]]:
    """Issue 39's table, from the `samplers` grid's CSV (every row five sets of N from the same seeds): at each NFE
    the established sampler with the lowest mean FID (our samplers and distilled students excluded), each of ours,
    and the paired differences, set by set (sampler_fid.paired_sets): ours against that best one, and ours against
    the reference (ancestral DDPM on 250 steps). Rows without per-set FIDs are left out. Returns the table (one row
    per NFE and sampler of ours) and the verdict sentences."""
    from helpers.studies.sampler_fid import paired_sets

    kept = results[results.fid_sets.fillna("").astype(str).str.strip().ne("")].reset_index(drop=True)
    by, rows, lines = kept.set_index("name"), [], []
    students = kept.name.str.match(r"(pd|student)-\d+$")  # a student's row names the sampler its card gives (ddim)
    established = kept[~students & ~kept.sampler.isin(ours) & kept.name.ne(reference)]
    has_reference = reference in by.index
    for k in nfes:
        rivals = established[established.nfe == k]
        if not len(rivals):
            continue
        best = rivals.loc[rivals.fid.idxmin()]
        for name in kept[(kept.nfe == k) & kept.sampler.isin(ours)].name:
            r = by.loc[name]
            d = paired_sets(by, name, best["name"])
            row = {"NFE": k, "ours": r.sampler, "FID": r.fid, "lo": r.fid_lo, "hi": r.fid_hi,
                   "best established": best.sampler, "its FID": best.fid, "its lo": best.fid_lo, "its hi": best.fid_hi,
                   "ours - best": d.value, "diff lo": d.lo, "diff hi": d.hi,
                   "verdict": "ours better" if d.hi < 0 else "best established better" if d.lo > 0 else "not resolved"}
            lines.append(f"{k} NFE: " + stats.verdict(d, (name, best["name"])))
            if has_reference:
                ref = paired_sets(by, name, reference)
                row.update({"ours - reference": ref.value, "ref lo": ref.lo, "ref hi": ref.hi})
                lines.append(f"{k} NFE: " + stats.verdict(ref, (name, reference)))
            rows.append(row)
    return pd.DataFrame(rows), lines


def criterion_agreement(results: pd.DataFrame, folder, features, real, num: int = 1000) -> tuple[pd.DataFrame, float]:
    """Does a calibration criterion rank samplers as the evaluation does? For every row of the benchmark CSV whose
    images are in `folder` (samples/bench/<checkpoint>/<name>-seed<seed>), the Fréchet distance of the first `num`
    images' `features(images)` to `real` (the same features of training digits), beside the row's MNIST-CNN FID;
    returns the table and Spearman's rank correlation of the two columns."""
    from pathlib import Path

    from helpers.datasets.images import load_pngs
    from helpers.evaluation.metrics import frechet_distance

    rows = []
    for _, r in results.iterrows():
        images = Path(folder) / f"{r['name']}-seed{r['seed']}"
        if (images / "timing.json").is_file() and len(list(images.glob("*.png"))) >= num:
            d = frechet_distance(features(load_pngs(images, limit=num)), real)
            rows.append({"row": r["name"], "NFE": r["nfe"], "FID (MNIST-CNN, 5 sets)": r["fid"], "criterion": d})
    table = pd.DataFrame(rows, columns=["row", "NFE", "FID (MNIST-CNN, 5 sets)", "criterion"])
    return table, float(table["FID (MNIST-CNN, 5 sets)"].rank().corr(table["criterion"].rank()))


def main(argv=None) -> int:
    """`python -m helpers.studies.fast_sampler agreement`: criterion_agreement for each of gn-2m's criterion networks
    on the benchmark's images, written to a CSV that notebook 07 reads (the images are not in the repository)."""
    import sys
    from pathlib import Path

    from helpers.checkpoints import CheckpointError
    from helpers.checks import positive_int
    from helpers.cli import ArgumentParser
    from helpers.datasets.images import DataUnavailableError, load_images
    from helpers.paths import ROOT
    from helpers.samplers.gn2m import FEATURES, featurizer

    p = ArgumentParser(prog="python -m helpers.studies.fast_sampler", description=main.__doc__.split("\n")[0])
    p.add_argument("action", choices=("agreement",))
    p.add_argument("--csv", type=Path, default=ROOT / "bench" / "results" / "samplers_fid.csv")
    p.add_argument("--samples", type=Path, nargs="+", default=[ROOT / "samples" / "bench" / "ddpm-mnist"],
                   help="folders of the benchmark's images (<row>-seed<seed>)")
    p.add_argument("--num", type=positive_int, default=1000, help="images per row (the first set)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "criterion_agreement.csv")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        results = pd.read_csv(args.csv)
        train = load_images("mnist:train").images[:10000]
        tables = []
        for name in FEATURES:
            features, described = featurizer(name)
            real = features(train)
            for folder in args.samples:  # a row found in an earlier folder is not read again from a later one
                done = set().union(*(set(t.row) for t in tables if t.network.iat[0] == name)) if tables else set()
                table, _ = criterion_agreement(results[~results.name.isin(done)], folder, features, real, args.num)
                if len(table):
                    tables.append(table.assign(network=name, described=described))
        if not tables:
            raise ValueError(f"no row of {args.csv} has {args.num} images in {', '.join(map(str, args.samples))}")
    except (OSError, ValueError, CheckpointError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = pd.concat(tables)
    out.to_csv(args.out, index=False)
    for name, part in out.groupby("network", sort=False):
        rho = part["FID (MNIST-CNN, 5 sets)"].rank().corr(part["criterion"].rank())
        print(f"{name}: {len(part)} rows, Spearman {rho:.3f}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
