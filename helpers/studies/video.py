"""Notebook 12 (video diffusion): the metric's sanity checks, the floor at the benchmark's N, the cost by clip
length, and the comparisons its conclusions quote (every verdict through helpers.evaluation.stats.compare)."""
from __future__ import annotations

import pandas as pd
import torch

from helpers.evaluation import cost, stats
from helpers.evaluation import features as fn
from helpers.evaluation.metrics import consistency, fid_interval, lit_pixels

METRICS = (("fvd", "FVD", True), ("frame_fid", "per-frame FID", True), ("consistency", "consistency", False))
COLUMNS = ["model", "sampler", "steps", "frames", "fvd", "fvd_lo", "fvd_hi", "frame_fid", "frame_fid_lo", "frame_fid_hi",
           "consistency", "consistency_lo", "consistency_hi", "lit_pixels", "s_per_clip"]


def metric_sanity(features_net, real_test: torch.Tensor, real_train: torch.Tensor, lengths, ref_n: int, num_boot: int,
                  seed: int) -> pd.DataFrame:
    """FVD (our video features) of real training clips, and of the same clips shuffled, frozen and noisy, against
    ref_n test clips, per clip length (percentile bootstrap intervals)."""
    g, rows = torch.Generator().manual_seed(seed), []
    for frames in lengths:
        ref = fn.features(features_net, real_test[:ref_n, :frames])
        clips = real_train[:, :frames]
        for kind in ("real", "shuffle", "freeze", "noise"):
            x = clips if kind == "real" else fn.degrade(clips, kind, g)
            value, lo, hi = fid_interval(fn.features(features_net, x), ref, num_boot, seed=seed)
            rows.append({"frames": frames, "clips": kind, fn.LABEL: value, "95% lo": lo, "95% hi": hi})
    return pd.DataFrame(rows)


def sanity_verdicts(sanity: pd.DataFrame) -> list[str]:
    floor = sanity[sanity.clips == "real"].set_index("frames")
    out = []
    for _, r in sanity[sanity.clips != "real"].iterrows():
        f = floor.loc[r.frames]
        out.append(f"{r.frames} frames, {r.clips}: " + stats.compare(
            (r[fn.LABEL], r["95% lo"], r["95% hi"]), (f[fn.LABEL], f["95% lo"], f["95% hi"]), (r.clips, "real clips")))
    return out


def real_consistency(real_train: torch.Tensor, classifier, lengths) -> pd.DataFrame:
    return pd.DataFrame([{"frames": f, **consistency(real_train[:, :f], classifier), "lit_pixels": lit_pixels(real_train[:, :f])}
                         for f in lengths])


def plot_losses(cards: dict, mark_step: int, ax) -> None:
    """Training loss (rolling mean of 5 logs) of each model card in `cards` (name -> card), a line at `mark_step`."""
    import numpy as np

    for name, c in cards.items():
        h = np.array(c["loss_history"], dtype=float).reshape(-1, 2)
        ax.plot(h[:, 0], pd.Series(h[:, 1]).rolling(5, min_periods=1).mean(),
                label=f"{name}: {c['step']} steps, {c['wall_time_s'] / 3600:.1f} h")
    ax.axvline(mark_step, color="k", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (rolling mean of 5 logs)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)


def floor_at_n(bench, floor_clips: torch.Tensor, lengths, features_net, classifier, ref_n: int, seed: int,
               num_boot: int) -> pd.DataFrame:
    """The first N real training clips scored exactly as the benchmark scores a model's N clips, per length."""
    cache = {}
    return pd.DataFrame([{"frames": f, **bench.score(floor_clips[:, :f], bench.references(features_net, f, cache, ref_n),
                                                     features_net, classifier, seed, num_boot)} for f in lengths])


def plot_by_steps(steps_rows: pd.DataFrame, real_at_n: pd.DataFrame, n: int, axes) -> None:
    """FVD and per-frame FID (with intervals) against sampling steps per sampler, the real floor at 8 frames dashed."""
    panels = (("fvd", "fvd_lo", "fvd_hi", fn.LABEL), ("frame_fid", "frame_fid_lo", "frame_fid_hi", "per-frame FID (MNIST-CNN)"))
    for i, (sampler, g_) in enumerate(steps_rows.groupby("sampler")):
        for ax, (v, lo, hi, name) in zip(axes, panels):
            ax.errorbar(g_.steps, g_[v], yerr=[g_[v] - g_[lo], g_[hi] - g_[v]], fmt="o-", capsize=3, color=f"C{i}",
                        label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("sampling steps")
            ax.set_ylabel(name, fontsize=8)
            ax.grid(alpha=0.3, which="both")
    real8 = real_at_n[real_at_n.frames == 8]
    for ax, v in zip(axes, ("fvd", "frame_fid")):
        if len(real8):
            ax.axhline(real8[v].iloc[0], color="k", ls="--", lw=0.8, label=f"{n} real clips")
        ax.legend()


def call_cost(video, lengths) -> pd.DataFrame:
    """The video model's cost per network call by clip length (a batch of 4 clips), timed in one process."""
    rows = []
    for frames in lengths:
        x, t = torch.randn(4, frames, *video.sample_shape[1:]), torch.full((4,), 500)
        rows.append({"frames": frames, "GFLOP per clip per call": cost.gflop_per_call(video.net, x, t),
                     "s per clip per call": cost.seconds_per_image_per_call(video.net, x, t, calls=3)})
    table = pd.DataFrame(rows)
    table["s per frame per call"] = table["s per clip per call"] / table.frames
    return table


def _est(r, v):
    return (r[v], r[f"{v}_lo"], r[f"{v}_hi"])


JOINT_COST = 1.5  # a joint step (8 clips + 4 clips of still frames) costs about 1.5 video-only steps (section 4)


def joint_verdicts(pair: pd.DataFrame) -> list[str]:
    """The joint model (4,000 steps) against the video-only one at the same steps (less compute: 4,000 against 6,000
    video-only step-equivalents) and at 10,000 steps (more compute), at 8 and 16 frames."""
    out = []
    for frames in (8, 16):
        p = pair[pair.frames == frames].set_index("model")
        for other, said in (("vdm-4k", "video only, 4000 steps (less compute)"), ("vdm", "video only, 10000 steps (more compute)")):
            if not {other, "vdm-joint"} <= set(p.index):
                out.append(f"{frames} frames, against {said}: not measured (make bench-video)")
                continue
            for v, name, lower in METRICS:
                out.append(f"{frames} frames, {name}: " + stats.compare(_est(p.loc["vdm-joint"], v), _est(p.loc[other], v),
                                                                      ("joint, 4000 steps", said), lower_is_better=lower))
    return out


def comparisons(rows: pd.DataFrame, best: str) -> list[tuple]:
    """(a, b, question, metrics): model, sampler, steps, frames of each side; what each comparison asks."""
    return [
        (("vdm-4k", "ddim", 50, 8), ("vdm", "ddim", 50, 8), "training steps (4000 against 10000)", METRICS),
        (("vdm", "ddim", 10, 8), ("vdm", "ddim", 50, 8), "steps, DDIM", METRICS),
        (("vdm", "ddim", 25, 8), ("vdm", "ddim", 50, 8), "steps, DDIM", METRICS),
        (("vdm", "ddpm", 50, 8), ("vdm", "ddpm", 100, 8), "steps, ancestral", METRICS),
        (("vdm", "ddpm", 100, 8), ("vdm", "ddpm", 250, 8), "steps, ancestral", METRICS),
        (("vdm", "ddim", 50, 8), ("vdm", "ddpm", 50, 8), "sampler at 50 steps", METRICS),
        (("vdm", "ddim", 50, 16), ("vdm", "ddpm", 50, 16), "sampler at 50 steps, 16 frames", METRICS),
        (("vdm", best, 50, 4), ("vdm", best, 50, 8), "frames", METRICS[1:]),
        (("vdm", best, 50, 16), ("vdm", best, 50, 8), "frames", METRICS[1:]),
    ]


def findings(sanity, real_at_n, steps_rows, frames_rows, rows, best: str, ceiling) -> list[str]:
    """The lines the conclusions quote: the metric, the floor, the steps and frames rows, and every comparison."""
    fl = sanity[sanity.clips == "real"].set_index("frames")[fn.LABEL]
    out = ["- The metric: real clips score " + ", ".join(f"{v:.1f} at {k} frames" for k, v in fl.items())
           + "; shuffled, frozen and noisy clips " + "; ".join(
               f"{k}: " + ", ".join(f"{v:.1f}" for v in sanity[sanity.clips == k][fn.LABEL]) for k in ("shuffle", "freeze", "noise"))]
    out.append(f"- The floor at N = {int(rows['num'].iloc[0])} (real training clips scored as a model): " + "; ".join(
        f"{r.frames} frames: FVD {r.fvd:.1f} [{r.fvd_lo:.1f}, {r.fvd_hi:.1f}], per-frame FID {r.frame_fid:.1f} "
        f"[{r.frame_fid_lo:.1f}, {r.frame_fid_hi:.1f}]" for r in real_at_n.itertuples()))
    for sampler, g_ in steps_rows.groupby("sampler"):
        out.append(f"- Steps, {sampler}: FVD " + ", ".join(f"{r.fvd:.1f} [{r.fvd_lo:.1f}, {r.fvd_hi:.1f}] at {r.steps}" for r in g_.itertuples())
                   + "; consistency " + ", ".join(f"{r.consistency:.0%}" for r in g_.itertuples())
                   + "; s/clip " + ", ".join(f"{r.s_per_clip:.2f}" for r in g_.itertuples()))
    if len(frames_rows):
        out.append(f"- Frames ({best.upper()}-50): " + "; ".join(
            f"{r.frames} frames: FVD {r.fvd:.1f}, per-frame FID {r.frame_fid:.1f}, consistency {r.consistency:.0%}, "
            f"{r.s_per_clip:.2f} s/clip ({r.s_per_clip / r.frames:.3f} s/frame)" for r in frames_rows.itertuples()))
    by_name = rows.set_index("name")
    for a, b, question, metrics in comparisons(rows, best):
        na, nb = (f"{m}-{s_}-{k}-f{f}" for m, s_, k, f in (a, b))
        if na not in by_name.index or nb not in by_name.index:
            out.append(f"- {question}: {na} against {nb} not measured yet")
            continue
        for v, label, lower in metrics:
            out.append(f"- {question}, {label}: " + stats.compare(_est(by_name.loc[na], v), _est(by_name.loc[nb], v),
                                                                  (na, nb), lower_is_better=lower))
    c = ceiling.set_index("frames")
    for r in frames_rows.itertuples():
        if r.frames in c.index:
            out.append(f"- consistency at {r.frames} frames against real clips: " + stats.compare(
                (r.consistency, r.consistency_lo, r.consistency_hi), _est(c.loc[r.frames], "consistency"),
                ("samples", "real clips"), lower_is_better=False))
    return out


def facts(real_at_n, steps_rows, frames_rows, pair, rows, ceiling, gflop_per_frame: float, call_costs, card) -> dict:
    """The numbers the write-up and the conclusions read back (results/12_video_diffusion.json)."""
    keys = ("fvd", "fvd_lo", "fvd_hi", "frame_fid", "frame_fid_lo", "frame_fid_hi")
    out = {"real_at_n": {int(r.frames): {v: float(getattr(r, v)) for v in keys} for r in real_at_n.itertuples()}}
    for sampler, g_ in steps_rows.groupby("sampler"):
        out[f"fvd_{sampler}"] = {int(r.steps): r.fvd for r in g_.itertuples()}
    if len(frames_rows):
        out["by_frames"] = {int(r.frames): {"fvd": r.fvd, "frame_fid": r.frame_fid, "consistency": r.consistency,
                                            "s_per_clip": r.s_per_clip} for r in frames_rows.itertuples()}
    out["joint"] = {f"{r.model}-f{r.frames}": {"step": int(r.step), "fvd": r.fvd, "fvd_lo": r.fvd_lo, "fvd_hi": r.fvd_hi,
                                                "frame_fid": r.frame_fid, "lit_pixels": r.lit_pixels,
                                                "consistency": r.consistency} for r in pair.itertuples()}
    cols = ("step", "steps", "frames", *keys, "consistency", "consistency_lo", "consistency_hi", "lit_pixels")
    out["rows"] = {n: {v: float(r[v]) for v in cols} for n, r in rows.set_index("name").iterrows()}
    out["real_lit_pixels"] = float(ceiling.set_index("frames").loc[8, "lit_pixels"]) if 8 in set(ceiling.frames) else None
    out["gflop_per_frame"] = gflop_per_frame
    out["s_per_clip_per_call"] = {int(f): float(v) for f, v in zip(call_costs.frames, call_costs["s per clip per call"])}
    out["training_hours"] = card["wall_time_s"] / 3600
    return out
