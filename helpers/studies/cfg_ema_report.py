"""What notebook 04 shows from the tables and paired verdicts of helpers.studies.cfg_ema_analysis: the chosen
guidance scale, real digits for the grids, the FID-against-accuracy figure with intervals, and every number section 8
quotes."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from helpers.evaluation.fid_sets import saturated
from helpers.studies.cfg_ema import ACCURACY, DIVERSITY, SECONDS, WORST_CLASS, choose_w

CI = ["95% lo", "95% hi"]


def choice(sweep: pd.DataFrame, fid: str, target: float, num: int) -> tuple[float, list[str]]:
    """The chosen w (cfg_ema.choose_w) and the sentences on it: its scores, the sweep's lowest FID, the criterion."""
    w, why = choose_w(sweep, target)
    chosen, best = sweep.set_index("w").loc[w], sweep.sort_values(fid).iloc[0]
    met = sweep[sweep[ACCURACY] >= target]
    return w, [f"chosen w = {w:g} (Ho & Salimans' w = {w - 1:g}): {why}",
               f"  at w = {w:g}: class accuracy {chosen[ACCURACY]:.1%} (worst class {chosen[WORST_CLASS]:.1%}), "
               f"{fid} {chosen[fid]:.2f}, within-class spread {chosen[DIVERSITY]:.3f} of real",
               f"  lowest {fid} of the sweep: w = {best.w:g} ({best[fid]:.2f}, class accuracy {best[ACCURACY]:.1%})",
               f"criterion: at least {target:.0%} of {num} guided samples classified as asked: "
               f"{'met' if len(met) else 'NOT met'}" + (f" (w = {', '.join(f'{w:g}' for w in met.w)})" if len(met) else "")]


def real_digits(images: torch.Tensor, labels, num: int = 20) -> torch.Tensor:
    """`num` real images, image i of digit i % 10 (the k-th of its class in row k), to set beside the grids of
    generated digits, which ask for the same labels."""
    labels = np.asarray(labels)
    picks = [np.flatnonzero(labels == i % 10)[i // 10] for i in range(num)]
    return images[torch.as_tensor(picks)]


def plot_fid_accuracy(curves: dict, f: str, title: str):
    """FID (with its interval as error bars) against class accuracy, one line per {name: (table, key column, style,
    FID column, lower column, upper column)}; each point annotated with its key."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, (table, key, style, fid, lo, hi) in curves.items():
        err = np.vstack([table[fid] - table[lo], table[hi] - table[fid]])
        ax.errorbar(table[ACCURACY], table[fid], yerr=err, fmt=style, capsize=3, label=name)
        for _, r in table.iterrows():
            ax.annotate(f"{key[0]}={r[key]:g}", (r[ACCURACY], r[fid]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("class accuracy (evaluation classifier)"); ax.set_ylabel(f, fontsize=8); ax.grid(alpha=0.3); ax.legend()
    ax.set_title(title)
    plt.tight_layout()
    return fig


def interval(r, f: str) -> str:
    """A row's FID with its interval, as printed."""
    return f"{r[f]:.1f} [{r['95% lo']:.1f}, {r['95% hi']:.1f}]"


def accuracy(r) -> str:
    return f"{r[ACCURACY]:.1%} [{r['accuracy 95% lo']:.1%}, {r['accuracy 95% hi']:.1%}]"


def facts(study, t: dict, verdicts: dict, floor, target: float, w_chosen: float, power_cap_total: tuple, embed: dict,
          clf_accuracy: dict) -> list[str]:
    """Every number the conclusions quote. `t` holds the tables (cases, sweep, null_branch, snaps, ema_windows, cg,
    matched, fair, cost), `verdicts` the paired sentences (snaps, null_branch, matched), `floor` the class-balanced
    real-data floor at the study's N per set (fid_sets.fid_floor)."""
    f, pct, n = study.fid, (lambda v: f"{v:.1%}"), len(study.labels) // study.sets
    _, cap, total = power_cap_total
    dim = embed["dim"]
    lines = [f"floor: real training digits, {floor.n} class-balanced sets of N = {n}: {floor} ({floor.named}); "
             "a FID whose interval reaches the floor's upper end cannot be told from real digits at this N",
             f"label embedding: {embed['params']:,} parameters ({embed['params'] / embed['total']:.2%} of the model); "
             f"class rows' norms {embed['label_norm'][:-1].min():.1f} to {embed['label_norm'][:-1].max():.1f} (a row drawn "
             f"from N(0, 1), the initialisation, has norm about sqrt({dim}) = {math.sqrt(dim):.1f}), null row "
             f"{embed['label_norm'][-1]:.2f}; time embedding's norm: median {embed['time_norm'].median():.1f}, range "
             f"{embed['time_norm'].min():.1f} to {embed['time_norm'].max():.1f}"]
    c, sw = t["cases"].set_index(["EMA", "w"]), t["sweep"].set_index("w")
    lines += [f"case {'EMA' if ema else 'raw'}, w = {w:g}: FID {interval(r, f)}, class accuracy {accuracy(r)}, spread "
              f"{r[DIVERSITY]:.2f}" for (ema, w), r in c.iterrows()]
    lines.append("CFG sweep (EMA): " + "; ".join(f"w = {w:g}: FID {interval(r, f)}, accuracy {accuracy(r)}, worst class "
                                               f"{pct(r[WORST_CLASS])}, spread {r[DIVERSITY]:.2f}" for w, r in sw.iterrows()))
    runs = pd.DataFrame([{"w": k[2], **study.cfg(k[2])[0]} for k in study.results if k[:2] == ("ema", "cfg")])
    ok = runs.drop_duplicates("w").sort_values("w")
    ok = ok[ok[ACCURACY] >= target]
    if len(ok):
        best = ok.loc[ok[f].idxmin()]
        lines.append(f"among all CFG runs of this notebook (sweep and matched), the lowest FID with accuracy >= {target:.0%}: "
                     f"w = {best.w:g}, FID {interval(best, f)}, accuracy {accuracy(best)} (the sweep's own pick: w = {w_chosen:g})")
    lines += ["null branch, " + v for v in verdicts["null_branch"]]
    resolved = sum("EMA is better (resolved)" in v for v in verdicts["snaps"])
    lines.append(f"EMA against raw along training (w = 1, paired): EMA resolved better at {resolved} of {len(verdicts['snaps'])} "
                 "steps; " + "; ".join(v.split(" (95%")[0] for v in verdicts["snaps"]))
    lines.append("EMA windows: " + "; ".join(
        f"step {int(r.step)}: d = {r['decay d_k']:.4f}, window {r['window 1/(1-d_k) (steps)']:.0f} steps, "
        f"{r['share of weight on the last 10% of steps']:.0%} on the last 10%" for _, r in t["ema_windows"].iterrows()))
    lines.append(f"a constant decay {cap} would keep {cap ** total:.2f} of the weight on the initial weights after {total} steps")
    lines.append("guiding classifier's test accuracy by t: " + ", ".join(f"t={k}: {pct(v)}" for k, v in clf_accuracy.items()))
    guide = "guiding classifier's accuracy (t=0)"
    lines.append("classifier guidance on the null branch: " + "; ".join(
        f"s = {r.scale:g}: FID {interval(r, f)}, accuracy {accuracy(r)} (guiding classifier {pct(r[guide])}), "
        f"spread {r[DIVERSITY]:.2f}" for _, r in t["cg"].iterrows()))
    lines += ["CFG against classifier guidance on the null branch, matched accuracy: " + v for v in verdicts["matched"]]
    lines += [f"the fair comparison (CG on ddpm-mnist, CFG within 0.01 accuracy), s = {r['classifier scale s']:g}"
              + (f", matched w = {r['matched w']:g} ({r['regime']})" if pd.notna(r.get("matched w")) else "")
              + f": {r['verdict']}" for _, r in t["fair"].iterrows()]
    scores = ([(f"case {'EMA' if ema else 'raw'}, w = {w:g}", r) for (ema, w), r in c.iterrows()]
              + [(f"sweep w = {w:g}", r) for w, r in sw.iterrows()]
              + [(f"null branch, step {int(r.step)}", r) for _, r in t["null_branch"].iterrows()])
    at_floor = [f"{name} ({r[f]:.1f})" for name, r in scores if saturated((r[f], r["95% lo"], r["95% hi"]), floor)]
    at_floor += [f"fair comparison s = {r['classifier scale s']:g}, {k} ({r[f'{k} {f}']:.1f})" for _, r in t["fair"].iterrows()
                 for k in ("CG", "CFG") if pd.notna(r.get(f"{k} {f}")) and r[f"{k} lo"] <= floor.hi]
    lines.append(f"at the floor (interval reaching the floor's upper end {floor.hi:.1f}): "
                 + (", ".join(dict.fromkeys(at_floor)) if at_floor else "none"))
    lines.append("cost: " + "; ".join(f"{r.iloc[0]}: {r[SECONDS]:.3f} s/image ({r['x no CFG']:.2f}x)" for _, r in t["cost"].iterrows()))
    return lines
