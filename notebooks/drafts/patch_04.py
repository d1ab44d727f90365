"""Adds issue 13's measurements to notebooks/04_cfg_ema.ipynb (run once from the repository root, then re-execute the
notebook in full mode; delete this file after): the null branch (w = 0) along the fine-tune, and classifier guidance
on the unconditional checkpoints/ddpm-mnist against CFG at class accuracies matched within one point, with bootstrap
intervals on every FID compared. The notebook has no generator; this script edits its sources in place."""
import nbformat as nbf

from cells import Patch  # notebooks/drafts/cells.py (run with PYTHONPATH=notebooks/drafts)

P = Patch("notebooks/04_cfg_ema.ipynb", marker="null_branch")
cells, find, replace = P.cells, P.find, P.replace
params = find("import sys")
replace(params, 'CLASSIFIER = str(ROOT / "checkpoints" / "noisy-classifier")', 'UNCONDITIONAL = str(ROOT / "checkpoints" / "ddpm-mnist")  # the unconditional DDPM (the fine-tune\'s start)\nCLASSIFIER = str(ROOT / "checkpoints" / "noisy-classifier")')
replace(params, "TARGET_ACCURACY = 0.95", "DROPOUT_CHECKPOINT = ROOT / \"checkpoints\" / \"ddpm-mnist-cond-drop50\"  # the same fine-tune with label dropout 0.5 (`make train-ddpm-mnist-cond-drop50`)\nTARGET_ACCURACY = 0.95")
replace(params, "TARGET_ACCURACY = 0.95", "BOOTSTRAP = pick(quick=20, standard=100, full=200)  # bootstrap resamples per FID interval\nTARGET_ACCURACY = 0.95")
replace(params, "from helpers.paths import ROOT, is_quick, pick\n", "from helpers.paths import ROOT, is_quick, pick, run_mode\n")
imports = find("import inspect, time")
replace(imports, "mode {'quick' if QUICK else 'full'}", "mode {run_mode()}")  # the real profile (standard too)
replace(imports, "from helpers.metrics import label\n", "from helpers import stats\nfrom helpers.metrics import compute_features, fid_interval, label\nfrom helpers.samplers import generate\n")
replace(imports, "results = {}  # (weights, method, scale)", "def fid_ci(images):\n    \"\"\"FID with its 95% bootstrap interval over the images (metrics.fid_interval).\"\"\"\n    return fid_interval(compute_features(images, \"mnist-cnn\"), ref.feats, num_boot=BOOTSTRAP, seed=SEED)\n\nresults = {}  # (weights, method, scale)")

snapshots = find("snap_labels = gs.balanced_labels(SNAPSHOT_NUM")
cells.insert(snapshots + 1, nbf.v4.new_markdown_cell(r'''
**The null branch along the fine-tune.** With the null label ($w = 0$) the conditional model is an unconditional
one. At step 0 it computes exactly the shipped unconditional model's function (the warm-start check of section 1), so
its FID there is `checkpoints/ddpm-mnist`'s; the EMA snapshots then show what the fine-tune did to it. Same
`NUM` images, sampler and steps as the sweep; FID with a 95% bootstrap interval.'''.strip()))
cells.insert(snapshots + 2, nbf.v4.new_code_cell(r'''
start = time.time()
uncond, ucard = from_checkpoint(UNCONDITIONAL, ema=True, device=DEVICE)
null_rows = []
for step in [0] + [s for s in snap_steps if s < card["step"]] + [card["step"]]:
    if step == 0:
        images = generate(uncond, NUM, SEED, shape, sampler=SAMPLER, steps=STEPS, batch_size=250, device=DEVICE)
    elif step == card["step"]:
        images = run(("ema", "cfg", 0.0), CFGDenoiser(ema_model, 0.0))[1]
    else:
        images = generate(CFGDenoiser(gs.load_snapshot(CHECKPOINT, step, True, device=DEVICE), 0.0), NUM, SEED, shape,
                          sampler=SAMPLER, steps=STEPS, batch_size=250, device=DEVICE, y=labels)
    fid, lo, hi = fid_ci(images)
    null_rows.append({"step": step, "weights": "ddpm-mnist (the warm start)" if step == 0 else "EMA, null label",
                      FID: fid, "95% lo": lo, "95% hi": hi, gs.ACCURACY: gs.class_scores(images, labels, evaluator)[0]})
null_branch = pd.DataFrame(null_rows)
display(null_branch)
R.table("null_branch", null_branch, f"the conditional model's null branch (w = 0) along the fine-tune, EMA weights; step 0 = checkpoints/ddpm-mnist; N = {NUM}")
first, last = null_branch.iloc[0], null_branch.iloc[-1]
print(f"{len(null_rows)} evaluations in {time.time() - start:.0f} s; " + stats.compare(
    (last[FID], last["95% lo"], last["95% hi"]), (first[FID], first["95% lo"], first["95% hi"]),
    (f"null branch after {int(last.step)} steps", "at step 0")))

# Does a larger null share keep the null branch? The same fine-tune with label dropout 0.5 instead of 0.1.
if ckpt.has_checkpoint(DROPOUT_CHECKPOINT):
    other, ocard = from_checkpoint(DROPOUT_CHECKPOINT, ema=True, device=DEVICE)
    rows = []
    for w in (0.0, 1.0, CASE_W):
        for name, model in (("label dropout 0.1 (shipped)", ema_model), (f"label dropout {ocard['train']['label_dropout']:g}", other)):
            images = run(("ema", "cfg", w), CFGDenoiser(model, w))[1] if model is ema_model else generate(
                CFGDenoiser(model, w), NUM, SEED, shape, sampler=SAMPLER, steps=STEPS, batch_size=250, device=DEVICE, y=labels)
            fid, lo, hi = fid_ci(images)
            rows.append({"model": name, "w": w, FID: fid, "95% lo": lo, "95% hi": hi,
                         gs.ACCURACY: gs.class_scores(images, labels, evaluator)[0]})
    dropout_table = pd.DataFrame(rows)
    display(dropout_table)
    R.table("label_dropout", dropout_table, f"the fine-tune with label dropout 0.1 against {ocard['train']['label_dropout']:g} ({ocard['step']} steps each): null branch (w = 0), w = 1 and w = {CASE_W:g}; N = {NUM}")
    by = dropout_table.set_index(["w", "model"])
    for w in (0.0, 1.0):
        a, b = (by.loc[w].iloc[i] for i in (1, 0))
        print(f"w = {w:g}: " + stats.compare((a[FID], a["95% lo"], a["95% hi"]), (b[FID], b["95% lo"], b["95% hi"]),
                                            (by.loc[w].index[1], by.loc[w].index[0])))
    a = by.loc[0.0].iloc[1]
    print("null branch, " + stats.compare((a[FID], a["95% lo"], a["95% hi"]), (first[FID], first["95% lo"], first["95% hi"]),
                                          (by.loc[0.0].index[1], "the warm start (step 0)")))
else:
    print(f"{DROPOUT_CHECKPOINT.name} is not here: `make train-ddpm-mnist-cond-drop50` trains it (about 30 min)")
'''.strip()))

cg = find("rows, start = [], time.time()\nfor s in CLASSIFIER_SCALES:")
cells.insert(cg + 1, nbf.v4.new_markdown_cell(r'''
**The fair comparison: classifier guidance on the unconditional model.** Above, classifier guidance steers the
conditional model's null branch, which the fine-tune left worse than the model it started from (section 4), while
CFG steers the conditional branch: that mixes the method with the model. Here classifier guidance steers the
unconditional `checkpoints/ddpm-mnist`, and each of its scales is compared with CFG on the conditional model at a
$w$ whose measured class accuracy is within one point of it (`gs.match_accuracy`: interpolated along the sweep, then
measured and refined). The first comparison answers "which guidance is better on the one conditional model we
have"; this one "which method reaches a given accuracy at better quality when each gets the model it is meant for".'''.strip()))
cells.insert(cg + 2, nbf.v4.new_code_cell(r'''
rows, start = [], time.time()
cfg_accuracy = lambda w: run(("ema", "cfg", w), CFGDenoiser(ema_model, w))[0][gs.ACCURACY]
for s in CLASSIFIER_SCALES:
    cg_row, cg_images = run(("uncond", "classifier", float(s)), ClassifierGuidedDenoiser(uncond, clf, s))
    w, acc, tried = gs.match_accuracy(cfg_accuracy, cg_row[gs.ACCURACY], sweep.w, sweep[gs.ACCURACY], tol=0.01)
    row = {"classifier scale s": float(s), "CG accuracy": cg_row[gs.ACCURACY]}
    cg_fid = fid_ci(cg_images)
    row.update({f"CG {FID}": cg_fid[0], "CG 95%": f"[{cg_fid[1]:.1f}, {cg_fid[2]:.1f}]"})
    if w is None:
        row["verdict"] = "no CFG scale of the sweep reaches this accuracy"
    else:
        cfg_fid = fid_ci(run(("ema", "cfg", w), CFGDenoiser(ema_model, w))[1])
        row.update({"matched w": w, "CFG accuracy": acc, "accuracy gap": abs(acc - cg_row[gs.ACCURACY]),
                    f"CFG {FID}": cfg_fid[0], "CFG 95%": f"[{cfg_fid[1]:.1f}, {cfg_fid[2]:.1f}]", "CFG runs": len(tried),
                    "verdict": stats.compare(cfg_fid, cg_fid, ("CFG", "classifier guidance"))})
    rows.append(row)
fair = pd.DataFrame(rows)
with pd.option_context("display.max_colwidth", 140):
    display(fair)
R.table("fair_comparison", fair, f"classifier guidance on the unconditional ddpm-mnist against CFG on the conditional model at accuracy matched within 0.01, FID with 95% bootstrap intervals; N = {NUM}")
print(f"{len(CLASSIFIER_SCALES)} scales in {time.time() - start:.0f} s")
'''.strip()))
# Section 8: every number the conclusions quote is printed from this run's variables (issue 13: nothing typed).
conclusions = find("## 8. What the experiments say")
cells[conclusions] = nbf.v4.new_markdown_cell(r"""
## 8. What the experiments say

The numbers the conclusions below rest on, printed from this run (N = `NUM` images per configuration, DDIM, the same
$x_T$ and labels everywhere, FID on the MNIST-CNN features; intervals are 95% bootstrap intervals over the images;
"not resolved" where two intervals overlap). The floor is the FID of `NUM` real training digits against the test
digits over 10 draws: a score within its spread cannot be told from real digits on these features.""".strip())
cells.insert(conclusions + 1, nbf.v4.new_code_cell(r"""
from helpers.metrics import fid_by_sample_size, reference_features

floor = fid_by_sample_size(reference_features("mnist:train"), ref.feats, [NUM], num_boot=10, seed=SEED).iloc[0]
pct = lambda v: f"{v:.1%}"
print(f"floor at N = {NUM}: FID {floor.fid_mean:.1f} +- {floor.fid_std:.1f} (sd over 10 draws)")
print(f"label embedding: {net.label_emb.weight.numel():,} parameters ({net.label_emb.weight.numel() / card['parameters']:.2%} of the model); "
      f"class rows' norms {label_norm[:-1].min():.1f} to {label_norm[:-1].max():.1f}, null row {label_norm[-1]:.2f}; "
      f"time embedding's norm: median {time_norm.median():.1f}, range {time_norm.min():.1f} to {time_norm.max():.1f}")
c = case_table.set_index(["EMA", "w"])
for (ema, w), r in c.iterrows():
    print(f"case {'EMA' if ema else 'raw'}, w = {w:g}: {FID} {r[FID]:.1f}, class accuracy {pct(r[gs.ACCURACY])}, spread {r[gs.DIVERSITY]:.2f}")
sw = sweep.set_index("w")
print("CFG sweep (EMA): " + "; ".join(f"w = {w:g}: FID {r[FID]:.1f}, accuracy {pct(r[gs.ACCURACY])}, worst class {pct(r[gs.WORST_CLASS])}, "
                                   f"spread {r[gs.DIVERSITY]:.2f}" for w, r in sw.iterrows()))
cfg_runs = pd.DataFrame([{"w": k[2], FID: v[0][FID], "accuracy": v[0][gs.ACCURACY]} for k, v in results.items()
                         if k[:2] == ("ema", "cfg")]).drop_duplicates("w").sort_values("w")
ok = cfg_runs[cfg_runs.accuracy >= TARGET_ACCURACY]
if len(ok):
    best = ok.loc[ok[FID].idxmin()]
    print(f"among all CFG runs of this notebook (sweep and matched), the lowest FID with accuracy >= {TARGET_ACCURACY:.0%}: "
          f"w = {best.w:g}, FID {best[FID]:.1f}, accuracy {pct(best.accuracy)} (the sweep's own pick: w = {W_CHOSEN:g})")
print("null branch along the fine-tune: " + "; ".join(f"step {int(r.step)}: FID {r[FID]:.1f} [{r['95% lo']:.1f}, {r['95% hi']:.1f}]"
                                                    for _, r in null_branch.iterrows()))
d = snaps.pivot(index="step", columns="weights", values=sfid)
a = snaps.pivot(index="step", columns="weights", values=gs.ACCURACY)
print("EMA along training: " + "; ".join(f"step {s}: raw FID {d.raw[s]:.1f}, EMA FID {d.ema[s]:.1f}, accuracy raw {pct(a.raw[s])}, "
                                         f"EMA {pct(a.ema[s])}" for s in d.index))
print(f"EMA better than raw at every snapshot: {bool((d.ema < d.raw).all())}; raw FID rising at every snapshot: "
      f"{bool(d.raw.is_monotonic_increasing)}")
print("EMA windows: " + "; ".join(f"step {int(r.step)}: d = {r['decay d_k']:.4f}, window {r['window 1/(1-d_k) (steps)']:.0f} steps, "
                                  f"{r['share of weight on the last 10% of steps']:.0%} on the last 10%" for _, r in ema_windows.iterrows()))
print(f"a constant decay {cap} would keep {cap ** total:.2f} of the weight on the initial weights after {total} steps")
print("guiding classifier's test accuracy by t: " + ", ".join(f"t={t}: {pct(v)}" for t, v in clf_card["accuracy_by_t"].items()))
GUIDE = "guiding classifier's accuracy (t=0)"
print("classifier guidance on the null branch: " + "; ".join(
    f"s = {r.scale:g}: FID {r[FID]:.1f}, accuracy {pct(r[gs.ACCURACY])} (guiding classifier {pct(r[GUIDE])}), "
    f"spread {r[gs.DIVERSITY]:.2f}" for _, r in cg.iterrows()))
if len(matched):
    print(f"CFG against classifier guidance (null branch) at interpolated accuracy: CFG lower FID in "
          f"{int((matched[f'CFG {FID}'] < matched[f'CG {FID}']).sum())} of {len(matched)} pairs; CFG's accuracy at or above CG's in "
          f"{int((matched['CFG accuracy'] >= matched['CG accuracy']).sum())}")
print("the fair comparison (CG on ddpm-mnist, CFG within 0.01 accuracy): " + "; ".join(
    f"s = {r['classifier scale s']:g}: {r['verdict']}" for _, r in fair.iterrows()))
print("cost: " + "; ".join(f"{r.iloc[0]}: {r[gs.SECONDS]:.3f} s/image ({r['x no CFG']:.2f}x)" for _, r in cost.iterrows()))
""".strip()))
cells.insert(conclusions + 2, nbf.v4.new_markdown_cell(r"""
**The label embedding is tiny but not weak.** It is a small fraction of the model, yet its rows are about as long as
the time embedding they are added to (printed above), so the label shifts every residual block about as much as the
timestep does. The null row started at exactly zero; the warm start is checked in section 1: with the null label,
the new model at step 0 reproduces the unconditional model exactly.

**What EMA changes: the quality of each sample.** Without guidance EMA lowers FID far more than any other choice
here and raises class accuracy (the four cases, printed above); in the grids the raw weights of the last step draw
broken strokes where the EMA weights, from the same noise, draw clean digits. The learning rate stays at 1e-3 after
its warm-up, so the last iterate is a noisy point around the optimum, and the EMA averages the last couple of hundred
of them (section 4). Along training the EMA is better than the raw weights at every snapshot (printed above). The raw
snapshots' FID moves from snapshot to snapshot too, but each is one draw of a fluctuating iterate, and three
snapshots without intervals cannot tell a trend from that noise. The warm-up of the decay is what
lets the EMA follow a short fine-tune at all: a constant decay of 0.9999 would still hold most of its weight on the
initial weights (printed above).

**What CFG changes: whether samples follow their label, and their diversity.** Guidance lifts class accuracy to
(nearly) every sample and lowers the within-class spread. With the raw weights it also improves FID (the push
towards the label repairs malformed digits); with the EMA weights, whose digits are already good, FID gets worse as
$w$ grows: what remains is lost variety and a change of style (bolder, thicker, more uniform strokes in the grids:
CFG's over-saturation, in grey levels). The same $w$ is not the same strength for different weights, so guidance is
compared at matched class accuracy, not at matched $w$. A little guidance buys almost all of the accuracy at a small
cost in FID (the lowest FID above 95% accuracy among all CFG runs, printed above, is at a $w$ between the sweep's
grid points), in line with Ho & Salimans (2021).

**$w = 0$, the null branch.** The null label gives chance-level class accuracy, as it should. Its FID is far worse
than the conditional branch's, and the null branch along the fine-tune (section 4, printed above) shows where that
comes from: at step 0 it *is* the shipped unconditional model; the fine-tune, in which only one label in ten is
null, moves the shared weights towards the conditional task, and the unconditional function that the null row
selects degrades with it.

**A larger null share.** The same fine-tune with label dropout 0.5 instead of 0.1 (section 4's label-dropout table,
same steps) is the direct test of "the unconditional half got less training". Its null branch's FID lies between the
warm start's and the shipped fine-tune's, and the printed verdicts against both say whether the 95% intervals
resolve either difference at this N; without guidance its class accuracy is lower than the shipped model's. Dropping
the label more often shifts training from the conditional branch to the unconditional one: it may help the null
branch, it costs the conditional one, and this budget cannot show that it restores the model the fine-tune started
from.

**Classifier guidance against CFG.** The guiding classifier is informative only in the second half of sampling (its
accuracy by $t$, printed above), and from the middle scales on it accepts the samples more often than the
independent evaluation classifier: its gradient is partly adversarial (the grids at large $s$ show speckles that
convince it without drawing a better digit). Two comparisons answer two questions. *On the one conditional model*
(classifier guidance steering its null branch), CFG has the lower FID at interpolated matched accuracy (printed
above) — but that mixes the method with a degraded null branch. *Each method on the model it is meant for*
(classifier guidance on the unconditional `ddpm-mnist`, CFG on the conditional model, accuracies matched within one
point) is the fair comparison; its verdicts, with intervals, are printed above and in section 5's table.

**Cost.** CFG doubles the network work per step, and on one CPU thread batching cannot hide that: the batched call
on 2N costs at least two calls on N (printed above). The batched form pays on a GPU that N images do not saturate;
no GPU is available to measure that. Classifier guidance adds a forward and backward pass of a classifier about a
tenth of the U-Net's size.

**The course's data sets.** CIFAR-10, landscapes and Stanford Cars load through `helpers.data` and train through the
same `helpers.train` when they are available (online, or as a local image folder); this machine has neither, so all
the measurements above are on MNIST.""".strip()))
P.write()
