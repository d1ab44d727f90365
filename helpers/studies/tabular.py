"""Notebook 08's sampling-steps question on the tabular DDPM, by the one interval rule: the same checkpoint sampled
with K seeds (independent synthetic sets) at each number of respaced steps, every fidelity metric as the mean over
the seeds with its t-interval, and each step count against the next read seed by seed (set k of both from seed k:
stats.paired_sets)."""
from __future__ import annotations

import time

import pandas as pd

from helpers.evaluation import stats
from helpers.tabular import metrics as tm
from helpers import tabular as tb

SHOWN = ("pair_trends", "column_shapes", "ks", "corr_diff")  # the metrics the verdicts read (higher is better first two)


def steps_sweep(denoiser, transform, real, numerical, categorical, steps_list, rows: int, seeds) -> tuple[pd.DataFrame, list[str]]:
    """Each step count, `rows` synthetic rows per seed: the fidelity metrics' means and t-intervals over the seeds,
    seconds per set; and the paired verdicts of each step count against the next on SHOWN."""
    if len(seeds) < 2:
        raise ValueError(f"a t-interval needs at least 2 seeds, got {list(seeds)}")
    per = {}
    out = []
    for steps in steps_list:
        start, values = time.time(), []
        for seed in seeds:
            frame = tb.sample_frame(denoiser, transform, rows, seed, steps=steps)
            values.append(tm.fidelity(real, frame, numerical, categorical))
        per[steps] = pd.DataFrame(values)
        row = {"steps": steps, "seconds per set": (time.time() - start) / len(seeds)}
        for metric in SHOWN:
            e = stats.t_interval(per[steps][metric])
            row.update({metric: e.value, f"{metric} lo": e.lo, f"{metric} hi": e.hi})
        out.append(row)
    lines = []
    for a, b in zip(steps_list, steps_list[1:]):
        for metric in SHOWN:
            lower = metric in ("ks", "corr_diff")
            d = stats.paired_sets(per[a][metric], per[b][metric])
            lines.append(f"{metric}, {a} against {b} steps: "
                         + stats.verdict(d, (f"{a} steps", f"{b} steps"), lower_is_better=lower))
    return pd.DataFrame(out), lines
