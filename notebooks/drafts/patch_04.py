"""Adds issue 13's measurements to notebooks/04_cfg_ema.ipynb (run once from the repository root, then re-execute the
notebook in full mode; delete this file after): the null branch (w = 0) along the fine-tune, and classifier guidance
on the unconditional checkpoints/ddpm-mnist against CFG at class accuracies matched within one point, with bootstrap
intervals on every FID compared. The notebook has no generator; this script edits its sources in place."""
import nbformat as nbf

import sys

PATH = sys.argv[1] if len(sys.argv) > 1 else "notebooks/04_cfg_ema.ipynb"
nb = nbf.read(PATH, as_version=4)
cells = nb.cells


def find(prefix: str) -> int:
    hits = [i for i, c in enumerate(cells) if c.source.startswith(prefix)]
    assert len(hits) == 1, (prefix, hits)
    return hits[0]


def replace(i: int, old: str, new: str) -> None:
    assert cells[i].source.count(old) == 1, (i, old)
    cells[i].source = cells[i].source.replace(old, new)


assert not any("null_branch" in c.source for c in cells), "already patched"
params = find("import sys")
replace(params, 'CLASSIFIER = str(ROOT / "checkpoints" / "noisy-classifier")', 'UNCONDITIONAL = str(ROOT / "checkpoints" / "ddpm-mnist")  # the unconditional DDPM (the fine-tune\'s start)\nCLASSIFIER = str(ROOT / "checkpoints" / "noisy-classifier")')
replace(params, "TARGET_ACCURACY = 0.95", "BOOTSTRAP = pick(quick=20, standard=100, full=200)  # bootstrap resamples per FID interval\nTARGET_ACCURACY = 0.95")
imports = find("import inspect, time")
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
nbf.write(nb, PATH)
print(f"patched {PATH}: {len(cells)} cells")
