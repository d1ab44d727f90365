"""DDPM against DDIM and the solvers (notebook 05): what the notebook reads from the sampler benchmark
(helpers.studies.sampler_fid's CSV and helpers.studies.paired_fid's paired differences on the same images), and the
small measurements it makes itself (how early a sampler commits to its image, the 8x8 digits model).

`Bench` holds one benchmark read: every configuration's FID row, the clipping ablation's rows apart, and the paired
verdicts; the other functions return a table and the sentences the notebook prints.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.evaluation import stats
from helpers.evaluation.metrics import label

# The configurations set against DDPM-1000 in the notebook's summary table.
CHOSEN = ("ddim-10-eta0", "ddim-50-eta0", "ddim-100-eta0", "ddim-1000-eta0", "dpmpp-2m-10", "dpmpp-2m-20",
          "dpmpp-2m-50", "dpmpp-2m-100", "heun-10", "heun-25", "heun-50", "ddpm-20", "ddpm-50", "ddpm-100",
          "ddim-10-eta0-karras", "dpmpp-2m-10-karras", "dpmpp-2m-20-karras", "heun-5-karras", "heun-10-karras")


@dataclass
class Bench:
    """One read of the benchmark: `results` (one row per configuration, FID under `fid_col`), `clip_rows` (the same
    samplers with clipping the other way), `pairs` (paired differences indexed "a - b") and N."""
    results: pd.DataFrame
    clip_rows: pd.DataFrame
    pairs: pd.DataFrame
    n: int

    @property
    def fid_col(self) -> str:
        return label("FID", "mnist-cnn", self.n)

    @property
    def kid_col(self) -> str:
        return label("KID", "mnist-cnn", self.n)

    @property
    def by_name(self) -> pd.DataFrame:
        return self.results.set_index("name")

    @property
    def linspace(self) -> pd.DataFrame:
        return self.results[self.results.spacing.eq("linspace")]

    def ci(self, row) -> tuple[float, float, float]:
        """(FID, 95% lo, 95% hi) of a row."""
        return row[self.fid_col], row.fid_lo, row.fid_hi

    def paired(self, a: str, b: str) -> str | None:
        """The paired verdict on rows a and b (FID(a) - FID(b), 95% paired-bootstrap interval), None if not scored."""
        if f"{a} - {b}" not in self.pairs.index:
            return None
        r = self.pairs.loc[f"{a} - {b}"]
        return stats.compare_paired((r["diff"], r.diff_lo, r.diff_hi), (a, b))

    def verdict(self, a: str, b: str) -> list[str]:
        """Rows a against b: the overlap rule on their own intervals, then the paired verdict."""
        by = self.by_name
        return [f"{a} against {b}: " + stats.compare(self.ci(by.loc[a]), self.ci(by.loc[b]), (a, b)),
                "    paired: " + str(self.paired(a, b))]


def read_bench(bench_csv: Path, pairs_csv: Path) -> Bench:
    """The benchmark's rows (sampler_fid) and paired differences (paired_fid, on the same images)."""
    results = pd.read_csv(bench_csv)
    flipped = results.name.str.endswith(("-clip", "-noclip"))  # the clipping ablation
    clip_rows, results = results[flipped].copy(), results[~flipped].copy()
    results["eta"] = results["eta"].fillna(-1)  # -1: the sampler has no eta
    results["spacing"] = results["spacing"].fillna("linspace") if "spacing" in results else "linspace"
    n = int(results["num"].iloc[0])
    names = {"fid": label("FID", "mnist-cnn", n), "kid": label("KID", "mnist-cnn", n)}
    return Bench(results.rename(columns=names), clip_rows.rename(columns=names),
                 pd.read_csv(pairs_csv).set_index("name"), n)


def steps_table(bench: Bench) -> pd.DataFrame:
    """DDPM and DDIM (eta = 0) on linspace timesteps, by step count."""
    lin = bench.linspace
    rows = lin[lin.sampler.eq("ddpm") | (lin.sampler.eq("ddim") & lin.eta.eq(0))]
    return rows.sort_values(["sampler", "steps"])[["sampler", "steps", "nfe", bench.fid_col, "fid_lo", "fid_hi",
                                                   bench.kid_col, "kid_std", "s_per_image"]].reset_index(drop=True)


def saved_columns(bench: Bench) -> list[str]:
    return ["name", "sampler", "steps", "eta", "spacing", "nfe", bench.fid_col, "fid_lo", "fid_hi", bench.kid_col,
            "kid_std", "s_per_image", "clip_x0"]


def timing_and_kid(bench: Bench) -> list[str]:
    """The spread of the time per network call over the rows, and the rows whose KID cannot be told from zero."""
    r = bench.results
    per_call = 1e3 * r.s_per_image / r.nfe
    weak = r[(r[bench.kid_col] < 0) | (r.kid_std > r[bench.kid_col].abs())]
    return [f"time per network call (s_per_image / NFE, ms per image), over the {len(r)} rows: median "
            f"{per_call.median():.2f}, range {per_call.min():.2f} to {per_call.max():.2f}: single measurements on a "
            f"shared machine, so time differences within that spread are noise",
            f"KID below zero or smaller than its standard deviation: {len(weak)} of {len(r)} rows"
            + (f" ({', '.join(weak.name)})" if len(weak) else "")]


def eta_study(bench: Bench) -> tuple[pd.DataFrame, list[str]]:
    """DDIM at 10, 20 and 50 steps by eta: the rows, and eta 0.2 and 1 against eta 0 at each step count."""
    table = bench.linspace[bench.linspace.sampler.eq("ddim") & bench.linspace.steps.isin([10, 20, 50])]
    by_eta, lines = table.set_index(["steps", "eta"]), []
    for steps in sorted(table.steps.unique()):
        for e in (0.2, 1.0):
            lines.append(f"{steps} steps: " + stats.compare(bench.ci(by_eta.loc[(steps, e)]),
                                                            bench.ci(by_eta.loc[(steps, 0.0)]), (f"eta {e:g}", "eta 0")))
            lines.append("    paired: " + str(bench.paired(f"ddim-{steps}-eta{e:g}", f"ddim-{steps}-eta0")))
    return table, lines


def against_ddpm1000(bench: Bench) -> tuple[pd.DataFrame, str | None]:
    """The chosen configurations against DDPM-1000: FID ratio and speed-up in time (empty without a DDPM-1000 row)."""
    by = bench.by_name
    if "ddpm-1000" not in by.index:
        return pd.DataFrame(), None
    ref = by.loc["ddpm-1000"]
    rows = [{"configuration": name, "NFE": by.loc[name].nfe, bench.fid_col: by.loc[name][bench.fid_col],
             "FID / FID(DDPM 1000)": by.loc[name][bench.fid_col] / ref[bench.fid_col],
             "speed-up in time": ref.s_per_image / by.loc[name].s_per_image} for name in CHOSEN if name in by.index]
    return (pd.DataFrame(rows),
            f"reference: DDPM, 1000 steps: {bench.fid_col} {ref[bench.fid_col]:.2f}, {ref.s_per_image:.2f} s per image")


def clipping_table(bench: Bench) -> pd.DataFrame:
    """Each sampler of the clipping ablation with and without clipping x0_hat to [-1, 1]: both FIDs and verdicts."""
    by, rows, col = bench.by_name, [], bench.fid_col
    word = lambda clip: "clipped" if clip else "unclipped"
    for _, r in bench.clip_rows.iterrows():
        default = r["name"].removesuffix("-noclip").removesuffix("-clip")
        if default not in by.index:
            continue
        d = by.loc[default]
        rows.append({"configuration": default, "NFE": int(r.nfe), "default clips": bool(d.clip_x0),
                     f"{col}, default": f"{d[col]:.2f} [{d.fid_lo:.2f}, {d.fid_hi:.2f}]",
                     f"{col}, other way": f"{r[col]:.2f} [{r.fid_lo:.2f}, {r.fid_hi:.2f}]",
                     "verdict": stats.compare(bench.ci(r), bench.ci(d), (word(r.clip_x0), word(d.clip_x0))).split(" (")[0],
                     "paired verdict": (bench.paired(r["name"], default) or "not scored").split(" (")[0]})
    return pd.DataFrame(rows)


def verdicts(bench: Bench, floor, alpha_bar, loop_overhead: float, call_ms: float) -> list[str]:
    """Every comparison section 8 reads: the ODE plateau, respaced ancestral sampling, DDPM against DDIM and the
    solvers at 10 to 100 steps (overlap rule and paired), Karras spacing against linspace, and the floor."""
    by, f = bench.by_name, bench.by_name[bench.fid_col]
    plateau = [n for n in ("ddim-100-eta0", "ddim-1000-eta0", "dpmpp-2m-50", "dpmpp-2m-100", "heun-25", "heun-50")
               if n in f.index]
    ancestral = [n for n in ("ddpm-50", "ddpm-100", "ddpm-1000") if n in f.index]
    fmt = lambda n: f"{n} {f[n]:.1f} [{by.loc[n].fid_lo:.1f}, {by.loc[n].fid_hi:.1f}]"
    lines = [f"floor at N = {bench.n}: FID {floor.fid_mean:.1f} (sd {floor.fid_std:.1f} over 10 draws of real digits)",
             f"the sampling loop's overhead over the network time: {100 * loop_overhead:.1f}%; one call of the shipped "
             f"U-Net: {call_ms:.1f} ms per image",
             f"sigma_999 / alpha_999 = {float(((1 - alpha_bar[-1]) / alpha_bar[-1]) ** 0.5):.0f} (the first step's "
             f"noise-to-signal ratio)",
             "the ODE solvers at many steps: " + ", ".join(fmt(n) for n in plateau),
             "respaced ancestral sampling: " + ", ".join(fmt(n) for n in ancestral)]
    have = lambda a, b: a in by.index and b in by.index
    for a, b in (("ddpm-50", "ddpm-100"), ("ddpm-100", "ddpm-1000"), ("ddpm-50", "ddpm-1000"),
                 ("ddim-1000-eta0", "ddpm-1000"), ("ddim-100-eta0", "ddim-1000-eta0"),
                 ("dpmpp-2m-50", "ddim-1000-eta0"), ("heun-50", "ddim-1000-eta0")):
        lines += bench.verdict(a, b) if have(a, b) else []
    for n in (10, 20, 50, 100):
        row = {s: f.get(name) for s, name in (("DDIM", f"ddim-{n}-eta0"), ("DPM-Solver++(2M)", f"dpmpp-2m-{n}"),
                                              ("DDPM", f"ddpm-{n}"))}
        lines.append(f"{n} steps: " + ", ".join(f"{s} {v:.1f}" for s, v in row.items() if v is not None))
        for a, b in ((f"dpmpp-2m-{n}", f"ddim-{n}-eta0"), (f"ddpm-{n}", f"dpmpp-2m-{n}"), (f"ddpm-{n}", f"ddim-{n}-eta0")):
            lines += bench.verdict(a, b) if have(a, b) else []
    for name in [n for n in by.index if n.endswith("-karras")]:
        lines += bench.verdict(name, name.removesuffix("-karras")) if name.removesuffix("-karras") in by.index else []
    lines.append("floor against ancestral sampling: "
                 + ", ".join(f"{n} - floor = {f[n] - floor.fid_mean:.1f}" for n in ancestral))
    return lines


def commitment(paths: dict) -> tuple[dict, list[str]]:
    """How early each sampler commits to its final image: the RMS distance of x0_hat and x_t at every step to the
    final image (curves by sampler and key), the first step where x0_hat is within 0.1 of it, and the distance
    between the two samplers' final images from the same x_T."""
    curves, lines = {}, []
    for name, path in paths.items():
        final = path["x"][-1]
        for key in ("x0_hat", "x"):
            curves[name, key] = np.array([(v - final).pow(2).mean().sqrt().item() for v in path[key]])
        k = int(np.argmax(curves[name, "x0_hat"] < 0.1))
        lines.append(f"{name.upper()}: x0_hat is within RMS 0.1 of the final image from step {k + 1} of "
                     f"{len(curves[name, 'x0_hat'])} (t = {path['t'][k]})")
    a, b = (paths[n]["x"][-1] for n in ("ddpm", "ddim"))
    lines.append(f"RMS distance between the DDPM and DDIM final images from the same x_T: {(a - b).pow(2).mean().sqrt():.3f}")
    return curves, lines


def digits8(checkpoint: Path, n: int, steps_list, boot: int, seed: int = 0, device="cpu"):
    """DDPM against DDIM on the 8x8 digits model: Frechet distance on pixels at N = n with a bootstrap interval for
    each step count, the floor (n of the training digits), the verdicts, and 32 images per configuration.
    Returns (table, grids, header sentence, verdict sentences, floor)."""
    from helpers import samplers
    from helpers.datasets.images import load_images
    from helpers.denoisers import from_checkpoint
    from helpers.evaluation.metrics import compute_features, fid_by_sample_size, fid_interval, reference_features

    digits, card = from_checkpoint(checkpoint, device=device)
    real = reference_features("digits:test", "pixels")
    train_px = compute_features(load_images("digits:train").images, "pixels")
    floor = fid_by_sample_size(train_px, real, [n], num_boot=1 if n == len(train_px) else 10, seed=seed).iloc[0]
    col = label("FID", "pixels", n)
    header = (f"{Path(checkpoint).name}: {card['parameters']:,} parameters, {card['step']} steps, "
              f"{card['wall_time_s'] / 60:.1f} min; floor ({n} of the {len(train_px)} training digits): {col} "
              f"{floor.fid_mean:.2f}")
    rows, grids = [], {}
    for name in ("ddpm", "ddim"):
        for steps in steps_list:
            start = time.perf_counter()
            images = samplers.generate(digits, n, seed, (1, 8, 8), sampler=name, steps=steps, batch_size=500)
            seconds = time.perf_counter() - start
            grids[name, steps] = images[:32]
            fid, lo, hi = fid_interval(compute_features(images, "pixels"), real, num_boot=boot, seed=seed)
            rows.append({"sampler": name, "steps": steps, col: fid, "95% lo": lo, "95% hi": hi,
                         "ms per image": 1e3 * seconds / n})
    table = pd.DataFrame(rows)
    by = table.set_index(["sampler", "steps"])
    lines = [f"8x8, {steps} steps: " + stats.compare(*(tuple(by.loc[(s, steps), [col, "95% lo", "95% hi"]])
                                                      for s in ("ddim", "ddpm")), ("DDIM", "DDPM"))
             for steps in steps_list]
    return table, grids, header, lines, floor
