"""Adds issue 13's measurements to notebooks/03_schedules_and_losses.ipynb (run once from the repository root after
`make train-sweep-long evaluate-sweep-long evaluate-sweep` and the best and worst runs' seed-1 replicates; then
re-execute the notebook in full mode, rewrite the prose of "What the experiments say" from the printed facts, and
delete this file): the grid at 4x the steps, the share of samples that the MNIST classifier reads as a digit for every
run, FID intervals, whether the six-minute ranking survives, and every number of the conclusions printed, not typed.
The notebook has no generator; this script edits its sources in place."""
import nbformat as nbf

from cells import Patch  # notebooks/drafts/cells.py (run with PYTHONPATH=notebooks/drafts)

P = Patch("notebooks/03_schedules_and_losses.ipynb", marker="long_table")
cells, find, replace = P.cells, P.find, P.replace
params = find("import sys")
replace(params, 'SWEEP = ROOT / "checkpoints" / "sweep"  # the committed runs',
        'SWEEP = ROOT / "checkpoints" / "sweep"  # the committed runs (1500 steps each)\n'
        'LONG = ROOT / "checkpoints" / "sweep-long"  # the same runs at 6000 steps (`make train-sweep-long evaluate-sweep-long`)\n'
        'RANK_DRAWS = 200 if QUICK else 2000  # draws for the rank correlation\'s interval\n'
        'PAIRED_N = 100 if QUICK else 1000  # images per run in the paired comparisons at 6000 steps (full: the evaluation\'s N)\n'
        'PAIRED_STEPS = 5 if QUICK else 50    # their DDIM steps (full: the evaluation\'s)')
imports = find("import json, tempfile, time")
replace(imports, "from helpers import fid, sweep\n", "from helpers import fid, stats, sweep\n")

# Section 6: what a KID below zero, or smaller than its standard deviation, means.
s6 = find("## 6. Quality: FID and KID")
cells[s6].source += (
    "\n\nKID (Bińkowski et al. 2018) is an unbiased estimate of the squared MMD between the two feature distributions, "
    "so it can come out negative when the true value is near zero; its standard deviation (over the estimator's "
    "subsets) says how far to trust it: a KID smaller than its standard deviation cannot be told from zero at this N, "
    "and such a run's KID ranks nothing. The FID's 95% interval (a bootstrap over the N images) plays the same role "
    "for FID.")
# Section 6's table gains each run's interval and confident share (both budgets' evaluations store them).
quality = find("if fid_col in table:\n    grid = table")
replace(quality, 'ranked = table.sort_values(fid_col)[["run", fid_col, kid_col, "KID std", "train time (min)", "final loss"]]',
        'ranked = table.sort_values(fid_col)[["run", fid_col, *[c for c in ("FID 95% lo", "FID 95% hi", "confident >= 0.9") if c in table],\n'
        '                                      kid_col, "KID std", "train time (min)", "final loss"]]')

recheck = find("# Re-measure the best run's stored score live")
cells.insert(recheck + 1, nbf.v4.new_markdown_cell(r'''
## 7. The same grid at four times the steps: does the ranking survive?

At 1500 steps no run draws digits reliably, so section 6 ranks how fast each choice *starts* to learn. Here every run
is trained again from scratch with 6000 steps (four times the cost; the table gives each run's time; nothing else
changes: same model, batch, learning rate, seed), evaluated the same way, and the best and the worst run get a second training seed. Besides FID,
each run's **confident share**: the share of its N samples that the MNIST classifier (`checkpoints/mnist-cnn`) reads
as some digit with probability at least 0.9 (the real test digits' share is printed below for scale). The ranking question is answered twice
(`helpers.stats.rank_agreement`): Spearman's rank correlation between the two budgets' FIDs, with a bootstrap interval
over the runs, and pair by pair: of every two runs whose FID intervals separate at both budgets, does the better
one stay better?'''.strip()))
cells.insert(recheck + 2, nbf.v4.new_code_cell(r'''
long_table = sweep.results_table(LONG) if LONG.exists() else pd.DataFrame()
if fid_col in long_table:  # the evaluated runs (a run still training has no score yet)
    long_table = long_table[long_table[fid_col].notna()]
if len(long_table) and fid_col in long_table:
    cols = ["run", "steps", fid_col, "FID 95% lo", "FID 95% hi", "confident >= 0.9", "train time (min)"]
    both = long_table[cols].merge(table[["run", fid_col, "FID 95% lo", "FID 95% hi", "confident >= 0.9"]], on="run", how="left",
                                  suffixes=("", " (1500 steps)"))
    grid_runs = both[~both.run.str.contains("-seed")].copy()
    grid_runs["rank (6000)"] = grid_runs[fid_col].rank().astype(int)
    grid_runs["rank (1500)"] = grid_runs[f"{fid_col} (1500 steps)"].rank().astype(int)
    display(grid_runs.sort_values(fid_col).reset_index(drop=True))
    est = lambda suffix="": list(zip(*(grid_runs[c + suffix] for c in (fid_col, "FID 95% lo", "FID 95% hi"))))
    agree = stats.rank_agreement(est(" (1500 steps)"), est(), draws=RANK_DRAWS, seed=SEED)
    rho, pairs = agree["rho"], agree["pairs"]
    from helpers.classifier import digit_report, load_classifier, predict
    from helpers.data import load_images
    real_share = digit_report(predict(load_classifier(device=DEVICE), load_images("mnist:test").images[:EVAL_N]))["confident_fraction"]
    print(f"confident share of {EVAL_N} real test digits: {real_share:.1%}")
    print(f"{agree['items']} runs; Spearman's rank correlation between the FIDs at 1500 and at 6000 steps: {rho:.2f} "
          f"(95% bootstrap interval over the runs, {RANK_DRAWS} draws: [{agree['rho_lo']:.2f}, {agree['rho_hi']:.2f}])")
    print(f"pairs of runs ({sum(pairs.values())}): resolved at both budgets {pairs['kept'] + pairs['flipped']} "
          f"(order kept {pairs['kept']}, flipped {pairs['flipped']}); resolved at 1500 steps only {pairs['resolved in a only']}, "
          f"at 6000 only {pairs['resolved in b only']}, at neither {pairs['resolved in neither']}")
    names_ = list(grid_runs.run)
    for i, j in agree["flipped"]:
        print(f"  flipped: {names_[i]} and {names_[j]} (1500 steps: {grid_runs[fid_col + ' (1500 steps)'].iloc[i]:.1f} "
              f"against {grid_runs[fid_col + ' (1500 steps)'].iloc[j]:.1f}; 6000 steps: {grid_runs[fid_col].iloc[i]:.1f} "
              f"against {grid_runs[fid_col].iloc[j]:.1f})")
    best_l, worst_l = grid_runs.loc[grid_runs[fid_col].idxmin()], grid_runs.loc[grid_runs[fid_col].idxmax()]
    print(f"best at 6000 steps: {best_l.run}, FID {best_l[fid_col]:.1f} [{best_l['FID 95% lo']:.1f}, {best_l['FID 95% hi']:.1f}], "
          f"confident share {best_l['confident >= 0.9']:.1%}; worst: {worst_l.run}, FID {worst_l[fid_col]:.1f}, confident share "
          f"{worst_l['confident >= 0.9']:.1%}")
    second = grid_runs.sort_values(fid_col).iloc[1]
    ci = lambda r: (r[fid_col], r["FID 95% lo"], r["FID 95% hi"])
    print("best against second: " + stats.compare(ci(best_l), ci(second), (best_l.run, second.run)))
    conf = grid_runs.set_index("run")["confident >= 0.9"]
    print(f"confident share at 6000 steps: {conf.min():.1%} ({conf.idxmin()}) to {conf.max():.1%} ({conf.idxmax()}); "
          f"at 1500 steps: {grid_runs['confident >= 0.9 (1500 steps)'].min():.1%} to {grid_runs['confident >= 0.9 (1500 steps)'].max():.1%}")
    by_schedule = grid_runs[~grid_runs.run.str.endswith("-vlb")].assign(schedule=lambda d: d.run.str.split("-").str[0],
                                                                         loss=lambda d: d.run.str.split("-").str[1])
    print("mean FID by schedule at 6000 steps:", by_schedule.groupby("schedule")[fid_col].mean().round(1).to_dict())
    print("mean FID by loss at 6000 steps:    ", by_schedule.groupby("loss")[fid_col].mean().round(1).to_dict())
    # the training seed: each replicate against its seed-0 run, at both budgets where both exist
    for _, rep in both[both.run.str.contains("-seed")].iterrows():
        base = both.set_index("run").loc[rep.run.rsplit("-seed", 1)[0]]
        print(f"{rep.run} against seed 0 at 6000 steps: " + stats.compare(ci(rep), ci(base), (rep.run, "seed 0")))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    axes[0].errorbar(grid_runs[f"{fid_col} (1500 steps)"], grid_runs[fid_col],
                     yerr=[grid_runs[fid_col] - grid_runs["FID 95% lo"], grid_runs["FID 95% hi"] - grid_runs[fid_col]], fmt="o", capsize=2)
    for _, r in grid_runs.iterrows():
        axes[0].annotate(r.run, (r[f"{fid_col} (1500 steps)"], r[fid_col]), fontsize=6, xytext=(3, 2), textcoords="offset points")
    axes[0].set_xlabel("FID at 1500 steps"); axes[0].set_ylabel("FID at 6000 steps"); axes[0].grid(alpha=0.3)
    axes[0].set_title(f"each run at both budgets (Spearman {rho:.2f})", fontsize=9)
    axes[1].scatter(grid_runs["confident >= 0.9 (1500 steps)"], grid_runs["confident >= 0.9"])
    axes[1].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[1].set_xlabel("confident share at 1500 steps"); axes[1].set_ylabel("confident share at 6000 steps"); axes[1].grid(alpha=0.3)
    plt.tight_layout(); plt.show()
else:
    print(f"checkpoints/{LONG.name} has no evaluated runs yet: `make train-sweep-long evaluate-sweep-long`")
'''.strip()))
cells.insert(recheck + 3, nbf.v4.new_code_cell(r'''
# Paired comparisons at 6000 steps: image i of every run starts from the same x_T (sweep.draw), so FID(A) - FID(B) gets
# a paired bootstrap interval over the images (metrics.fid_difference), sharper than two overlapping intervals where
# the runs draw similar images from the same noise. The best run against the second, the three losses under the best
# run's schedule, and the four schedules under its loss.
from helpers.classifier import digit_report, load_classifier, predict
from helpers.data import load_images
from helpers.metrics import compute_features, fid_difference, reference_features

if len(long_table):
    order = list(grid_runs.sort_values(fid_col).run)
    sched_best = order[0].split("-")[0]
    loss_best = order[0].split("-")[1]
    pairs = ([(order[0], order[1])] + [(f"{sched_best}-{a_}", f"{sched_best}-{b_}") for a_, b_ in (("huber", "l2"), ("l2", "l1"))]
             + [(order[0], f"{s_}-{loss_best}") for s_ in sweep.SCHEDULE_NAMES if s_ != sched_best])
    pairs = list(dict.fromkeys(tuple(sorted(p_, key=order.index)) for p_ in pairs))
    start, real = time.time(), reference_features("mnist:test")
    drawn = {name: sweep.draw(LONG / name, PAIRED_N, steps=PAIRED_STEPS, seed=SEED)
             for name in dict.fromkeys(n for p_ in pairs for n in p_)}
    feats = {name: compute_features(images, "mnist-cnn") for name, images in drawn.items()}
    for a_, b_ in pairs:
        print(stats.compare_paired(fid_difference(feats[a_], feats[b_], real, seed=SEED), (a_, b_)))
    print(f"N = {PAIRED_N} images per run, DDIM-{PAIRED_STEPS}, seed {SEED} ({time.time() - start:.0f} s)")
    # what the classifier reads in the same samples: a confident digit, and how evenly the ten classes are drawn
    clf = load_classifier(device=DEVICE)
    for name, images in drawn.items():
        r = digit_report(predict(clf, images))
        shares = np.array(r["class_shares"])
        print(f"{name}: confident {r['confident_fraction']:.1%}; class shares {shares.min():.1%} (digit {shares.argmin()}) "
              f"to {shares.max():.1%} (digit {shares.argmax()})")
    r = digit_report(predict(clf, load_images("mnist:test").images[:PAIRED_N]))
    print(f"real test digits: confident {r['confident_fraction']:.1%}; class shares {r['min_share']:.1%} to {r['max_share']:.1%}")
'''.strip()))
cells.insert(recheck + 4, nbf.v4.new_code_cell(r'''
# Samples of the longer runs from the same x_T as section 5's.
if len(long_table):
    names = [n for n in long_table.run if not n.endswith(("-seed1", "-seed2"))]
    fig, axes = plt.subplots(-(-len(names) // 4), 4, figsize=(10.4, 2.9 * -(-len(names) // 4)), dpi=72)
    for ax, name in zip(axes.flat, names):
        show_grid(sweep.draw(LONG / name, GRID_IMAGES, steps=GRID_STEPS, seed=SEED), nrow=int(GRID_IMAGES**0.5), ax=ax,
                  title=f"{name}, 6000 steps")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    plt.tight_layout(); plt.show()
'''.strip()))

# The conclusions: every number printed from the tables above.
conclusions = find("## 7. What the experiments say")
replace(conclusions, "## 7. What the experiments say", "## 8. What the experiments say")
cells.insert(conclusions, nbf.v4.new_code_cell(r'''
# Every number the conclusions below use, from the tables above.
g = table[table.weighting.eq("none") & table.seed.eq(0)]
print(f"1500 steps: FID {g[fid_col].min():.0f} to {g[fid_col].max():.0f} over the grid; floor at N = {EVAL_N}: {floor_n.fid_mean:.1f}")
if "confident >= 0.9" in table:
    print(f"1500 steps: confident share {table['confident >= 0.9'].min():.1%} to {table['confident >= 0.9'].max():.1%}")
if {"linear-l2", "linear-l2-seed1"} <= set(by.index):
    print(f"seed spread at 1500 steps (linear-l2): |{by['linear-l2']:.1f} - {by['linear-l2-seed1']:.1f}| = {abs(by['linear-l2'] - by['linear-l2-seed1']):.1f}")
sched = g.groupby("schedule")[fid_col].mean().sort_values()
print("schedules by mean FID at 1500 steps: " + ", ".join(f"{k} {v:.0f}" for k, v in sched.items()))
loss = g.groupby("loss")[fid_col].mean().sort_values()
print("losses by mean FID at 1500 steps: " + ", ".join(f"{k} {v:.0f}" for k, v in loss.items()))
if "linear-l2-vlb" in by:
    print(f"L_simple against the VLB weighting at 1500 steps: {by['linear-l2']:.0f} against {by['linear-l2-vlb']:.0f}")
print(f"VLB weight: t=0 against t=999: {w[0] / w[999]:.0f}x")
if len(long_table):  # the orders within one loss and within one schedule, at both budgets
    for col, when in ((f"{fid_col} (1500 steps)", "1500"), (fid_col, "6000")):
        ranked_ = grid_runs[~grid_runs.run.str.endswith("-vlb")].sort_values(col)
        for loss_ in sweep.LOSS_NAMES:
            print(f"{when} steps, {loss_}: schedules by FID " + ", ".join(r.split("-")[0] for r in ranked_.run if r.split("-")[1] == loss_))
        for s_ in sweep.SCHEDULE_NAMES:
            print(f"{when} steps, {s_}: losses by FID " + ", ".join(r.split("-")[1] for r in ranked_.run if r.split("-")[0] == s_))
'''.strip()))
P.write()
