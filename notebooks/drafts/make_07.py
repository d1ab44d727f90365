"""Writes notebooks/07_fast_sampler.ipynb (the sources; execution is separate). Run from the repository root."""
import nbformat as nbf

from cells import cells, code, md  # notebooks/drafts/cells.py

md(r'''
# 07 · A fast sampler of our own: fitted multistep coefficients and calibrated noise

**Question.** Notebooks 05 and 06 measured the established ways to sample in few network evaluations (NFE): the
training-free ODE solvers (DDIM, DPM-Solver++(2M), Heun), respaced ancestral DDPM, and progressive distillation. This
notebook proposes two new strategies, implements them with the library's sampler signature, and compares them with
the established ones at 4 to 20 NFE on the shipped MNIST model (`checkpoints/ddpm-mnist`), with ablations, a second
model, the calibration's cost and the limitations.

* **`lsq-ms`** (`helpers/multistep_fit.py`): a multistep sampler whose coefficients are not derived from a Taylor
  expansion but *fitted in closed form* (one least-squares problem of four unknowns per step, no backpropagation) so
  that its states follow a 1000-step solver of the same ODE.
* **`cn-2m`** (`helpers/calibrate.py`): DPM-Solver++(2M) with a *calibrated noise share per band of noise levels*:
  where along the trajectory to inject fresh noise, and how much, chosen on a different network's features.

Neither calibration touches the features the evaluation uses (the MNIST-CNN), nor the evaluation's starting noise:
`lsq-ms` fits trajectory error against a many-step teacher, `cn-2m` a Fréchet distance on the *noise-aware
classifier*'s features of *training* digits; both draw their images from seed 1, the evaluation from seed 0. Scores:
FID and KID on the project's MNIST-CNN features (offline; not comparable to published Inception FIDs), N = 1000 per
set, against the 10,000 test digits. Set `WORKBOOK_MODE=quick` for a fast run (CI); the committed copy ran in full mode.
''')

code(r'''
import sys
from pathlib import Path
sys.path.insert(0, str(Path.cwd().parent))  # the repository root, so that `helpers` imports
from helpers.paths import ROOT, is_quick, pick, run_mode

SEED = 0
DEVICE = "cpu"
QUICK = is_quick()
CHECKPOINT = ROOT / "checkpoints" / "ddpm-mnist"        # its calibration.json: `make calibrate-samplers`
DIGITS_CHECKPOINT = ROOT / "checkpoints" / "ddpm-digits8"  # the second model (8 x 8 digits)
BENCH_CSV = ROOT / "bench" / "results" / "fast_fid.csv"    # `make bench-fast`
RUN_BENCH = QUICK                    # True: run the benchmark's own code here too (quick: two configurations, 20 images)
ABLATION_NFE = 6                     # the NFE of the ablations
ABLATION_N = pick(20, 200, 1000)     # images per ablation row (images 0..N-1 of SEED)
TEACHER_IMAGES = pick(4, 8, 16)      # teacher trajectories made here (held-out check, calibration-size ablation)
TEACHER_STEPS = pick(40, 250, None)  # the teacher's grid (None: all T = 1000 timesteps, as the shipped calibration)
SIZES = pick((2, 4), (2, 8), (2, 4, 16))        # calibration-set sizes of the ablation (plus the shipped 256)
TRANSFER_NFE = pick((8,), (10,), (10,))         # NFE at which cn-2m's noise share, tuned at 6, is checked
DIGITS_N = pick(20, 500, 1000)       # images per row on the 8 x 8 model
DIGITS_FIT = pick(8, 64, 256)        # its calibration trajectories
DIGITS_NFE = pick((4,), (4, 6, 10), (4, 6, 10))
DIGITS_REFERENCE_STEPS = pick(50, 1000, 1000)  # the ancestral reference (DDPM with all T = 1000 steps outside quick mode)
GRID_IMAGES = 10
BOOTSTRAP = pick(20, 200, 200)       # bootstrap resamples per FID interval of the ablations
''', tags=["parameters"])

code(r'''
import inspect, json, time
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Code, display

from helpers import calibrate, multistep_fit as msf, stats
from helpers.data import load_images
from helpers.denoisers import from_checkpoint
from helpers.metrics import compute_features, fid_interval, frechet_distance, label, reference_features
from helpers.plotting import show_grid
from helpers.results import Results
from helpers.samplers import generate

torch.manual_seed(SEED)
pd.set_option("display.precision", 4)
R = Results("07_fast_sampler", seed=SEED)
model, card = from_checkpoint(CHECKPOINT, device=DEVICE)
shipped = model.calibration
T = model.alpha_bar.shape[0]
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mode {run_mode()}; {CHECKPOINT.name}: "
      f"{card['parameters']:,} parameters; calibrations shipped in {CHECKPOINT.name}/calibration.json: {sorted(shipped)}")
''')

md(r'''
## 1. The idea, and why it should help

**Notation** (as notebooks 05 and 06). $z_t = \alpha_t x + \sigma_t \epsilon$ with $\alpha_t = \sqrt{\bar\alpha_t}$,
$\sigma_t = \sqrt{1 - \bar\alpha_t}$, $\lambda_t = \log(\alpha_t / \sigma_t)$; the network's clean-image estimate at
step $i$ of a grid $t_0 > t_1 > \dots > t_{K-1}$ is $D_i = \hat x(z_{t_i}, t_i)$, one network call. The grids are
"trailing" (they start at $t = 999$); the last step goes to $\sigma = 0$.

**Every fast ODE sampler of the library is linear in a few recent estimates.** DDIM's step is
$z_{i+1} = a_i z_i + b_{i0} D_i$ with $a_i = \sigma_{i+1}/\sigma_i$ and $b_{i0} = \alpha_{i+1} - a_i \alpha_i$;
DPM-Solver++(2M) (Lu et al. 2022) adds the previous estimate, $z_{i+1} = a_i z_i + b_{i0} D_i + b_{i1} D_{i-1}$,
with $b$'s from a second-order expansion in $\lambda$ (`msf.solver_coefficients`, printed below; a test checks
that both rules, run through `lsq-ms`'s code, reproduce the two samplers). These coefficients are right in the limit
of small steps; at 4 to 10 steps they are not, which is why DPM-Solver++(2M) needs many more calls to reach the
ODE's quality (notebook 05, and section 4 here).

**`lsq-ms`: fit the coefficients instead.** Keep the form, with the state and the last three estimates,
$z_{i+1} = a_i z_i + b_{i0} D_i + b_{i1} D_{i-1} + b_{i2} D_{i-2}$, and choose the four numbers of each step by least
squares against where a 1000-step DPM-Solver++(2M) (the *teacher*, the same ODE solved almost exactly) is at
$t_{i+1}$, from the same $x_T$:
$$ (a_i, b_i) = \arg\min \sum_{\text{images}} \lVert a\, z_i + \textstyle\sum_k b_k D_{i-k} - z^\text{teacher}_{t_{i+1}} \rVert^2
   = (A^\top A)^{-1} A^\top y, $$
with one column of $A$ per term (flattened over images and pixels) and $y$ the teacher's states. The steps are fitted
in order, on the sampler's *own* states $z_i$ (not the teacher's), so that each step also corrects what the fitted
steps before it got wrong; the last step targets the teacher's final image. **Why it should help:** the fitted step
can only be as good as DDIM's or DPM-Solver++'s or better on the calibration trajectories (both are points of its
search space), four numbers per step cannot overfit 256 images of 784 pixels, and the network's errors that are
systematic along the trajectory (the estimates $D_i$ at high noise are blurry averages) are partly corrected by the
fitted mix. **Its ceiling** is the teacher: the probability-flow ODE, whose FID on this model levels off well above
ancestral sampling (notebook 05; here, the rows at 15 and 20 NFE against DDPM-1000's in section 4).

**`cn-2m`: spend some of the budget on noise, where it helps.** SDE-DPM-Solver++(2M) (Lu et al. 2022, sec. 5) takes
the same step with a noise share $\eta$:
$z_{i+1} = \frac{\sigma_{i+1}}{\sigma_i} e^{-\eta h} z_i + \alpha_{i+1}(1 - e^{-(1+\eta)h}) D + \sigma_{i+1}\sqrt{1 - e^{-2\eta h}}\, \xi$,
$h = \lambda_{i+1} - \lambda_i$, $\xi \sim \mathcal N(0, I)$ ($\eta = 0$: DPM-Solver++(2M); $\eta = 1$ on a
first-order step: DDPM's posterior step). Injected noise corrects errors of earlier steps (it contracts the
distribution towards the true marginals, Xu et al. 2023 "Restart sampling") but with few steps it also costs
resolution. `cn-2m` lets $\eta$ depend on the noise level through three bands of $t$ (high, middle, low noise),
chosen by coordinate search on a grid of $\eta \in \{0, 0.25, \dots, 1\}$ to minimise the Fréchet distance between
500 generated and 10,000 real *training* digits on the noise-aware classifier's features. Because $\eta$ depends on
$t$, not on the step index, one calibration (made at 6 steps) serves every NFE.

**What is new, and what is not.** Learned solver coefficients are published: Bespoke solvers (Shaul et al. 2024)
and S4S (Frankel et al. 2025) optimise coefficients (and times) by backpropagating through the sampler; PAS (Wang
et al. 2025) and DMN learn low-dimensional corrections. `lsq-ms` differs in that each step's coefficients are the
exact solution of a linear least-squares problem on the sampler's own states: no gradient through the network,
no learning rate, no iterations, calibration cost one teacher pass plus one pass of the sampler. Noise injection
with a hand-set amount is also published (EDM's $S_\text{churn}$, Karras et al. 2022; Restart, Xu et al. 2023;
SA-Solver); `cn-2m`'s band-wise $\eta$ calibrated on another network's features is, to our knowledge, not. We did not
reimplement Bespoke, S4S or Restart, so this notebook cannot say how `lsq-ms` compares with them at equal
calibration budget; it compares against the training-free solvers and the distilled students.
''')

code(r'''
for name in ("ddim", "dpmpp-2m"):
    ts = msf.grid_of(model, ABLATION_NFE)
    print(f"{name} on the {ABLATION_NFE}-step trailing grid {ts}, as (a_i, b_i0[, b_i1]):")
    print("   " + "; ".join("(" + ", ".join(f"{v:.4f}" for v in c) + ")" for c in msf.solver_coefficients(model, ts, name)))
display(Code(inspect.getsource(msf.fit), language="python"))
''')

md(r'''
## 2. The shipped calibrations

`make calibrate-samplers` made both (its commands are in the file). `lsq-ms`: 256 teacher trajectories of
1000 DPM-Solver++(2M) steps from seed-1 noise, then one fit per number of steps (4, 5, 6, 8, 10, 15 and 20 calls).
`cn-2m`: two sweeps of coordinate search at 6 steps, 500 images per candidate. The tables give what each found and
cost; the figure compares the fitted coefficients of the 6-step grid with DPM-Solver++(2M)'s.
''')

code(r'''
lsq, cn = shipped["lsq-ms"], shipped["cn-2m"]
cost = pd.DataFrame([
    {"sampler": "lsq-ms", "what was fitted": f"{len(lsq['fits'])} grids x {lsq['history'] + 1} coefficients per step",
     "calibration images": lsq["num"], "network calls": lsq["num"] * T + sum(lsq["num"] * int(k) for k in lsq["fits"]),
     "seconds": lsq["seconds"], "command": lsq["command"]},
    {"sampler": "cn-2m", "what was fitted": f"eta of 3 noise bands: {cn['eta_bands']}", "calibration images": cn["num"],
     "network calls": cn["nfe"], "seconds": cn["seconds"], "command": cn["command"]}])
display(cost)
R.table("calibration_cost", cost, "what each calibration fitted, on how many images, its network calls and seconds (one thread)")
search = pd.DataFrame([{"eta (high, middle, low noise)": str(h["eta_bands"]), "Frechet distance (noisy-classifier features)": h["distance"]}
                       for h in cn["history"]]).drop_duplicates()
display(search.sort_values("Frechet distance (noisy-classifier features)").head(8).reset_index(drop=True))
etas = pd.DataFrame({k: pd.Series(calibrate.band_etas(cn["eta_bands"], msf.grid_of(model, k), T), index=[f"step {i + 1}" for i in range(k)])
                     for k in (4, 5, 6, 8, 10, 15, 20)}).T
etas.index.name = "NFE"
print("cn-2m's noise share at each step of each grid (the last step returns x0_hat, so its eta has no effect):")
display(etas.astype(object).fillna(""))
print(f"cn-2m: {len(cn['history'])} candidates; the ODE (all 0) scores {cn['history'][0]['distance']:.3f}, "
      f"the chosen {cn['eta_bands']} {cn['distance']:.3f}, all 1 (SDE-DPM-Solver++(2M)) "
      f"{min(h['distance'] for h in cn['history'] if h['eta_bands'] == [1.0, 1.0, 1.0]) if any(h['eta_bands'] == [1.0, 1.0, 1.0] for h in cn['history']) else 'not tried'}")
''')

code(r'''
fig, axes = plt.subplots(1, 2, figsize=(11, 3.3))
for ax, k in zip(axes, (ABLATION_NFE, 10)):
    ts = msf.grid_of(model, k)
    fitted = lsq["fits"][str(k)]["coefficients"]
    fixed = msf.solver_coefficients(model, ts, "dpmpp-2m")
    names = ["a (state)", "b0 (D_i)", "b1 (D_i-1)", "b2 (D_i-2)"]
    for j, name in enumerate(names):
        ax.plot(range(k), [c[j] if j < len(c) else np.nan for c in fitted], "o-", color=f"C{j}", label=f"lsq-ms {name}")
        ax.plot(range(k), [c[j] if j < len(c) else 0.0 for c in fixed], "x:", color=f"C{j}", label=f"DPM-Solver++(2M) {name}")
    ax.set_xlabel("step i"); ax.set_title(f"{k} steps: fitted (o) against DPM-Solver++(2M) (x)", fontsize=9); ax.grid(alpha=0.3)
axes[1].legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))
plt.tight_layout()
R.figure("coefficients", fig, "lsq-ms's fitted coefficients per step against DPM-Solver++(2M)'s, 6 and 10 steps")
plt.show()
''')

md(r'''
## 3. Does the fit generalise? Distance to the teacher on held-out trajectories

The fit minimised the distance to the teacher on its own 256 calibration trajectories (seed 1). Here the teacher is
run again from `TEACHER_IMAGES` starting points of the *evaluation's* seed 0 (never seen by the fit), and each
sampler's state after every step is compared with the teacher's at the same timestep (RMS per pixel, images in
$[-1, 1]$; the last column is the final image). In quick and standard modes the teacher takes fewer steps
(`TEACHER_STEPS`), so those numbers are only a check that the code runs.
''')

code(r'''
start = time.time()
grids = {k: msf.grid_of(model, k) for k in (4, ABLATION_NFE, 10)}
wanted = {t for g in grids.values() for t in g} | {-1}
x_eval, teacher_eval = msf.trajectories(model, TEACHER_IMAGES, wanted, teacher_steps=TEACHER_STEPS, seed=SEED)
rows = []
for k, ts in grids.items():
    for name, coefficients in (("DDIM", msf.solver_coefficients(model, ts, "ddim")),
                               ("DPM-Solver++(2M)", msf.solver_coefficients(model, ts, "dpmpp-2m")),
                               ("lsq-ms", lsq["fits"][str(k)]["coefficients"])):
        d = msf.distance_to_teacher(model, x_eval, teacher_eval, ts, coefficients)
        rows.append({"NFE": k, "sampler": name, "final image": d[-1], **{f"after step {i + 1}": v for i, v in enumerate(d)}})
held_out = pd.DataFrame(rows)
display(held_out)
R.table("held_out_rms", held_out, f"RMS per pixel to the teacher after each step, {TEACHER_IMAGES} held-out trajectories (seed {SEED})")
print("final image, RMS to the teacher's (held-out):"); display(held_out.pivot(index="NFE", columns="sampler", values="final image"))
calib_final = {k: lsq["fits"][str(k)]["rms_to_teacher"][-1] for k in grids}
print("the fit's own final RMS on its 256 calibration trajectories:", {k: round(v, 4) for k, v in calib_final.items()},
      f"(teacher {TEACHER_STEPS or T} steps here; {time.time() - start:.0f} s)")
''')

md(r'''
## 4. Quality against NFE: the main comparison

`bench/sampler_fid.py --grid fast` (and `fast-baselines`) drew the images; its CSV is read here. Every row is
images $0 \dots$ of seed 0 (image $i$ starts from the same $x_T$ in every row) from the EMA weights, scored against
the 10,000 MNIST test digits on MNIST-CNN features. `lsq-ms`, `cn-2m` and DPM-Solver++(2M) at 4 to 10 NFE drew five
disjoint sets of N = 1000: the row is the mean FID at N = 1000 and its 95% t-interval (`helpers.metrics.fid_blocks`;
notebook 06 checks that rule against real digits). At 15 and 20 NFE, and for the other baselines, one set of
N = 1000 with a bootstrap interval (`blocks` = 1; notebook 06 found that interval wider than the truth, so it is
conservative: comparisons that rest on it are more often "not resolved" than they should be). DDIM, DPM-Solver++(2M) and DDPM at 4 and 8 NFE and the distilled
students are notebook 06's rows (same seed, images and features), DDPM-1000 is notebook 05's (one set, no FID
interval). Clipping follows each sampler's default, as in notebooks 05 and 06: DDIM and DDPM clip $\hat x$ to
$[-1, 1]$, the others do not. Time per image: every row measured again in one sitting (`--retime 50`: one batch of
50, one thread, compiled), except DDPM-1000's, which is notebook 06's measurement made the same way.
''')

code(r'''
if RUN_BENCH:
    import importlib.util, tempfile
    spec = importlib.util.spec_from_file_location("sampler_fid", ROOT / "bench" / "sampler_fid.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    tmp = Path(tempfile.mkdtemp())
    bench.main(["--grid", "fast-quick", "--num", "20", "--batch-size", "10", "--no-compile", "--blocks", "2",
                "--csv", str(tmp / "q.csv"), "--samples", str(tmp / "samples")])
    display(pd.read_csv(tmp / "q.csv")[["name", "nfe", "fid", "fid_lo", "fid_hi", "s_per_image"]])

results = pd.read_csv(BENCH_CSV)
N = int(results["num"].iloc[0])
fid_col, kid_col = label("FID", "mnist-cnn", N), label("KID", "mnist-cnn", N)
METHODS = {"lsq-ms": "lsq-ms (ours)", "cn-2m": "cn-2m (ours)", "dpmpp-2m": "DPM-Solver++(2M)", "dpmpp-2m-sde": "SDE-DPM-Solver++(2M), eta 1",
           "ddim": "DDIM", "heun": "Heun", "ddpm": "DDPM (respaced)"}
results["method"] = np.where(results.name.str.startswith("student"), "distilled student (notebook 06)",
                             np.where(results.name.eq("ddpm-1000"), "DDPM-1000 (reference)", results.sampler.map(METHODS)))
shown = results.rename(columns={"fid": fid_col, "fid_lo": "95% lo", "fid_hi": "95% hi", "kid": kid_col, "kid_std": "KID std"})
shown = shown.sort_values(["method", "nfe"])[["method", "name", "nfe", fid_col, "95% lo", "95% hi", "blocks", kid_col, "KID std", "s_per_image", "clip_x0"]]
display(shown.reset_index(drop=True))
R.table("fid_by_nfe", shown, f"FID (95% interval), KID and s/image of our samplers and the established ones; N = {N} per set, MNIST-CNN features")
''')

code(r'''
fig, ax = plt.subplots(figsize=(8, 4.5))
styles = {"lsq-ms (ours)": ("o-", 2.2), "cn-2m (ours)": ("D-", 2.2), "distilled student (notebook 06)": ("^-", 1.2)}
for method, group in results[results.nfe <= 20].groupby("method"):
    group = group.sort_values("nfe")
    fmt, lw = styles.get(method, ("s--", 1))
    ax.errorbar(group.nfe, group.fid, yerr=np.vstack([group.fid - group.fid_lo, group.fid_hi - group.fid]), fmt=fmt, lw=lw,
                capsize=3, ms=4, label=method)
ref = results.set_index("name").loc["ddpm-1000"]
ax.axhline(ref.fid, ls=":", color="black", lw=1); ax.annotate(f"DDPM-1000 (NFE 1000, one set)", (4, ref.fid), xytext=(0, 3),
                                                           textcoords="offset points", fontsize=8)
ax.set_xscale("log", base=2); ax.set_yscale("log"); ax.set_xticks([4, 5, 6, 8, 10, 15, 20]); ax.set_xticklabels([4, 5, 6, 8, 10, 15, 20])
ax.set_xlabel("NFE (network evaluations per image)"); ax.set_ylabel(fid_col, fontsize=8); ax.grid(alpha=0.3, which="both")
ax.set_ylim(top=min(ax.get_ylim()[1], 1000)); ax.legend(fontsize=7, loc="upper right")
ax.set_title("quality against NFE (bars: 95% intervals)", fontsize=10)
plt.tight_layout()
R.figure("fid_by_nfe_plot", fig, "FID against NFE for our samplers and the established ones, 95% intervals")
plt.show()
''')

code(r'''
# The issue's targets: each of our samplers against DPM-Solver++(2M) at the same NFE, and the moonshot at 10 NFE.
by = results.set_index("name")
est = lambda n: (by.loc[n, "fid"], by.loc[n, "fid_lo"], by.loc[n, "fid_hi"])
rows = []
for k in (4, 5, 6, 8, 10, 15, 20):
    base = f"dpmpp-2m-{k}-trailing"
    rivals = results[(results.nfe == k) & ~results.sampler.isin(["lsq-ms", "cn-2m"]) & ~results.name.eq("ddpm-1000")]
    best = rivals.loc[rivals.fid.idxmin(), "name"] if len(rivals) else None
    for ours in ("lsq-ms", "cn-2m"):
        name = f"{ours}-{k}-trailing"
        if name not in by.index or base not in by.index:
            continue
        rows.append({"NFE": k, "sampler": ours, "FID": by.loc[name, "fid"], "95% lo": by.loc[name, "fid_lo"], "95% hi": by.loc[name, "fid_hi"],
                     "DPM-Solver++(2M)": by.loc[base, "fid"], "ratio to DPM-Solver++(2M)": by.loc[name, "fid"] / by.loc[base, "fid"],
                     "verdict against DPM-Solver++(2M)": stats.compare(est(name), est(base), (ours, "DPM-Solver++(2M)")),
                     "best other sampler at this NFE": best, "ratio to it": by.loc[name, "fid"] / by.loc[best, "fid"],
                     "ratio to DDPM-1000": by.loc[name, "fid"] / by.loc["ddpm-1000", "fid"]})
targets = pd.DataFrame(rows)
with pd.option_context("display.max_colwidth", 120):
    display(targets)
R.table("targets", targets, "each of our samplers against DPM-Solver++(2M) and the best other sampler at its NFE, and against DDPM-1000")
kid_est = lambda n: (by.loc[n, "kid"], by.loc[n, "kid"] - 1.96 * by.loc[n, "kid_std"], by.loc[n, "kid"] + 1.96 * by.loc[n, "kid_std"])
moon = {o: {"FID ratio to DDPM-1000 (one set, no interval)": by.loc[f"{o}-10-trailing", "fid"] / by.loc["ddpm-1000", "fid"],
            "KID verdict": stats.compare(kid_est(f"{o}-10-trailing"), kid_est("ddpm-1000"), (f"{o}-10", "DDPM-1000"))}
        for o in ("lsq-ms", "cn-2m") if f"{o}-10-trailing" in by.index}
for o, v in moon.items():
    print(f"moonshot (within 10% of DDPM-1000 at 10 NFE), {o}: FID {v['FID ratio to DDPM-1000 (one set, no interval)']:.2f}x DDPM-1000's; {v['KID verdict']}")
R.values("moonshot", moon, "our samplers at 10 NFE against DDPM-1000 (FID ratio; KID with its spread over real subsets)")
''')

md(r'''
Samples from the same noise: images 0 to 9 of seed 0 (the first images of every row above) at 4, 6 and 10 NFE.
''')

code(r'''
rows_shown = [("lsq-ms", {}), ("cn-2m", {}), ("dpmpp-2m", {}), ("ddim", {"eta": 0.0})]
nfes = (4, 6, 10)
fig, axes = plt.subplots(len(rows_shown), len(nfes), figsize=(3.3 * len(nfes), 0.55 * len(rows_shown) + 0.9 * len(rows_shown)))
for r, (name, opts) in enumerate(rows_shown):
    for c, k in enumerate(nfes):
        images = generate(model, GRID_IMAGES, SEED, sampler=name, steps=k, spacing="trailing", batch_size=GRID_IMAGES, **opts)
        show_grid(images, nrow=GRID_IMAGES, ax=axes[r, c], title=f"{name}, {k} NFE")
        axes[r, c].title.set_fontsize(8)
plt.tight_layout(); plt.show()
''')

md(r'''
## 5. Ablations (at 6 NFE, one set of `ABLATION_N` images each)

Each ablation row draws images $0 \dots N-1$ of seed 0, the first set of the benchmark's rows, and scores it with a
bootstrap interval (`fid_interval`), so rows within a table compare on the same starting noise; they are not
comparable to the five-set means of section 4 except through their shared first set.

**`cn-2m`'s components.** The noise share of each band on and off: all 0 is DPM-Solver++(2M), the calibration's
choice, all 1 is SDE-DPM-Solver++(2M), and neighbours of the choice.
''')

code(r'''
real = reference_features("mnist:test")

def score(images):
    fid, lo, hi = fid_interval(compute_features(images, "mnist-cnn"), real, num_boot=BOOTSTRAP, seed=SEED)
    return {fid_col.replace(f"N={N}", f"N={len(images)}"): fid, "95% lo": lo, "95% hi": hi}

def timed(fn):
    start = time.perf_counter(); images = fn(); return images, (time.perf_counter() - start) / len(images)

start = time.time()
rows = []
for bands in ([0.0, 0.0, 0.0], cn["eta_bands"], [0.0, 0.0, 0.5], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]):
    images = generate(model, ABLATION_N, SEED, sampler="cn-2m", steps=ABLATION_NFE, spacing="trailing", batch_size=250, eta_bands=tuple(bands))
    rows.append({"eta (high, middle, low)": str(bands), "note": "DPM-Solver++(2M)" if bands == [0.0] * 3 else "SDE-DPM-Solver++(2M)"
                 if bands == [1.0] * 3 else "calibrated (shipped)" if bands == cn["eta_bands"] else "", **score(images)})
ablation_cn = pd.DataFrame(rows).drop_duplicates("eta (high, middle, low)")
display(ablation_cn)
R.table("ablation_cn", ablation_cn, f"cn-2m's noise bands on and off at {ABLATION_NFE} NFE, N = {ABLATION_N}, seed {SEED}")
print(f"{time.time() - start:.0f} s")
''')

md(r'''
**The NFE it was tuned for against the NFE it runs at, and the calibration's features against the evaluation's.**
`cn-2m`'s $\eta$ was searched at 6 steps, on the noise-aware classifier's features, and is used at every NFE. Here
the bands are varied at `TRANSFER_NFE` and scored *on the evaluation's features*: an oracle check of both transfers,
not a calibration (the shipped choice stays the one made on the other network).
''')

code(r'''
rows = []
for k in TRANSFER_NFE:
    for bands in ([0.0, 0.0, 0.0], cn["eta_bands"], [0.0, 1.0, 1.0], [1.0, 1.0, 1.0]):
        images = generate(model, ABLATION_N, SEED, sampler="cn-2m", steps=k, spacing="trailing", batch_size=250, eta_bands=tuple(bands))
        rows.append({"NFE": k, "eta (high, middle, low)": str(bands), "shipped": bands == cn["eta_bands"], **score(images)})
transfer = pd.DataFrame(rows)
display(transfer)
R.table("ablation_transfer", transfer, f"cn-2m's noise bands at other NFEs than the 6 it was tuned at, scored on the evaluation's features, N = {ABLATION_N}")
''')

md(r'''
**`lsq-ms`'s components and its calibration set.** The history (how many past estimates each step mixes: 1 is a
fitted DDIM, 2 a fitted DPM-Solver++(2M), 3 the shipped form) and the number of calibration trajectories (fitted here
on the first $n$ of `max(SIZES)` teacher trajectories from the calibration's seed 1, with this mode's teacher;
the shipped fit used 256 trajectories of the 1000-step teacher). The fixed rules, DDIM and DPM-Solver++(2M), are the
reference rows. Each row also gives the fit's distance to the teacher on the held-out trajectories of section 3.
''')

code(r'''
start = time.time()
ts = grids[ABLATION_NFE]
x_cal, teacher_cal = msf.trajectories(model, max(SIZES), set(ts) | {-1}, teacher_steps=TEACHER_STEPS)
variants = [("DDIM (fixed rule)", msf.solver_coefficients(model, ts, "ddim")), ("DPM-Solver++(2M) (fixed rule)", msf.solver_coefficients(model, ts, "dpmpp-2m"))]
for history in (1, 2, 3):
    variants.append((f"history {history}, {max(SIZES)} trajectories", msf.fit(model, x_cal, teacher_cal, ts, history)[0]))
for n in SIZES[:-1]:
    variants.append((f"history 3, {n} trajectories", msf.fit(model, x_cal[:n], {t: v[:n] for t, v in teacher_cal.items()}, ts, 3)[0]))
variants.append((f"history 3, 256 trajectories (shipped)", lsq["fits"][str(ABLATION_NFE)]["coefficients"]))
rows = []
for name, coefficients in variants:
    images = generate(model, ABLATION_N, SEED, sampler="lsq-ms", steps=ABLATION_NFE, spacing="trailing", batch_size=250, coefficients=coefficients)
    held = msf.distance_to_teacher(model, x_eval, teacher_eval, ts, coefficients)[-1]
    rows.append({"variant": name, "held-out RMS to the teacher (final image)": held, **score(images)})
ablation_lsq = pd.DataFrame(rows)
display(ablation_lsq)
R.table("ablation_lsq", ablation_lsq, f"lsq-ms's history and calibration-set size at {ABLATION_NFE} NFE, N = {ABLATION_N}, seed {SEED}")
print(f"{time.time() - start:.0f} s")
''')

md(r'''
**A second model: the 8 × 8 digits** (`checkpoints/ddpm-digits8`, 0.7M parameters, notebook 05). `lsq-ms` is fitted
here on `DIGITS_FIT` trajectories of its own 1000-step teacher (seed 1) and compared with DPM-Solver++(2M), DDIM and
DDPM-1000, FID on raw-pixel features (64 numbers per image; no feature network exists at 8 × 8) against the 360 test
digits of scikit-learn's set, with a bootstrap interval. `cn-2m` does not transfer without a feature network of its
own at this size (its calibration needs one that the evaluation does not use), so it has no row.
''')

code(r'''
start = time.time()
digits, dcard = from_checkpoint(DIGITS_CHECKPOINT, device=DEVICE)
d_real = reference_features("digits:test", "pixels")
d_fit = msf.calibrate(digits, DIGITS_FIT, list(DIGITS_NFE), batch_size=256, log=lambda *_: None, teacher_steps=TEACHER_STEPS)
d_label = label("FID", "pixels", DIGITS_N)
def d_score(images):
    fid, lo, hi = fid_interval(compute_features(images, "pixels"), d_real, num_boot=BOOTSTRAP, seed=SEED)
    return {d_label: fid, "95% lo": lo, "95% hi": hi}
rows = []
for k in DIGITS_NFE:
    for name, opts in (("lsq-ms", {"coefficients": d_fit["fits"][str(k)]["coefficients"]}), ("dpmpp-2m", {}), ("ddim", {"eta": 0.0})):
        images = generate(digits, DIGITS_N, SEED, sampler=name, steps=k, spacing="trailing", batch_size=500, **opts)
        rows.append({"sampler": name, "NFE": k, **d_score(images)})
images = generate(digits, DIGITS_N, SEED, sampler="ddpm", steps=DIGITS_REFERENCE_STEPS, batch_size=500)
rows.append({"sampler": "ddpm", "NFE": DIGITS_REFERENCE_STEPS, **d_score(images)})
second = pd.DataFrame(rows)
display(second)
R.table("second_model", second, f"the 8x8 digits model: lsq-ms fitted on {DIGITS_FIT} trajectories against the fixed solvers and DDPM-1000, N = {DIGITS_N}, pixel FID")
print(f"{DIGITS_CHECKPOINT.name}: lsq-ms calibration {d_fit['teacher_seconds']:.0f} s for the teacher; the whole section {time.time() - start:.0f} s")
''')

md(r'''
## 6. What the calibration costs against what it saves

A calibration is paid once per model; each image drawn by our sampler instead of the cheapest established sampler
that reaches the same FID saves the difference in seconds per image. For each of our rows, the table finds the
established sampler with the fewest seconds per image whose FID is at most ours (`None`: no established sampler in
the table reaches it within 20 NFE), and the break-even number of images (`helpers.stats.break_even`). Calibration
seconds are wall times on one thread beside another job (an upper bound on CPU time). Differences of a few
milliseconds per image are within the timing's noise: `cn-2m` at 4 and 5 NFE runs exactly DPM-Solver++(2M)'s
computation, so its break-even numbers there mean nothing.
''')

code(r'''
cal_seconds = {"lsq-ms": lsq["seconds"], "cn-2m": cn["seconds"]}
established = results[~results.sampler.isin(["lsq-ms", "cn-2m"]) & ~results.name.str.startswith("student")]
rows = []
for _, r in results[results.sampler.isin(["lsq-ms", "cn-2m"])].sort_values(["sampler", "nfe"]).iterrows():
    as_good = established[established.fid <= r.fid]
    match = as_good.loc[as_good.s_per_image.idxmin()] if len(as_good) else None
    rows.append({"ours": r["name"], "FID": r.fid, "s per image": r.s_per_image,
                 "cheapest established sampler at least as good": None if match is None else match["name"],
                 "its FID": None if match is None else match.fid, "its s per image": None if match is None else match.s_per_image,
                 "break-even images": None if match is None else stats.break_even(cal_seconds[r.sampler], match.s_per_image, r.s_per_image)})
savings = pd.DataFrame(rows)
display(savings)
R.table("break_even", savings, "images after which each calibration is paid back against the cheapest established sampler of at least the same FID")
''')

md(r'''
## 7. What the measurements say

The facts the conclusions rest on, computed from the saved tables above (the verdicts use the 95% intervals of
section 4; "not resolved" where they overlap).
''')

code(r'''
facts = {}
for k in (4, 5, 6, 8, 10, 15, 20):
    for ours in ("lsq-ms", "cn-2m"):
        row = targets[(targets.NFE == k) & (targets.sampler == ours)]
        if len(row):
            facts[f"{ours} at {k} NFE"] = f"{row.iloc[0]['ratio to DPM-Solver++(2M)']:.2f}x DPM-Solver++(2M)'s FID; {row.iloc[0]['verdict against DPM-Solver++(2M)']}"
same = [k for k in (4, 5, 6, 8, 10) if f"cn-2m-{k}-trailing" in by.index and by.loc[f"cn-2m-{k}-trailing", "fid"] == by.loc[f"dpmpp-2m-{k}-trailing", "fid"]]
facts["NFE at which cn-2m draws exactly DPM-Solver++(2M)'s images (its noise falls only on the last step, which returns x0_hat)"] = same
for k in (6, 10):
    sde = f"dpmpp-2m-sde-{k}-eta1-trailing"
    for ours in ("lsq-ms", "cn-2m"):
        name = f"{ours}-{k}-trailing"
        if sde in by.index and name in by.index:
            facts[f"{ours} against SDE-DPM-Solver++(2M) (eta 1) at {k} NFE"] = stats.compare(est(name), est(sde), (ours, "SDE-DPM-Solver++(2M)"))
for k in (4, 8):
    if f"student-{k}" in by.index and f"lsq-ms-{k}-trailing" in by.index:
        facts[f"lsq-ms against the distilled student at {k} NFE"] = stats.compare(est(f"lsq-ms-{k}-trailing"), est(f"student-{k}"), ("lsq-ms", f"student-{k}"))
fin = held_out.pivot(index="NFE", columns="sampler", values="final image")
facts["held-out RMS to the teacher, lsq-ms / DPM-Solver++(2M) (final image)"] = {int(k): round(float(v), 3) for k, v in (fin["lsq-ms"] / fin["DPM-Solver++(2M)"]).items()}
for k in DIGITS_NFE:
    a, b = (second[(second.sampler == n) & (second.NFE == k)].iloc[0] for n in ("lsq-ms", "dpmpp-2m"))
    facts[f"8x8 model, {k} NFE"] = stats.compare((a[d_label], a["95% lo"], a["95% hi"]), (b[d_label], b["95% lo"], b["95% hi"]), ("lsq-ms", "DPM-Solver++(2M)"))
for key, value in facts.items():
    print(f"{key}: {value}")
R.values("facts", facts, "the comparisons the conclusions of notebook 07 rest on (95% intervals)")
''')

md(r'''
* **`lsq-ms` wins where the fixed rules are worst, and only there.** At 4 and 5 NFE its FID is clearly below
  DPM-Solver++(2M)'s (resolved; the ratios above); at 6 the intervals overlap, and at 8 and 10 the two are level.
  On held-out trajectories it stays closer to the teacher at every NFE (section 3), but from about 8 NFE on both
  samplers are already near the teacher's own quality, the probability-flow ODE's plateau of notebook 05 (the rows at
  15 and 20 NFE), and a fit to that teacher cannot go below it. The ablation of section 5 says where the gain comes
  from: the fitted coefficients on the newest estimates (history 2 against 1); the third estimate and the size of the
  calibration set matter little, since four numbers per step are fitted from hundreds of thousands of pixels.
* **`cn-2m` wins from 6 NFE on where it is resolved**: at 6 and 10; at 8, 15 and 20 its FID is lower but the
  intervals overlap (one set at 15 and 20). It is *identical* to DPM-Solver++(2M) at 4 and
  5 NFE: the calibration put noise only in the low-noise band, which grids of 4 and 5 steps reach only on their last
  step, and the last step returns $\hat x$ (the table of $\eta$ per step in section 2). Fresh noise late in the
  trajectory corrects part of the ODE's error, as Restart sampling argues.
* **The issue's target, a lower FID than DPM-Solver++(2M) at 4, 5, 6, 8 and 10 NFE with intervals that do not
  overlap, is not met by either sampler alone**: `lsq-ms` meets it at 4 and 5, `cn-2m` at 6 and 10, neither at 8.
  **The moonshot**, within 10% of DDPM-1000 at 10 NFE, is not met (`moonshot` above).
* **An established sampler does better than `cn-2m` where noise helps.** SDE-DPM-Solver++(2M) with $\eta = 1$ at
  every step, which the issue did not list as a baseline, is level with `cn-2m` at 6 NFE and scores lower at 10 (one
  set with a wide bootstrap interval, so the facts above say whether that is resolved), and the oracle check of
  section 5, scored on the evaluation's features, ranks full noise first as well (not resolved at N = 1000 either). The noise-aware classifier's features, on
  which `cn-2m` was calibrated, ranked noise at high and middle noise levels as harmful (section 2's search): the
  calibration network and the evaluation network disagree, and the sampler inherited the calibration network's
  preference. Calibrating on another network is what keeps the evaluation honest; which network that is decides
  the result.
* **Distillation still wins at 4 NFE** (the distilled student of notebook 06 against `lsq-ms`, above), at the price
  of hours of training against `lsq-ms`'s minutes of calibration (section 2 and notebook 06).
* **`lsq-ms` transfers to the second model** (8 × 8 digits, section 5), and more strongly than on MNIST: fitted there
  on its own teacher's trajectories, it beats DPM-Solver++(2M) at 4 and 6 NFE (resolved) and at 10 NFE is level
  with both DPM-Solver++(2M) and DDPM-1000 (the intervals overlap). On that model the ODE is about as good as
  ancestral sampling (notebook 05), so a better integrator of the ODE is all that is needed, which is what `lsq-ms` is.
* **Cost.** `lsq-ms` at $K$ = 4 or 5 NFE is not as good as DPM-Solver++(2M) at $K + 1$ (section 4's table): its gain
  is worth less than one network call per image, a few milliseconds, so its calibration (section 2) pays back only
  after hundreds of thousands of images
  (section 6); where an established sampler at the same or lower cost is as good, there is no break-even at all.

## 8. Limitations

* **Bounded by the teacher.** `lsq-ms` fits a deterministic sampler to the probability-flow ODE; on this model the ODE
  itself is worse than ancestral sampling (notebook 05), so no amount of fitting closes that gap. Its coefficients
  are tied to one grid per NFE (seven fits ship), to one model and to unguided sampling.
* **The calibration's features decide `cn-2m`.** Its three $\eta$ were searched by coordinate descent from the ODE,
  at one NFE, on 500 images per candidate; the search never evaluated full noise, and the features it used
  disagree with the evaluation's about noise at high noise levels (section 5's oracle check).
* **Not compared with the published learned solvers.** Bespoke solvers, S4S, PAS and Restart sampling were not
  reimplemented, so how `lsq-ms` and `cn-2m` compare with them at equal calibration budget is open.
* **Intervals.** Below 15 NFE our samplers and DPM-Solver++(2M) have five-set intervals; every other row is one set
  with a bootstrap interval, which is wide (notebook 06 found it conservative), so many comparisons with DDIM, DDPM,
  Heun and the SDE solver are "not resolved". FID is on MNIST-CNN features, not Inception.

## 9. What would close the gap

An `lsq-ms` whose deterministic part is fitted and whose noise is injected late, as in `cn-2m` (the two ideas are
compatible: the fitted step becomes the mean of an SDE step); `cn-2m` calibrated without any feature network, on the
model's own denoising loss of re-noised samples; the search started from full noise as well as from the ODE; and
coefficients that depend smoothly on the guidance scale, fitted once for the conditional model of notebook 04.
''')

nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
nbf.write(nb, "notebooks/07_fast_sampler.ipynb")
