"""The analysis notebook 04 prints, over the measurements of helpers.studies.cfg_ema: the four cases (EMA or not, CFG
or not), the CFG sweep, the EMA along training, the null branch and label dropout, classifier guidance against CFG
(matched and fair); helpers.studies.cfg_ema_report turns them into the chosen w and the facts the conclusions read.

`Study` draws each configuration once (evaluate_guided on the same x_T and labels) and keeps it in a RunCache; its
methods return a table and the sentences the notebook shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.evaluation import stats
from helpers.evaluation.digits import predict
from helpers.evaluation.fid_sets import fid_estimate
from helpers.evaluation.metrics import compute_features
from helpers.samplers import generate
from helpers.samplers.guidance import CFGDenoiser, ClassifierGuidedDenoiser
from helpers.studies.cfg_ema import (ACCURACY, DIVERSITY, SECONDS, balanced_labels, ema_decay_curve, ema_iterate_weights,
                                     evaluate_guided, match_accuracy, matched_w)


@dataclass
class Study:
    """The conditional model's EMA and raw weights, the labels (image i asks for digit i % 10), the reference and
    the evaluation classifier, the sampler, and the cache of drawn configurations {(weights, method, scale): (row,
    images)}, which also keeps the snapshots' (("snapshot", step, weights, N): (row, images)), the null branch's
    (("null", step): ({}, images)) and the dropout model's draws (("dropout", p, weights sum, w): ({}, images)). Every FID is the mean over `sets` disjoint sets of the N images with its t-interval, every class
    accuracy a share with its Wilson interval, and every comparison of two configurations (all drawn from the same
    x_T and labels) a paired one (helpers.evaluation.stats): `evidence` keeps each scored configuration's per-set
    FIDs and per-image hits for that."""
    ema: torch.nn.Module
    raw: torch.nn.Module
    labels: torch.Tensor
    ref: object
    evaluator: object
    results: dict
    sampler: str = "ddim"
    steps: int = 50
    shape: tuple = (1, 28, 28)
    seed: int = 0
    sets: int = 5
    device: str = "cpu"
    weights: dict = field(init=False)
    evidence: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        self.weights = {"raw": self.raw, "ema": self.ema}
        self.fid = fid_label(len(self.labels), self.sets)

    def run(self, key, denoiser) -> tuple[dict, torch.Tensor]:
        """The (row, images) of a configuration, drawn once; the row's FID is the sets' (fid_label)."""
        if key not in self.results:
            self.results[key] = evaluate_guided(denoiser, self.labels, self.seed, self.ref, self.sampler, self.steps,
                                                self.shape, classifier=self.evaluator, device=self.device)
        row, images = self.results[key]
        kept = {k: v for k, v in row.items() if not str(k).startswith("FID (")}
        return {**kept, **self.score(key, images)}, images

    def cfg(self, w: float, which: str = "ema"):
        return self.run((which, "cfg", float(w)), CFGDenoiser(self.weights[which], w))

    def draw(self, denoiser, y=None):
        return generate(denoiser, len(self.labels), self.seed, self.shape, sampler=self.sampler, steps=self.steps,
                        batch_size=250, device=self.device, y=self.labels if y is None else y)

    def score(self, key, images, labels=None) -> dict:
        """FID (mean of the sets, 95% t-interval) and class accuracy (Wilson) of `images` asked for `labels` (default:
        the study's); the per-set FIDs and per-image hits are kept under `key` for paired comparisons."""
        labels = self.labels if labels is None else labels
        feats = compute_features(images, self.ref.features_name, device=self.device)
        fid, values = fid_estimate(feats, self.ref.feats, self.sets)
        hits = (predict(self.evaluator, images).argmax(1) == labels.cpu()).numpy().astype(float)
        acc = stats.wilson(int(hits.sum()), len(hits))
        self.evidence[key] = (values, hits)
        return {fid_label(len(images), self.sets): fid.value, "95% lo": fid.lo, "95% hi": fid.hi, ACCURACY: acc.value,
                "accuracy 95% lo": acc.lo, "accuracy 95% hi": acc.hi}

    def versus(self, a, b, names) -> str:
        """The paired verdict on configurations a and b (keys of `evidence`, same noise and labels): FID by the
        per-set differences, class accuracy by the paired bootstrap over images."""
        (fa, ha), (fb, hb) = self.evidence[a], self.evidence[b]
        acc = stats.paired_bootstrap(ha, hb, np.mean, seed=self.seed)
        return (f"{stats.verdict(stats.paired_sets(fa, fb), names)}; class accuracy {names[0]} - {names[1]} = "
                f"{acc.share_shift()}, {acc.named}")

    # --- section 2: the four cases ---
    def cases(self, case_w: float) -> tuple[dict, pd.DataFrame, list[str]]:
        """EMA or raw weights, w = 1 or case_w: the table and the paired verdicts on what EMA and CFG each change."""
        names = {("raw", 1.0): "no EMA, no CFG", ("ema", 1.0): "EMA, no CFG",
                 ("raw", case_w): f"no EMA, CFG w={case_w:g}", ("ema", case_w): f"EMA, CFG w={case_w:g}"}
        table = pd.DataFrame([{"case": name, "EMA": which == "ema", "w": w, **self.cfg(w, which)[0]}
                              for (which, w), name in names.items()])
        by, lines = table.drop(columns="case").set_index(["EMA", "w"]), []
        for w in (1.0, case_w):
            lines.append(f"EMA against raw weights at w = {w:g}: " + self.versus(("ema", "cfg", w), ("raw", "cfg", w), ("EMA", "raw")))
        for ema in (False, True):
            which = "ema" if ema else "raw"
            lines.append(f"CFG w = {case_w:g} against w = 1 ({which} weights): "
                         + self.versus((which, "cfg", case_w), (which, "cfg", 1.0), (f"w={case_w:g}", "w=1"))
                         + f"; within-class spread {by.loc[(ema, case_w), DIVERSITY] - by.loc[(ema, 1.0), DIVERSITY]:+.3f}; "
                         f"time per image x{by.loc[(ema, case_w), SECONDS] / by.loc[(ema, 1.0), SECONDS]:.2f}")
        return names, table, lines

    # --- section 3: the sweep ---
    def sweep(self, scales) -> tuple[pd.DataFrame, list[str]]:
        """The EMA weights at each w, and the paired verdict of each w against the next one up."""
        table = pd.DataFrame([{"w": float(w), "Ho & Salimans' w": float(w) - 1, **self.cfg(w)[0]} for w in scales])
        ws = sorted(float(w) for w in scales)
        return table, [f"w = {a:g} against w = {b:g}: " + self.versus(("ema", "cfg", a), ("ema", "cfg", b), (f"w={a:g}", f"w={b:g}"))
                       for a, b in zip(ws, ws[1:])]

    # --- section 4: EMA along training ---
    def snapshots(self, checkpoint, steps_kept, final_step: int, num: int) -> tuple[pd.DataFrame, list[str]]:
        """Raw and EMA weights at each snapshot step (and the checkpoint's own) at w = 1, on `num` balanced labels,
        and the paired verdict of EMA against raw at each step (same x_T)."""
        from helpers.denoisers import from_snapshot

        labels, rows, lines = balanced_labels(num, int(self.labels.max()) + 1), [], []
        for s in list(steps_kept) + [final_step]:
            for which in ("raw", "ema"):
                if s == final_step and num == len(self.labels):  # the checkpoint's own weights: drawn in section 2
                    row = self.cfg(1.0, which)[0]
                    self.evidence[("snapshot", s, which)] = self.evidence[(which, "cfg", 1.0)]
                else:
                    key = ("snapshot", s, which, num)  # drawn once, kept in the run's cache like every configuration
                    if key not in self.results:
                        den = self.weights[which] if s == final_step else from_snapshot(checkpoint, s, which == "ema", device=self.device)
                        self.results[key] = evaluate_guided(CFGDenoiser(den, 1.0), labels, self.seed, self.ref, self.sampler,
                                                            self.steps, self.shape, classifier=self.evaluator, device=self.device)
                    row, images = self.results[key]
                    row = {k: v for k, v in row.items() if not str(k).startswith("FID (")}
                    row.update(self.score(("snapshot", s, which), images, labels))
                rows.append({"step": s, "weights": which, **row})
            lines.append(f"step {s}: " + self.versus(("snapshot", s, "ema"), ("snapshot", s, "raw"), ("EMA", "raw")))
        return pd.DataFrame(rows), lines

    def null_branch(self, uncond, checkpoint, snap_steps, final_step: int) -> tuple[pd.DataFrame, list[str]]:
        """The null branch (w = 0) along the fine-tune, step 0 being the unconditional warm start; each step against
        step 0 (paired: the same x_T), and the images at each step for the grids."""
        from helpers.denoisers import from_snapshot

        rows, lines, self.null_images = [], [], {}
        for step in [0] + [s for s in snap_steps if s < final_step] + [final_step]:
            if step == final_step:
                images = self.cfg(0.0)[1]
            elif ("null", step) in self.results:
                images = self.results[("null", step)][1]
            else:
                images = (generate(uncond, len(self.labels), self.seed, self.shape, sampler=self.sampler, steps=self.steps,
                                   batch_size=250, device=self.device) if step == 0
                          else self.draw(CFGDenoiser(from_snapshot(checkpoint, step, True, device=self.device), 0.0)))
                self.results[("null", step)] = ({}, images)
            self.null_images[step] = images
            rows.append({"step": step, "weights": "ddpm-mnist (the warm start)" if step == 0 else "EMA, null label",
                         **self.score(("null", step), images)})
            if step:
                lines.append(f"step {step} against step 0: " + self.versus(("null", step), ("null", 0), (f"step {step}", "step 0")))
        return pd.DataFrame(rows), lines

    def label_dropout(self, other, other_dropout: float, case_w: float) -> tuple[pd.DataFrame, list[str], dict]:
        """The shipped fine-tune (label dropout 0.1) against the same fine-tune with another dropout, at w = 0, 1 and
        case_w (paired), and the other's null branch against the warm start (null_branch's step 0); its images."""
        rows, lines, images = [], [], {}
        names = ("label dropout 0.1 (shipped)", f"label dropout {other_dropout:g}")
        weights_sum = round(float(sum(p.double().sum() for p in other.parameters())), 6)  # which model: cache key
        for w in (0.0, 1.0, case_w):
            key = ("dropout", other_dropout, weights_sum, float(w))
            if key not in self.results:
                self.results[key] = ({}, self.draw(CFGDenoiser(other, w)))
            images[(names[0], w)], images[(names[1], w)] = self.cfg(w)[1], self.results[key][1]
            for name in names:
                rows.append({"model": name, "w": w, **self.score(("dropout", name, w), images[(name, w)])})
            lines.append(f"w = {w:g}: " + self.versus(("dropout", names[1], w), ("dropout", names[0], w), names[::-1]))
        lines.append("null branch: " + self.versus(("dropout", names[1], 0.0), ("null", 0), (names[1], "the warm start")))
        return pd.DataFrame(rows), lines, images

    # --- section 5: classifier guidance ---
    def classifier_guidance(self, clf, scales) -> pd.DataFrame:
        from helpers.studies.cfg_ema import noisy_classifier_accuracy

        rows = []
        for s in scales:
            row, images = self.run(("ema", "classifier", float(s)), ClassifierGuidedDenoiser(self.ema, clf, s))
            rows.append({"method": "classifier guidance", "scale": float(s), **row,
                         "guiding classifier's accuracy (t=0)": noisy_classifier_accuracy(clf, images, self.labels)})
        return pd.DataFrame(rows)

    def matched(self, cg: pd.DataFrame, sweep: pd.DataFrame, draw_cfg: bool = True) -> tuple[pd.DataFrame, list[str]]:
        """CFG at the w whose accuracy matches each classifier scale's (interpolated along the sweep), paired."""
        rows, lines, f = [], [], self.fid
        for _, r in cg.iterrows():
            w = matched_w(sweep.w, sweep[ACCURACY], r[ACCURACY])
            if w is None:
                lines.append(f"s = {r.scale:g}: accuracy {r[ACCURACY]:.1%} lies outside the CFG sweep's range; no match")
                continue
            if draw_cfg:
                row = self.cfg(round(w, 3))[0]
                said = self.versus(("ema", "cfg", round(w, 3)), ("ema", "classifier", float(r.scale)), ("CFG", "CG"))
                lines.append(f"s = {r.scale:g} against w = {round(w, 3):g}: {said}")
                rows.append({"classifier scale s": r.scale, "CG accuracy": r[ACCURACY], "matched w": round(w, 3),
                             "CFG accuracy": row[ACCURACY], f"CG {f}": r[f], f"CFG {f}": row[f],
                             "CG spread": r[DIVERSITY], "CFG spread": row[DIVERSITY], "verdict": said.split(":")[0]})
        return pd.DataFrame(rows), lines

    def fair(self, uncond, clf, scales, sweep: pd.DataFrame) -> pd.DataFrame:
        """Classifier guidance on the unconditional model against CFG on the conditional one at accuracy matched
        within 0.01 (match_accuracy draws CFG at new w until it is): FIDs with their intervals and the paired
        verdict; `regime` says whether the matched w guides at all (w > 1) or lies between the null branch and the
        conditional model (w < 1)."""
        rows, f = [], self.fid
        for s in scales:
            cg_row, _ = self.run(("uncond", "classifier", float(s)), ClassifierGuidedDenoiser(uncond, clf, s))
            w, acc, tried = match_accuracy(lambda w: self.cfg(w)[0][ACCURACY], cg_row[ACCURACY], sweep.w, sweep[ACCURACY],
                                           tol=0.01)
            row = {"classifier scale s": float(s), "CG accuracy": cg_row[ACCURACY], f"CG {f}": cg_row[f],
                   "CG lo": cg_row["95% lo"], "CG hi": cg_row["95% hi"]}
            if w is None:
                row["verdict"] = "no CFG scale of the sweep reaches this accuracy"
            else:
                cfg_row = self.cfg(w)[0]
                regime = "w > 1: guided" if w > 1.005 else "w < 1: between null and conditional" if w < 0.995 else "w = 1: unguided"
                row.update({"matched w": w, "regime": regime, "CFG accuracy": acc, "accuracy gap": abs(acc - cg_row[ACCURACY]),
                            f"CFG {f}": cfg_row[f], "CFG lo": cfg_row["95% lo"], "CFG hi": cfg_row["95% hi"],
                            "CFG runs": len(tried),
                            "verdict": self.versus(("ema", "cfg", float(w)), ("uncond", "classifier", float(s)), ("CFG", "CG"))})
            rows.append(row)
        return pd.DataFrame(rows)


def fid_label(num: int, sets: int) -> str:
    """The FID column's name: the feature network, N per set and the number of sets."""
    return f"FID (mnist-cnn, N={num // sets} per set, mean of {sets})"


def ema_windows(steps, power: float, cap: float) -> pd.DataFrame:
    """The EMA's decay, averaging window and weight on the last 10% of steps at each given step."""
    rows = []
    for s in steps:
        d = float(ema_decay_curve([s], power, cap)[0])
        rows.append({"step": s, "decay d_k": d, "window 1/(1-d_k) (steps)": 1 / (1 - d),
                     "share of weight on the last 10% of steps": ema_iterate_weights(s, power, cap)[int(0.9 * s):].sum()})
    return pd.DataFrame(rows)


def plot_ema(total: int, snap_steps, power: float, cap: float):
    """The EMA decay with warm-up (snapshots dotted), and the weight each raw iterate carries in the EMA."""
    import matplotlib.pyplot as plt

    k = np.unique(np.geomspace(1, max(total, 2), 400).round())
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    axes[0].plot(k, ema_decay_curve(k, power, cap), label=f"$d_k = \\min({cap}, 1 - k^{{-{power}}})$")
    for s in snap_steps:
        axes[0].axvline(s, color="grey", ls=":", lw=0.8)
    axes[0].set_xscale("log"); axes[0].set_xlabel("optimiser step k"); axes[0].set_ylabel("decay $d_k$")
    axes[0].set_title("EMA decay with warm-up (dotted: snapshots)"); axes[0].grid(alpha=0.3); axes[0].legend()
    for s in sorted(set(snap_steps) | {total}):
        axes[1].plot(np.arange(1, s + 1), ema_iterate_weights(s, power, cap), label=f"EMA after step {s}")
    axes[1].set_xlabel("step j of the raw weights"); axes[1].set_ylabel("weight $\\lambda_j$ in the EMA")
    axes[1].set_title("which iterates the EMA averages"); axes[1].grid(alpha=0.3); axes[1].legend()
    plt.tight_layout()
    return fig


def warm_start_check(card: dict, shape, seed: int = 0, device="cpu") -> list[str]:
    """The warm start, re-done: a conditional U-Net initialised from the unconditional checkpoint (card's
    train.init_from) gives exactly the unconditional model's output with the null label, and a different one for each
    (random) class row."""
    from helpers import checkpoints as ckpt
    from helpers.denoisers import from_checkpoint
    from helpers.models.unet import UNet, UNetConfig
    from helpers.paths import ROOT
    from helpers.training.ddpm import init_from_checkpoint

    source = Path(card["train"]["init_from"] or "")
    source = source if source.is_absolute() else ROOT / source
    if not (card["train"]["init_from"] and ckpt.has_checkpoint(source)):
        return ["the model was not warm-started (or its source checkpoint is not here)"]
    fresh = UNet(UNetConfig(**card["model"])).eval()
    new = init_from_checkpoint(fresh, str(source))
    uncond, _ = from_checkpoint(source, ema=True, device=device, channels_last=False)
    g = torch.Generator().manual_seed(seed)
    x, t = torch.randn(10, *shape, generator=g), torch.randint(0, card["schedule"]["T"], (10,), generator=g)
    with torch.no_grad():
        reference_eps = uncond.net(x, t)
        gaps = [(fresh(x, t, torch.full((10,), y)) - reference_eps).abs().max().item()
                for y in range(card["model"]["num_classes"] + 1)]
    return [f"warm start from {source.name}: new tensors {new}",
            f"max |new model - unconditional model| output at step 0: null label {gaps[-1]:.2e}; "
            f"class labels {min(gaps[:-1]):.3f} to {max(gaps[:-1]):.3f}"]
