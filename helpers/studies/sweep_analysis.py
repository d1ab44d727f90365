"""The analysis notebook 03 prints, over the runs of helpers.studies.sweep: the ranking at the short budget, the two
budgets side by side (rank agreement, pairs kept or flipped), the paired comparisons on shared noise, and the facts
its conclusions read. Each function returns a table and the sentences the notebook shows."""
from __future__ import annotations

import time
from pathlib import Path

from helpers.evaluation.metrics import EVAL_N
from helpers.studies.sweep import LOSS_NAMES, SCHEDULE_NAMES, SWEEP_DIR, draw, runs_in

def loss_histories(folder: Path = SWEEP_DIR) -> dict[str, tuple]:
    """Each trained run's training loss curve (steps, losses), from its model card."""
    from helpers import checkpoints as ckpt

    curves = {}
    for run in runs_in(folder):
        if ckpt.has_checkpoint(Path(folder) / run.name):
            steps, losses = zip(*ckpt.read_card(Path(folder) / run.name)["loss_history"])
            curves[run.name] = (steps, losses)
    return curves


def read_evaluation(folder: Path) -> dict:
    """The evaluation stored in a run's model card by `python -m helpers.sweep evaluate`."""
    from helpers import checkpoints as ckpt

    return ckpt.read_card(folder)["evaluation"]


def grid_of(table):
    """The 4 x 3 grid's rows of a results table: L_simple weighting, training seed 0."""
    return table[table.weighting.eq("none") & table.seed.eq(0)]


def ranking(table, floor, n: int = EVAL_N):
    """Section 6: the runs ranked by FID at the short budget, and the sentences that read the ranking."""
    from helpers.evaluation.metrics import label

    fid_col, kid_col = label("FID", "mnist-cnn", n), label("KID", "mnist-cnn", n)
    interval = [c for c in ("FID 95% lo", "FID 95% hi", "confident >= 0.9") if c in table]
    ranked = table.sort_values(fid_col)[["run", fid_col, *interval, kid_col, "KID std", "train time (min)",
                                         "final loss"]].reset_index(drop=True)
    best, worst = ranked.iloc[0].run, ranked.iloc[-1].run
    floor_n = floor.set_index("N").loc[n]
    lines = [f"best:  {best} ({ranked.iloc[0][fid_col]:.1f});  worst: {worst} ({ranked.iloc[-1][fid_col]:.1f});  "
             f"floor at N={n}: {floor_n.fid_mean:.1f} ± {floor_n.fid_std:.1f}"]
    lines += [f"  {name}: python -m helpers.sweep train --only {name} && python -m helpers.sweep evaluate --only {name}"
              for name in (best, worst)]
    by = table.set_index("run")[fid_col]
    if {"linear-l2", "linear-l2-seed1"} <= set(by.index):
        lines.append(f"training-seed spread: linear-l2 seed 0 {by['linear-l2']:.1f} vs seed 1 {by['linear-l2-seed1']:.1f} "
                     f"(|difference| {abs(by['linear-l2'] - by['linear-l2-seed1']):.1f})")
    if "linear-l2-vlb" in by:
        lines.append(f"L_simple {by['linear-l2']:.1f} vs VLB-weighted {by['linear-l2-vlb']:.1f}")
    grid = grid_of(table)
    lines.append(f"mean FID by schedule: {grid.groupby('schedule')[fid_col].mean().round(1).to_dict()}")
    lines.append(f"mean FID by loss:     {grid.groupby('loss')[fid_col].mean().round(1).to_dict()}")
    return ranked, lines


def budgets(table, long_table, draws: int = 2000, seed: int = 0, n: int = EVAL_N):
    """Section 7: the grid's runs at both budgets side by side (with their ranks), how far the two rankings agree
    (stats.rank_agreement), and the sentences that read them: the best run against the second, the confident shares,
    the means by schedule and by loss, each replicate against its seed-0 run. Returns (both budgets' rows of every
    run, the grid's rows with ranks, the agreement, the sentences)."""
    from helpers.evaluation import stats
    from helpers.evaluation.metrics import label

    fid_col = label("FID", "mnist-cnn", n)
    cols = ["run", "steps", fid_col, "FID 95% lo", "FID 95% hi", "confident >= 0.9", "train time (min)"]
    both = long_table[cols].merge(table[["run", fid_col, "FID 95% lo", "FID 95% hi", "confident >= 0.9"]], on="run",
                                  how="left", suffixes=("", " (1500 steps)"))
    grid_runs = both[~both.run.str.contains("-seed")].copy()
    grid_runs["rank (6000)"] = grid_runs[fid_col].rank().astype(int)
    grid_runs["rank (1500)"] = grid_runs[f"{fid_col} (1500 steps)"].rank().astype(int)
    est = lambda suffix="": list(zip(*(grid_runs[c + suffix] for c in (fid_col, "FID 95% lo", "FID 95% hi"))))
    agree = stats.rank_agreement(est(" (1500 steps)"), est(), draws=draws, seed=seed)
    pairs = agree["pairs"]
    lines = [f"{agree['items']} runs; Spearman's rank correlation between the FIDs at 1500 and at 6000 steps: "
             f"{agree['rho']:.2f} (95% bootstrap interval over the runs, {draws} draws: [{agree['rho_lo']:.2f}, "
             f"{agree['rho_hi']:.2f}])",
             f"pairs of runs ({sum(pairs.values())}): resolved at both budgets {pairs['kept'] + pairs['flipped']} "
             f"(order kept {pairs['kept']}, flipped {pairs['flipped']}); resolved at 1500 steps only "
             f"{pairs['resolved in a only']}, at 6000 only {pairs['resolved in b only']}, at neither "
             f"{pairs['resolved in neither']}"]
    short = grid_runs[fid_col + " (1500 steps)"]
    for i, j in agree["flipped"]:
        lines.append(f"  flipped: {grid_runs.run.iloc[i]} and {grid_runs.run.iloc[j]} (1500 steps: {short.iloc[i]:.1f} "
                     f"against {short.iloc[j]:.1f}; 6000 steps: {grid_runs[fid_col].iloc[i]:.1f} against "
                     f"{grid_runs[fid_col].iloc[j]:.1f})")
    best, worst = grid_runs.loc[grid_runs[fid_col].idxmin()], grid_runs.loc[grid_runs[fid_col].idxmax()]
    lines.append(f"best at 6000 steps: {best.run}, FID {best[fid_col]:.1f} [{best['FID 95% lo']:.1f}, "
                 f"{best['FID 95% hi']:.1f}], confident share {best['confident >= 0.9']:.1%}; worst: {worst.run}, FID "
                 f"{worst[fid_col]:.1f}, confident share {worst['confident >= 0.9']:.1%}")
    ci = lambda r: (r[fid_col], r["FID 95% lo"], r["FID 95% hi"])
    lines.append("best against second: " + stats.compare(ci(best), ci(grid_runs.sort_values(fid_col).iloc[1]),
                                                         (best.run, grid_runs.sort_values(fid_col).iloc[1].run)))
    conf, conf_short = grid_runs.set_index("run")["confident >= 0.9"], grid_runs["confident >= 0.9 (1500 steps)"]
    lines.append(f"confident share at 6000 steps: {conf.min():.1%} ({conf.idxmin()}) to {conf.max():.1%} "
                 f"({conf.idxmax()}); at 1500 steps: {conf_short.min():.1%} to {conf_short.max():.1%}")
    plain = grid_runs[~grid_runs.run.str.endswith("-vlb")].assign(schedule=lambda d: d.run.str.split("-").str[0],
                                                                  loss=lambda d: d.run.str.split("-").str[1])
    lines.append(f"mean FID by schedule at 6000 steps: {plain.groupby('schedule')[fid_col].mean().round(1).to_dict()}")
    lines.append(f"mean FID by loss at 6000 steps:     {plain.groupby('loss')[fid_col].mean().round(1).to_dict()}")
    for _, rep in both[both.run.str.contains("-seed")].iterrows():
        base = both.set_index("run").loc[rep.run.rsplit("-seed", 1)[0]]
        lines.append(f"{rep.run} against seed 0 at 6000 steps: " + stats.compare(ci(rep), ci(base), (rep.run, "seed 0")))
    return both, grid_runs, agree, lines


def plot_budgets(grid_runs, rho: float, n: int = EVAL_N):
    """Each grid run's FID (with its interval) and confident share at the short budget against the long one."""
    import matplotlib.pyplot as plt

    from helpers.evaluation.metrics import label

    fid_col = label("FID", "mnist-cnn", n)
    x, y = grid_runs[f"{fid_col} (1500 steps)"], grid_runs[fid_col]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].errorbar(x, y, yerr=[y - grid_runs["FID 95% lo"], grid_runs["FID 95% hi"] - y], fmt="o", capsize=2)
    for name, xi, yi in zip(grid_runs.run, x, y):
        axes[0].annotate(name, (xi, yi), fontsize=6, xytext=(3, 2), textcoords="offset points")
    axes[0].set_xlabel("FID at 1500 steps"); axes[0].set_ylabel("FID at 6000 steps"); axes[0].grid(alpha=0.3)
    axes[0].set_title(f"each run at both budgets (Spearman {rho:.2f})", fontsize=9)
    axes[1].scatter(grid_runs["confident >= 0.9 (1500 steps)"], grid_runs["confident >= 0.9"])
    axes[1].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[1].set_xlabel("confident share at 1500 steps"); axes[1].set_ylabel("confident share at 6000 steps")
    axes[1].grid(alpha=0.3)
    plt.tight_layout()
    return fig


def plot_heatmaps(table, n: int = EVAL_N):
    """FID and KID of the 4 x 3 grid as two heat maps (schedules by rows, losses by columns)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from helpers.evaluation.metrics import label

    grid = grid_of(table)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, col in zip(axes, (label("FID", "mnist-cnn", n), label("KID", "mnist-cnn", n))):
        pivot = grid.pivot(index="schedule", columns="loss", values=col).loc[list(SCHEDULE_NAMES), list(LOSS_NAMES)]
        im = ax.imshow(pivot.values, cmap="viridis_r")
        ax.set_xticks(range(3), pivot.columns); ax.set_yticks(range(4), pivot.index)
        for (i, j), v in np.ndenumerate(pivot.values):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w" if v > np.nanmean(pivot.values) else "k")
        ax.set_title(col, fontsize=9); plt.colorbar(im, ax=ax)
    plt.tight_layout()
    return fig


def paired_pairs(grid_runs, n: int = EVAL_N) -> list[tuple[str, str]]:
    """The pairs compared paired at the long budget: the best run against the second, the three losses under the best
    run's schedule, and the four schedules under its loss."""
    from helpers.evaluation.metrics import label

    order = list(grid_runs.sort_values(label("FID", "mnist-cnn", n)).run)
    schedule, loss = order[0].split("-")[:2]
    pairs = ([(order[0], order[1])] + [(f"{schedule}-{a}", f"{schedule}-{b}") for a, b in (("huber", "l2"), ("l2", "l1"))]
             + [(order[0], f"{s}-{loss}") for s in SCHEDULE_NAMES if s != schedule])
    return list(dict.fromkeys(tuple(sorted(p, key=order.index)) for p in pairs))


def paired(folder: Path, pairs, num: int, steps: int, seed: int = 0, device="cpu") -> list[str]:
    """The paired comparisons: image i of every run starts from the same x_T (draw), so FID(A) - FID(B) gets a paired
    bootstrap interval over the images (metrics.fid_difference). Then what the classifier reads in the same samples:
    the confident share and how evenly the ten classes are drawn, against the real test digits."""
    import numpy as np

    from helpers.datasets.images import load_images
    from helpers.evaluation import stats
    from helpers.evaluation.digits import digit_report, load_classifier, predict
    from helpers.evaluation.metrics import compute_features, fid_difference, reference_features

    start, real = time.time(), reference_features("mnist:test")
    drawn = {name: draw(Path(folder) / name, num, steps=steps, seed=seed) for name in dict.fromkeys(n for p in pairs for n in p)}
    feats = {name: compute_features(images, "mnist-cnn") for name, images in drawn.items()}
    lines = [stats.compare_paired(fid_difference(feats[a], feats[b], real, seed=seed), (a, b)) for a, b in pairs]
    lines.append(f"N = {num} images per run, DDIM-{steps}, seed {seed} ({time.time() - start:.0f} s)")
    clf = load_classifier(device=device)
    for name, images in drawn.items():
        r = digit_report(predict(clf, images))
        shares = np.array(r["class_shares"])
        lines.append(f"{name}: confident {r['confident_fraction']:.1%}; class shares {shares.min():.1%} (digit "
                     f"{shares.argmin()}) to {shares.max():.1%} (digit {shares.argmax()})")
    r = digit_report(predict(clf, load_images("mnist:test").images[:num]))
    lines.append(f"real test digits: confident {r['confident_fraction']:.1%}; class shares {r['min_share']:.1%} to "
                 f"{r['max_share']:.1%}")
    return lines


def real_confident_share(num: int = EVAL_N, device="cpu") -> float:
    """The share of the first `num` real test digits the MNIST classifier reads as some digit with p >= 0.9."""
    from helpers.datasets.images import load_images
    from helpers.evaluation.digits import digit_report, load_classifier, predict

    return digit_report(predict(load_classifier(device=device), load_images("mnist:test").images[:num]))["confident_fraction"]


def facts(table, floor, vlb_ratio: float, grid_runs=None, n: int = EVAL_N) -> list[str]:
    """Every number section 8's conclusions use, from the tables above: the range over the grid, the seed spread,
    the orders by schedule and by loss (and, with the long budget, the orders within one loss and one schedule)."""
    from helpers.evaluation.metrics import label

    fid_col = label("FID", "mnist-cnn", n)
    g, by = grid_of(table), table.set_index("run")[fid_col]
    lines = [f"1500 steps: FID {g[fid_col].min():.0f} to {g[fid_col].max():.0f} over the grid; floor at N = {n}: "
             f"{floor.set_index('N').loc[n].fid_mean:.1f}"]
    if "confident >= 0.9" in table:
        lines.append(f"1500 steps: confident share {table['confident >= 0.9'].min():.1%} to "
                     f"{table['confident >= 0.9'].max():.1%}")
    if {"linear-l2", "linear-l2-seed1"} <= set(by.index):
        lines.append(f"seed spread at 1500 steps (linear-l2): |{by['linear-l2']:.1f} - {by['linear-l2-seed1']:.1f}| = "
                     f"{abs(by['linear-l2'] - by['linear-l2-seed1']):.1f}")
    for key, plural in (("schedule", "schedules"), ("loss", "losses")):
        mean = g.groupby(key)[fid_col].mean().sort_values()
        lines.append(f"{plural} by mean FID at 1500 steps: " + ", ".join(f"{k} {v:.0f}" for k, v in mean.items()))
    if "linear-l2-vlb" in by:
        lines.append(f"L_simple against the VLB weighting at 1500 steps: {by['linear-l2']:.0f} against {by['linear-l2-vlb']:.0f}")
    lines.append(f"VLB weight: t=0 against t=999: {vlb_ratio:.0f}x")
    if grid_runs is not None:
        for col, when in ((f"{fid_col} (1500 steps)", "1500"), (fid_col, "6000")):
            names = [r.split("-")[:2] for r in grid_runs[~grid_runs.run.str.endswith("-vlb")].sort_values(col).run]
            for loss in LOSS_NAMES:
                lines.append(f"{when} steps, {loss}: schedules by FID " + ", ".join(s for s, l in names if l == loss))
            for schedule in SCHEDULE_NAMES:
                lines.append(f"{when} steps, {schedule}: losses by FID " + ", ".join(l for s, l in names if s == schedule))
    return lines


def gradient_agreement(model, schedule, images, weightings=("none", "vlb"), pairs: int = 16, batch_size: int = 64,
                       seed: int = 0) -> tuple[dict, object]:
    """How far two independent minibatch gradients of each weighting point the same way at `model`'s weights: the
    cosine between the gradients of batches 2k and 2k + 1, for `pairs` pairs of disjoint batches (x0, t, eps shared
    by the weightings). With signal G and per-example covariance Sigma, E cos is about |G|^2 / (|G|^2 + tr(Sigma) / B):
    a low cosine is a step that follows noise more than signal (McCandlish et al. 2018's noise scale; Nichol & Dhariwal
    2021, section 3.3, blame the variational bound's poor optimisation on it). Returns {weighting: mean cosine with
    its t-interval over the pairs} and the paired difference (second weighting minus first) over the same pairs."""
    import torch

    from helpers.evaluation import stats
    from helpers.objectives import diffusion_loss

    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if 2 * pairs * batch_size > len(images):
        raise ValueError(f"{pairs} pairs of batches of {batch_size} need {2 * pairs * batch_size} images, got {len(images)}")
    order = torch.randperm(len(images), generator=g)  # every batch its own images (disjoint batches)
    cosines = [[] for _ in weightings]
    for pair in range(pairs):
        grads = [[] for _ in weightings]
        for h in range(2):
            idx = order[(2 * pair + h) * batch_size:(2 * pair + h + 1) * batch_size]
            x0, t = images[idx], torch.randint(0, len(schedule.betas), (batch_size,), generator=g)
            eps = torch.randn(x0.shape, generator=g)
            for k, w in enumerate(weightings):
                loss = diffusion_loss(model, schedule, x0, t, eps, weighting=w).mean()
                grads[k].append(torch.cat([p.flatten() for p in torch.autograd.grad(loss, params)]).double())
        for k in range(len(weightings)):
            cosines[k].append(float(torch.nn.functional.cosine_similarity(*grads[k], dim=0)))
    means = {w: stats.t_interval(c) for w, c in zip(weightings, cosines)}
    return means, stats.paired_sets(cosines[1], cosines[0])
