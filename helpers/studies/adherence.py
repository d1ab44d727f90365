"""Prompt adherence of the text-to-image model (notebook 11): every prompt of the grid (10 digits x 3 thicknesses x
3 slants) at each guidance scale, scored on what was asked (class accuracy by the evaluation classifier, thickness
and slant levels measured on the image, rank correlations, the spread within an asked level) and on FID; the
held-out phrasings and the words in reverse order, each against the training phrasing; prompts outside the training
distribution; the facts the conclusions read.

Intervals by the one rule (helpers.evaluation.stats): image i of every scale and phrasing starts from the x_T of
(seed, i), and the grid's images come in blocks of one image per prompt, so FID is the mean over the blocks with its
t-interval and a difference between two phrasings or scales the t-interval of the per-block differences (with one
image per prompt, as in quick mode, the two sets are the even and the odd prompts, each with every digit); the
difference of two shares (class accuracy, levels right) gets a paired bootstrap over images."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from helpers.datasets import captions as cap
from helpers.evaluation import stats
from helpers.evaluation.digits import predict
from helpers.evaluation.fid_sets import fid_estimate
from helpers.evaluation.metrics import compute_features
from helpers.samplers import generate
from helpers.samplers.guidance import CFGDenoiser

GRID_TEMPLATE = "a {thickness} {slant} {d}"
REVERSED = "(the same words in reverse order)"  # "a thick slanted right seven" -> "seven right slanted thick a"
FID = ["FID", "95% lo", "95% hi"]


def prompt_grid(per_prompt: int = 1) -> tuple[list[str], np.ndarray]:
    """The 90 prompts (digit, thickness level, slant level), each `per_prompt` times, and what each asks as
    [n x 3] (digit, thickness index, slant index)."""
    asked = [(d, i, j) for d in range(10) for i in range(3) for j in range(3)]
    texts = [cap.caption({"thickness": cap.LEVELS["thickness"][i], "slant": cap.LEVELS["slant"][j]}, d, GRID_TEMPLATE)
             for d, i, j in asked]
    return texts * per_prompt, np.array(asked * per_prompt)


def within_sd(values, groups) -> float:
    """The spread of an attribute among images asked for the same level of it (pooled sd within the asked levels)."""
    return float(np.sqrt(sum(values[groups == g].var() * (groups == g).sum() for g in np.unique(groups)) / len(values)))


@dataclass
class Adherence:
    """Draws images for prompts (image i from the x_T of (seed, i), so every w and phrasing starts from the same
    noise) and scores them against what they asked."""
    denoiser: object
    tok: object
    vocab: object
    evaluator: object
    real: np.ndarray
    steps: int
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        self.evidence = {}  # (w, phrasing) -> per-set FIDs and per-image hits, for paired verdicts

    def draw(self, texts, w):
        return generate(CFGDenoiser(self.denoiser, w), len(texts), self.seed, sampler="ddim", steps=self.steps,
                        batch_size=250, device=self.device, y=self.tok.batch(texts))

    def score(self, texts, want: np.ndarray, w, key=None) -> tuple:
        """The images for `texts` at scale w, and their scores against the requests `want` (digit, thickness, slant);
        the evidence for paired verdicts kept under `key` (default (w, the first text's phrasing))."""
        start = time.perf_counter()
        images = self.draw(texts, w)
        seconds = (time.perf_counter() - start) / len(texts)
        m = cap.measure(images)
        got = self.vocab.levels(m)
        sets = max(2, len(texts) // 90)  # a block of one image per prompt per set; one pass: even and odd prompts
        feats = compute_features(images, "mnist-cnn")
        if len(texts) // 90 < 2:
            feats = np.concatenate([feats[k::2] for k in range(2)])
        fid, per_set = fid_estimate(feats, self.real, sets)
        hits = {"class accuracy": predict(self.evaluator, images).argmax(1).numpy() == want[:, 0],
                "thickness level right": got["thickness"] == want[:, 1], "slant level right": got["slant"] == want[:, 2]}
        self.evidence[key if key is not None else (float(w), texts[0])] = (per_set, {k: v.astype(float) for k, v in hits.items()})
        return images, {**{k: float(v.mean()) for k, v in hits.items()},
                        "thickness rank corr.": float(spearmanr(want[:, 1], m["thickness"]).statistic),
                        "slant rank corr.": float(spearmanr(want[:, 2], m["slant"]).statistic),
                        "thickness sd": within_sd(m["thickness"], want[:, 1]), "slant sd": within_sd(m["slant"], want[:, 2]),
                        "FID": fid.value, "95% lo": fid.lo, "95% hi": fid.hi, "sets": sets, "N": len(images), "s/image": seconds}

    def versus(self, a, b, names, shares=("class accuracy",)) -> str:
        """Paired verdicts on evidence a against b (same x_T, same requests): FID by the per-set differences, and
        each share in `shares` by the paired bootstrap over images."""
        (fa, ha), (fb, hb) = self.evidence[a], self.evidence[b]
        said = [stats.verdict(stats.paired_sets(fa, fb), names)]
        for share in shares:
            d = stats.paired_bootstrap(ha[share], hb[share], np.mean, seed=self.seed)
            said.append(f"{share} {d.share_shift()}")
        return "; ".join(said)

    def sweep(self, scales, per_prompt: int) -> tuple[pd.DataFrame, dict]:
        """Every prompt of the grid at each scale: the table and the first 27 images per scale."""
        texts, asked = prompt_grid(per_prompt)
        rows, grids = [], {}
        for w in scales:
            images, row = self.score(texts, asked, w, key=(float(w), GRID_TEMPLATE))
            rows.append({"w": float(w), **row})
            grids[w] = images[:27]
        return pd.DataFrame(rows), grids

    def held_out(self, scales, per_prompt: int) -> tuple[pd.DataFrame, list[str]]:
        """The grid with the training phrasing, each held-out phrasing and the training phrasing's words in reverse
        order, at each scale w (below the ceiling of class accuracy, where a difference can show); an attribute a
        phrasing does not ask has no level to get right. Returns the table and each phrasing against the training
        one at the same w (paired)."""
        asked = [(d, i, j) for d in range(10) for i in range(3) for j in range(3)]
        rows, lines = [], []
        for w in scales:
            for template in (GRID_TEMPLATE, REVERSED) + cap.HELD_OUT:
                texts = [cap.caption({"thickness": cap.LEVELS["thickness"][i], "slant": cap.LEVELS["slant"][j]}, d,
                                     GRID_TEMPLATE if template == REVERSED else template) for d, i, j in asked] * per_prompt
                if template == REVERSED:
                    texts = [" ".join(reversed(t.split())) for t in texts]
                _, row = self.score(texts, np.array(asked * per_prompt), w, key=(float(w), template))
                asks = [a for a in ("thickness", "slant") if template == REVERSED or "{" + a + "}" in template]
                for attribute in {"thickness", "slant"} - set(asks):
                    row[f"{attribute} level right"] = row[f"{attribute} rank corr."] = np.nan
                rows.append({"w": float(w), "phrasing": template, "held out": template in cap.HELD_OUT, **row})
                if template != GRID_TEMPLATE:
                    shares = ["class accuracy"] + [f"{a} level right" for a in asks]
                    lines.append(f"w = {w:g}, {template!r} against the training phrasing: "
                                 + self.versus((float(w), template), (float(w), GRID_TEMPLATE), (template, "training"), shares))
        return pd.DataFrame(rows), lines


def look(images, vocab) -> dict:
    """What a set of images is: its ink, how different its images are, and its most common attribute words."""
    got = vocab.levels(cap.measure(images))
    common = {k: cap.LEVELS[k][np.bincount(v, minlength=3).argmax()] for k, v in got.items()}
    flat = images.flatten(1)
    pairs = [(i, j) for i in range(len(flat)) for j in range(i + 1, len(flat))]
    return {"ink share": float((images > 0).float().mean()),
            "pairwise RMS": float(np.mean([(flat[i] - flat[j]).pow(2).mean().sqrt() for i, j in pairs])),
            "thickness (most common)": common["thickness"], "slant (most common)": common["slant"]}


def plot_sweep(sweep: pd.DataFrame):
    """Class accuracy and attribute levels right against w (chance 1/3), and FID with its interval against w."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    for col in ("class accuracy", "thickness level right", "slant level right"):
        axes[0].plot(sweep.w, sweep[col], "o-", label=col)
    axes[0].axhline(1 / 3, color="k", ls=":", lw=0.8, label="chance for a level")
    axes[0].set_xlabel("guidance scale w"); axes[0].grid(alpha=0.3); axes[0].legend(fontsize=8)
    axes[1].errorbar(sweep.w, sweep.FID, yerr=[sweep.FID - sweep["95% lo"], sweep["95% hi"] - sweep.FID], fmt="o-", capsize=3)
    axes[1].set_xlabel("guidance scale w"); axes[1].set_ylabel("FID (MNIST-CNN features)"); axes[1].grid(alpha=0.3)
    plt.tight_layout()
    return fig


def facts(adh: Adherence, sweep, held, ood, costs, w_best: float, scales, steps: int, slant_sd: float) -> tuple[list[str], float]:
    """Every number the conclusions quote, as sentences; and the w of the sweep's lowest FID."""
    s = sweep.set_index("w")
    held_w = sorted(set(held.w))
    lines = ["- Adherence: class accuracy " + ", ".join(f"{r['class accuracy']:.1%} at w={w:g}" for w, r in s.iterrows())
             + "; thickness level right " + ", ".join(f"{r['thickness level right']:.0%}" for _, r in s.iterrows())
             + "; slant level right " + ", ".join(f"{r['slant level right']:.0%}" for _, r in s.iterrows()) + " (chance 33%).",
             f"- FID (mean of {int(s.sets.iloc[0])} sets, 95% t-interval): "
             + ", ".join(f"{r.FID:.1f} [{r['95% lo']:.1f}, {r['95% hi']:.1f}] at w={w:g}" for w, r in s.iterrows()),
             f"- Phrasings at w = {', '.join(f'{w:g}' for w in held_w)}: class accuracy "
             + "; ".join(f"{r.phrasing!r} {r['class accuracy']:.1%} (w={r.w:g})" for _, r in held.iterrows()) + ".",
             f"- Sampling: {s.loc[w_best, 's/image']:.3f} s per image at w={w_best:g} against {s.loc[1.0, 's/image']:.3f} "
             f"without guidance ({s.loc[w_best, 's/image'] / s.loc[1.0, 's/image']:.1f}x), DDIM-{steps}; training "
             f"{costs['CPU hours'].sum():.1f} CPU hours in all."]
    w_fid, last = float(s.FID.idxmin()), float(scales[-1])
    key = lambda w: (float(w), GRID_TEMPLATE)  # noqa: E731
    lines.append(f"- Lowest FID of the sweep at w={w_fid:g}" + ("" if w_fid == 1.0 else f"; against w=1: "
                 + adh.versus(key(w_fid), key(1.0), (f"w={w_fid:g}", "w=1"))) + ("" if w_fid == last else f"; against "
                 f"w={last:g}: " + adh.versus(key(w_fid), key(last), (f"w={w_fid:g}", f"w={last:g}"))))
    lines.append("- Spread within the asked level (pooled sd) against w: thickness "
                 + ", ".join(f"{r['thickness sd']:.3f}" for _, r in s.iterrows())
                 + "; slant " + ", ".join(f"{r['slant sd']:.3f}" for _, r in s.iterrows()))
    top = held[held.w == held_w[-1]]
    lines.append(f"- Spread of the drawn slant at w={held_w[-1]:g} (pooled sd within the asked level; the training digits' sd "
                 f"of slant {slant_sd:.3f}): " + ", ".join(f"{r.phrasing!r} {r['slant sd']:.3f}" for _, r in top.iterrows()))
    real = ood.iloc[0]
    lines.append(f"- Out-of-distribution prompts (eight real sevens: ink share {real['ink share']:.2f}, pairwise RMS "
                 f"{real['pairwise RMS']:.2f}):")
    for _, r in ood.iloc[1:].iterrows():
        digits, counts = np.unique(r["classifier reads"].split(), return_counts=True)
        lines.append(f"  {r.prompt!r:.45} (w = {r.w:g}): read as {digits[counts.argmax()]} in {counts.max() / counts.sum():.0%} "
                     f"({len(digits)} distinct readings of 8); ink share {r['ink share']:.2f}, pairwise RMS "
                     f"{r['pairwise RMS']:.2f}; mostly {r['thickness (most common)']} and {r['slant (most common)']}")
    return lines, w_fid
