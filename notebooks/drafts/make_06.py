"""Writes notebooks/06_progressive_distillation.ipynb (the sources; execution is separate)."""
import nbformat as nbf

from cells import cells, code, md  # notebooks/drafts/cells.py
from pathlib import Path

md(r'''
# 06 · Progressive distillation: a student that samples in 8, 4, 2 and 1 steps

**Question.** Notebook 05 accelerated sampling without training anything: DDIM and the higher-order ODE solvers take
fewer, larger steps with the same network. The second established strategy trains: **progressive distillation**
(Salimans & Ho, ICLR 2022) teaches a student to do in one DDIM step what its teacher does in two, and repeats, halving
the number of steps each round. What does it cost, how good are its 8-, 4-, 2- and 1-step students against the
teacher's own samplers at the same number of network evaluations (NFE), and after how many images has the training
paid for itself?

Everything here is written from scratch in `helpers/distill.py` on top of the one DDIM step the samplers use
(`helpers.diffusion.ddim_step`) and the one training loop (`helpers.loop.fit`); the student is the teacher's own
U-Net (`checkpoints/ddpm-mnist`, 2.7M parameters) trained on a new target. The quality numbers come from
`bench/sampler_fid.py --grid distill` (its CSV is committed and read here): N = 1000 images per configuration, the
same $x_T$ for image $i$ in every configuration, FID and KID on the project's MNIST-CNN features (offline; not
comparable to published Inception FIDs), each FID with a 95% interval. Set `WORKBOOK_MODE=quick` for a fast run (CI);
the committed copy ran in full mode.
''')

code(r'''
import sys
from pathlib import Path
sys.path.insert(0, str(Path.cwd().parent))  # the repository root, so that `helpers` imports
from helpers.paths import ROOT, is_quick, run_mode

SEED = 0
DEVICE = "cpu"
QUICK = is_quick()
TEACHER = ROOT / "checkpoints" / "ddpm-mnist"
STUDENTS = ROOT / "checkpoints" / "distill"                # made by `make distill-mnist` (commands in the cards)
BENCH_CSV = ROOT / "bench" / "results" / "distill_fid.csv"   # made by `make bench-distill`
RUN_BENCH = QUICK          # True: run the benchmark's own code here too (quick: two configurations, 20 images)
CHECK_IMAGES = 16 if QUICK else 64      # test digits for the per-step check of the rounds (section 2)
CHECK_ROUNDS = (4, 1) if QUICK else (64, 32, 16, 8, 4, 2, 1)
GRID_IMAGES = 8            # images per row of the sample grids (section 3)
GRID_STEPS = (4, 1) if QUICK else (128, 64, 32, 16, 8, 4, 2, 1)
CALIBRATION_DRAWS = 5 if QUICK else 40   # disjoint sets of real images for the interval check (section 4)
''', tags=["parameters"])

code(r'''
import inspect, json, time
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Code, display

from helpers import distill, stats
from helpers.data import load_images
from helpers.denoisers import from_checkpoint
from helpers.diffusion import alpha_bar_at
from helpers.metrics import fid_blocks, fid_by_sample_size, fid_interval, label, reference_features
from helpers.plotting import show_grid
from helpers.results import Results
from helpers.samplers import generate, initial_noise, image_generators

torch.manual_seed(SEED)
pd.set_option("display.precision", 4)
R = Results("06_progressive_distillation", seed=SEED)  # the tables and figures the write-up reads (results/ in full mode)
teacher, tcard = from_checkpoint(TEACHER, device=DEVICE)
cards = distill.rounds(STUDENTS)
students = {c["distillation"]["student_steps"]: from_checkpoint(STUDENTS / f"v-{c['distillation']['student_steps']}", device=DEVICE)[0]
            for c in cards}
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mode {run_mode()}; teacher "
      f"{TEACHER.name}: {tcard['parameters']:,} parameters, eps-prediction; students on grids of {sorted(students, reverse=True)} steps")
''')

md(r'''
## 1. The mathematics

**Notation.** The forward process of the linear schedule ($T = 1000$) has marginals
$q(z_t \mid x) = \mathcal N(\alpha_t x, \sigma_t^2 I)$ with $\alpha_t = \sqrt{\bar\alpha_t}$ and
$\sigma_t = \sqrt{1 - \bar\alpha_t}$, so $\alpha_t^2 + \sigma_t^2 = 1$; $x$ is a clean image, $z_t$ the noisy one,
$\epsilon \sim \mathcal N(0, I)$ the noise in $z_t = \alpha_t x + \sigma_t \epsilon$, and
$\mathrm{SNR}_t = \alpha_t^2 / \sigma_t^2$. A network gives an estimate $\hat x(z_t)$ of the clean image, whatever it
predicts: from $\hat\epsilon$, $\hat x = (z_t - \sigma_t \hat\epsilon)/\alpha_t$; from
$\hat v$ (with $v = \alpha_t \epsilon - \sigma_t x$), $\hat x = \alpha_t z_t - \sigma_t \hat v$.

**DDIM** (Song et al. 2021, eq. 12 with $\eta = 0$). From $z_t$ to an earlier time $s < t$:
$$z_s = \alpha_s \hat x + \sigma_s \hat\epsilon, \qquad \hat\epsilon = \frac{z_t - \alpha_t \hat x}{\sigma_t},$$
i.e. keep the current estimate of the noise and re-mix it with the current estimate of the image at the lower noise
level. Writing $\tilde z = z/\alpha$ and $\tilde\sigma = \sigma/\alpha$, this is exactly one Euler step of the
probability-flow ODE $\mathrm d\tilde z = \hat\epsilon(z_t)\,\mathrm d\tilde\sigma$ (Song et al. 2021, sec. 4.3):
**why DDIM accelerates.** The map from $x_T$ to $x_0$ is deterministic, so there is no injected noise that many small
steps would have to average out, and an Euler step is exact whenever $\hat\epsilon$ stays constant along the path,
which it nearly does over long stretches. **Why quality holds:** DDIM keeps the training marginals $q(z_t \mid x)$,
so the same network, trained once with $L_\text{simple}$, serves every step count; the only error is the
discretisation of the ODE, which shrinks as the steps do (notebook 05 measured it).

**Progressive distillation** (Salimans & Ho 2022, Algorithm 2). A teacher samples with DDIM on a grid of $2N$ steps;
a student, initialised with the teacher's weights, learns to sample on a grid of $N$ steps (every other point of the
teacher's grid). Training draws an image $x$, a student step $i$ (timestep $t$, the teacher's midpoint $t'$ and the
next student timestep $t''$) and noise $\epsilon$, forms $z_t = \alpha_t x + \sigma_t \epsilon$ and lets the teacher
take its two steps $z_t \to z_{t'} \to z_{t''}$. The target is the $\tilde x$ for which *one* student DDIM step from
$z_t$ lands exactly on $z_{t''}$; solving the DDIM step above for $\hat x$:
$$\tilde x = \frac{z_{t''} - (\sigma_{t''}/\sigma_t)\, z_t}{\alpha_{t''} - (\sigma_{t''}/\sigma_t)\, \alpha_t}.$$
The loss is $w(\lambda_t)\,\lVert \tilde x - \hat x_\eta(z_t)\rVert^2$ over the student's weights $\eta$. After
convergence the student becomes the teacher of the next round: $128 \to 64 \to \dots \to 1$ steps in seven rounds.
**Why it accelerates:** each round halves the NFE of sampling; the cost moves from every sample to a one-off training
run. **Why quality holds:** each round solves a deterministic regression (the target is a fixed function of $z_t$,
not a noisy sample as in $L_\text{simple}$), on the data distribution's own $z_t$, so the student can match it
closely; the error of one round is what the student cannot fit, and it compounds over the rounds.

**Choices made here, and why.**

* *Output parameterisation: $v$.* With $\hat\epsilon$ the estimate
  $\hat x = (z_t - \sigma_t \hat\epsilon)/\alpha_t$ multiplies the network's error by $\sigma_t/\alpha_t$, which is
  large at high noise (printed below for $t = 999$). With few steps the first step starts there and must already
  produce a usable $\hat x$, so the paper rejects $\epsilon$-prediction and uses $v$ or $x$. Here the student predicts
  $v$, for which $\hat x = \alpha_t z_t - \sigma_t \hat v$ stays bounded at every $t$.
* *Weighting: SNR + 1.* The loss on $v$ is the paper's "SNR+1" weighting of the loss on $x$: since
  $v = (\alpha_t z_t - x)/\sigma_t$, $\lVert \tilde v - \hat v \rVert^2 = \lVert \tilde x - \hat x\rVert^2/\sigma_t^2
  = (1 + \mathrm{SNR}_t)\,\lVert \tilde x - \hat x\rVert^2$; it never vanishes at high noise (unlike plain SNR
  weighting, which is what $\epsilon$-prediction implies).
* *Initialisation across parameterisations.* The teacher predicts $\epsilon$, the students $v$. The student starts
  from the teacher's weights, so a *conversion round* (round 0, `--convert`) first teaches the same network to output
  $v$ on the teacher's own 128-step grid (target: the teacher's own $\hat x$), before any halving; each halving round
  then changes only what the network has to learn, not how its output is read.
* *The linear schedule's terminal SNR is not zero* ($\bar\alpha_{999}$ is printed below). Sampling starts from
  $x_T \sim \mathcal N(0, I)$ as if it were $z_{999}$, exactly as the teacher's DDIM and DDPM do; the student is
  trained on $z_{999} = \alpha_{999} x + \sigma_{999}\epsilon$, as the data says, and with $v$-prediction its first
  $\hat x = \alpha_{999} z - \sigma_{999}\hat v \approx -\hat v$ is well defined. The grids are "trailing"
  (Lin et al. 2024): they always start at $t = 999$, and the one-step grid is $\{999\}$.
* *The last step* goes to $t'' = -1$, the clean data ($\alpha = 1$, $\sigma = 0$): there $\tilde x = z_{t''}$, the
  teacher's finished image, and the student's last step returns its $\hat x$ itself. No step clips $\hat x$ to
  $[-1, 1]$ (neither the teacher's target steps nor the students' sampling), so that the identity above holds.
''')

code(r'''
ab = teacher.alpha_bar
T = len(ab)
a_T, s_T = float(ab[-1]) ** 0.5, float(1 - ab[-1]) ** 0.5
print(f"linear schedule, T = {T}: alpha_bar_999 = {float(ab[-1]):.2e}, alpha_999 = {a_T:.4f}, sigma_999 / alpha_999 = {s_T / a_T:.0f} "
      f"(the factor on eps_hat's error in x_hat at t = 999), SNR_999 = {a_T**2 / s_T**2:.1e}")
for n in (8, 4, 2, 1):
    print(f"the {n}-step student's grid: {distill.grid(T, n)}")
display(Code(inspect.getsource(distill.x_tilde) + "\n" + inspect.getsource(distill.distillation_target), language="python"))
''')

md(r'''
## 2. The rounds: what each cost and how well each student learned

`make distill-mnist` runs the chain (one command per round, each resumable; the commands are in the cards). Every
round trains with batch 64, AdamW at a constant learning rate after a short warm-up, and an EMA of the weights (the
EMA weights are the student, and the next round's teacher); the table gives each round's budget. Each optimizer step
costs two teacher calls and a student forward and backward pass, whatever the round. Each round ran on one thread of
this 2-core machine while other jobs (benchmarks, other rounds) ran beside it, so its wall time, "minutes" below, is
an upper bound on its CPU time. The loss is
$\lVert\tilde v - \hat v\rVert^2$ (per pixel), which is not comparable across rounds: the targets differ.

The check below measures what the loss cannot: on `CHECK_IMAGES` test digits noised to every step $i$ of each
student's grid, the RMS distance (per pixel, images in $[-1, 1]$) between where one student step lands and where its
teacher's two steps land (the quantity a round trains to 0), against where the *teacher's* own single step of the same
size lands: the ratio is the share of the one-step error that the round left.
''')

code(r'''
table = pd.DataFrame([{
    "student steps": c["distillation"]["student_steps"], "teacher": Path(c["distillation"]["teacher"]).name,
    "teacher steps": c["distillation"]["teacher_steps"], "round": "convert eps -> v" if c["distillation"]["convert"] else "halve",
    "optimizer steps": c["step"], "batch": c["train"]["batch_size"], "lr": c["train"]["lr"],
    "minutes": c["wall_time_s"] / 60, "final loss": c["final_loss"]} for c in cards])
display(table)
distill_seconds = sum(c["wall_time_s"] for c in cards)
print(f"the whole chain: {distill_seconds / 3600:.2f} hours on one thread (wall times from the cards; an upper bound on CPU time), "
      f"{sum(c['step'] for c in cards):,} optimizer steps")
R.table("rounds", table, "each distillation round: teacher, grid, optimizer steps, batch, learning rate, minutes on one thread, final loss")
R.values("chain", {"hours_on_one_thread": round(distill_seconds / 3600, 2), "optimizer_steps": sum(c["step"] for c in cards),
                   "rounds": len(cards)}, "the whole chain's cost (wall times from the model cards, each round on one "
         "thread beside other jobs: an upper bound on its CPU time)")

fig, axes = plt.subplots(1, len(cards), figsize=(2.2 * len(cards), 2.4), sharey=False)
for ax, c in zip(np.atleast_1d(axes), cards):
    steps, losses = zip(*c["loss_history"])
    ax.plot(steps, losses); ax.set_yscale("log"); ax.set_title(f"-> {c['distillation']['student_steps']} steps", fontsize=9)
    ax.set_xlabel("optimizer step", fontsize=8); ax.tick_params(labelsize=7); ax.grid(alpha=0.3)
np.atleast_1d(axes)[0].set_ylabel("loss (v, EMA of batches)", fontsize=8)
plt.tight_layout(); plt.show()
''')

code(r'''
x0 = load_images("mnist:test").images[:CHECK_IMAGES]
g = torch.Generator().manual_seed(SEED)
rows = []
for c in cards:
    d = c["distillation"]
    n = d["student_steps"]
    if d["convert"] or n not in CHECK_ROUNDS:
        continue
    round_teacher = students[d["teacher_steps"]]  # the round's teacher is the previous student (EMA weights)
    student_grid, teacher_grid = distill.grid(T, n), distill.grid(T, 2 * n)
    errs = []
    for i in range(n):
        t, t_mid, t_next = student_grid[i], teacher_grid[2 * i + 1], student_grid[i + 1]
        eps = torch.randn(x0.shape, generator=g)
        a = float(alpha_bar_at(ab, t)) ** 0.5
        z_t = a * x0 + (1 - a * a) ** 0.5 * eps
        errs.append([e.mean().item() for e in distill.step_errors(round_teacher, students[n], z_t, t, t_mid, t_next)])
    errs = np.array(errs)
    rows.append({"student steps": n, "one student step (RMS from two teacher steps)": errs[:, 0].mean(),
                 "one teacher step (RMS from two teacher steps)": errs[:, 1].mean(),
                 "ratio": errs[:, 0].mean() / errs[:, 1].mean(), "worst step (student)": errs[:, 0].max()})
check = pd.DataFrame(rows)
display(check)
R.table("step_check", check, f"RMS per pixel of one student step and one teacher step against two teacher steps, {CHECK_IMAGES} test digits")
''')

md(r'''
## 3. Samples from the same noise

Each row starts from the same `GRID_IMAGES` $x_T$ (seed 0, images 0 to 7). Left: the student on its own grid.
Right: the teacher's DDIM ($\eta = 0$, no clipping, the same trailing grid), which is what the student replaces at
the same NFE. The top-left row, the 128-step conversion student, is the teacher's deterministic sampler in
$v$-form; a student that learned its rounds well keeps drawing the same digit from the same $x_T$ as it halves.
''')

code(r'''
start = time.time()
fig, axes = plt.subplots(len(GRID_STEPS), 2, figsize=(9, 1.25 * len(GRID_STEPS)))
for row, n in enumerate(GRID_STEPS):
    s_images = generate(students[n], GRID_IMAGES, SEED, sampler="ddim", steps=n, spacing="trailing", clip_x0=False, batch_size=GRID_IMAGES)
    t_images = generate(teacher, GRID_IMAGES, SEED, sampler="ddim", steps=n, spacing="trailing", clip_x0=False, batch_size=GRID_IMAGES)
    show_grid(s_images, nrow=GRID_IMAGES, ax=axes[row, 0], title=f"student, {n} steps")
    show_grid(t_images, nrow=GRID_IMAGES, ax=axes[row, 1], title=f"teacher DDIM, {n} steps")
    for ax in axes[row]:
        ax.title.set_fontsize(9)
plt.tight_layout(); plt.show()
print(f"drawn in {time.time() - start:.0f} s")
''')

md(r'''
## 4. Quality against NFE, with intervals

The benchmark draws N = 1000 images per configuration and scores them against the 10,000 MNIST test digits. The
students sample as their cards say (DDIM on their trailing grid, no clipping). The baselines are the teacher's own
samplers at the same NFE on the same trailing grids: DDIM ($\eta = 0$, $\hat x$ clipped as in notebook 05),
DPM-Solver++(2M) (no clipping; at one step it is DDIM) and respaced ancestral DDPM; and the two references of
notebook 05, DDIM-50 (linspace) and DDPM-1000. Time per image was measured again for every row in one sitting
(`bench/sampler_fid.py --retime 50`: one batch of 50 images, one thread, the network compiled with `torch.compile`),
so that the rows compare; `timed_images` says on how many.

**The intervals.** FID depends on N (it is biased upwards at small N), so every row is FID at the same N, and its
95% interval says how much that number moves with the images drawn. Every configuration up to 32 NFE, and DDIM-50,
draws five disjoint sets of N images (images 0 to 5N-1 of seed 0; each image has its own generator, so the sets are
independent): the row gives the mean of the five FIDs and its t-interval (`helpers.metrics.fid_blocks`). The
64-step student draws one set; its
interval is FID $\pm$ 1.96 bootstrap standard deviations over the images (`helpers.metrics.fid_interval`). The
128-step conversion student has no row (its 128 calls per image did not fit the run; section 3 shows its samples). The
columns `blocks` and `interval` say which. A cell below checks both rules where the truth is known: sets of real
training digits scored against the test digits.

**DDPM-1000** costs a million network calls for one set of N = 1000, more than this benchmark's run could spend, so
its row is notebook 05's (`bench/results/fid_vs_nfe.csv`: the same network, seed, N, features and starting noise;
one set, so no FID interval), with its time per image measured again beside the others. Comparisons with it use
KID, whose estimate comes with a standard deviation over 100 subsets of the real digits (clean-fid's convention):
KID $\pm$ 1.96 std. That spread covers which real digits are drawn, not which samples, so it is narrower than a
full interval; the comparisons below that rely on it are far outside it. KID is an unbiased estimate of a squared
distance, so for a set close to the real digits it can come out negative, and its standard deviation can exceed its
value: an interval that reaches below zero says that at this N, KID cannot tell the set from real digits.
''')

code(r'''
if RUN_BENCH:
    import importlib.util, tempfile
    spec = importlib.util.spec_from_file_location("sampler_fid", ROOT / "bench" / "sampler_fid.py")
    bench = importlib.util.module_from_spec(spec); spec.loader.exec_module(bench)
    tmp = Path(tempfile.mkdtemp())
    bench.main(["--grid", "distill-quick", "--num", "20", "--batch-size", "10", "--no-compile", "--blocks", "2",
                "--csv", str(tmp / "q.csv"), "--samples", str(tmp / "samples")])
    display(pd.read_csv(tmp / "q.csv")[["name", "nfe", "fid", "fid_lo", "fid_hi", "s_per_image"]])

results = pd.read_csv(BENCH_CSV)
N = int(results["num"].iloc[0])
fid_col, kid_col = label("FID", "mnist-cnn", N), label("KID", "mnist-cnn", N)
results["method"] = np.select([results.name.str.startswith("student"), results.name.eq("ddim-50-eta0"), results.name.eq("ddpm-1000"),
                               results.name.str.contains("noclip")],
                              ["student", "DDIM-50 (reference)", "DDPM-1000 (reference)", "teacher DDIM, no clipping"],
                              results.sampler.map({"ddim": "DDIM", "dpmpp-2m": "DPM-Solver++(2M)", "ddpm": "DDPM"}))
shown = results.rename(columns={"fid": fid_col, "fid_lo": "95% lo", "fid_hi": "95% hi", "kid": kid_col, "kid_std": "KID std"})
shown = shown.sort_values(["method", "nfe"])[["method", "name", "nfe", fid_col, "95% lo", "95% hi", "blocks", "interval", kid_col, "KID std", "s_per_image", "timed_images"]]
display(shown.reset_index(drop=True))
R.table("fid_by_nfe", shown, f"FID (95% interval), KID and s/image of the students and the teacher's samplers; N = {N} per set, MNIST-CNN features")
print(f"N = {N} images per set, seed {int(results.seed.iloc[0])}; sets per row: {sorted(int(b) for b in results.blocks.unique())}; "
      f"{int(results.threads.iloc[0])} thread(s); compiled: {bool(results.compiled.iloc[0])}")
''')

code(r'''
fig, ax = plt.subplots(figsize=(7.5, 4.2))
for method, group in results.groupby("method"):
    group = group.sort_values("nfe")
    err = np.vstack([group.fid - group.fid_lo, group.fid_hi - group.fid])
    if "reference" in method or "no clipping" in method:
        r = group.iloc[0]
        ax.axhline(r.fid, ls=":", color="gray" if "DDIM" in method else "black", lw=1)
        if np.isfinite(r.fid_lo):  # DDPM-1000: one set, no interval
            ax.axhspan(r.fid_lo, r.fid_hi, color="gray" if "DDIM" in method else "black", alpha=0.08)
        ax.annotate(f"{method} (NFE {int(r.nfe)})", (1, r.fid), textcoords="offset points", xytext=(2, 3), fontsize=8)
        continue
    ax.errorbar(group.nfe, group.fid, yerr=err, fmt="o-" if method == "student" else "s--", capsize=3, label=method,
                lw=2 if method == "student" else 1)
ax.set_xscale("log", base=2); ax.set_yscale("log"); ax.set_xlabel("NFE (network evaluations per image)")
ax.set_ylabel(fid_col, fontsize=8); ax.grid(alpha=0.3, which="both"); ax.legend(fontsize=8)
ax.set_title("quality against NFE (bars and bands: 95% intervals)", fontsize=10)
plt.tight_layout()
R.figure("fid_by_nfe_plot", fig, "FID against NFE for the students and the teacher's samplers, 95% intervals")
plt.show()
''')

code(r'''
# The targets of the issue, and each student against the best of the teacher's samplers at its NFE.
by = results.set_index("name")
est = lambda name: (by.loc[name, "fid"], by.loc[name, "fid_lo"], by.loc[name, "fid_hi"])
kid_est = lambda name: (by.loc[name, "kid"], by.loc[name, "kid"] - 1.96 * by.loc[name, "kid_std"], by.loc[name, "kid"] + 1.96 * by.loc[name, "kid_std"])
verdicts = {}
for a, b in (("student-4", "ddim-50-eta0"), ("student-4", "ddpm-1000"), ("student-8", "ddpm-1000")):
    if a in by.index and b in by.index:
        if np.isfinite(by.loc[b, "fid_lo"]):
            verdicts[f"{a} against {b} (FID)"] = stats.compare(est(a), est(b), (a, b))
        else:  # one set, no FID interval: KID and its spread
            verdicts[f"{a} against {b} (KID)"] = stats.compare(kid_est(a), kid_est(b), (a, b))
for n in (8, 4, 2, 1):
    rivals = results[(results.nfe == n) & ~results.name.str.startswith("student")]
    if f"student-{n}" not in by.index or rivals.empty:
        continue
    best = rivals.loc[rivals.fid.idxmin(), "name"]
    verdicts[f"NFE {n}: student-{n} against the best baseline, {best}"] = stats.compare(est(f"student-{n}"), est(best), (f"student-{n}", best))
for k, v in verdicts.items():
    print(f"{k}: {v}")
R.values("verdicts", verdicts, "the issue's targets and each student against the best baseline at its NFE (95% intervals)")
''')

code(r'''
# Do the intervals have the right width? On real data the FID of a set of N training digits against the test digits
# varies only through which digits were drawn: the spread over many disjoint draws is the truth; compare it with the
# block rule's sd (from 5 sets) and with the bootstrap's sd (from one set).
real_test, real_train = reference_features("mnist:test"), reference_features("mnist:train")
width = lambda r: "conservative (wider)" if r > 1.15 else "too narrow" if r < 0.85 else "about right (within 15%)"
truth = fid_by_sample_size(real_train, real_test, [N], num_boot=CALIBRATION_DRAWS, seed=SEED).iloc[0]
rng = np.random.default_rng(SEED)
block_sd = [fid_blocks(real_train[rng.choice(len(real_train), 5 * N, replace=False)], real_test, N)["sd"] for _ in range(3)]
boot_sd = [(lambda v: (v[2] - v[0]) / 3.92)(fid_interval(real_train[rng.choice(len(real_train), N, replace=False)], real_test,
                                                          num_boot=200, seed=k)) for k in range(3)]
print(f"N = {N} real training digits against the test digits: FID {truth.fid_mean:.2f}, sd over {CALIBRATION_DRAWS} "
      f"draws {truth.fid_std:.2f} (the truth); sd from 5 blocks: {np.round(block_sd, 2).tolist()}; "
      f"bootstrap sd of one set: {np.round(boot_sd, 2).tolist()} ({np.mean(boot_sd) / truth.fid_std:.2f}x the truth: the "
      f"one-set rows' intervals are {width(np.mean(boot_sd) / truth.fid_std)})")
# An sd from 5 values has 4 degrees of freedom: it varies by about 1/sqrt(2 * 4) = 35% (relative) from draw to draw,
# which the t-interval's factor t(4) = 2.78 (instead of 1.96) accounts for. Judge the block rule against that noise.
r_block, se_block = np.mean(block_sd) / truth.fid_std, 1 / np.sqrt(2 * 4) / np.sqrt(len(block_sd))
print(f"the 5-block sd is {r_block:.2f}x the truth on average over {len(block_sd)} draws; an sd from 5 values varies by "
      f"about 35%, so {r_block:.2f} is " + ("within that noise (less than two standard errors from 1); the t-interval allows for it"
      if abs(r_block - 1) < 2 * se_block else "outside that noise: the block intervals are " + ("too narrow" if r_block < 1 else "too wide")))
R.values("real_floor", {"N": N, "fid_mean": float(truth.fid_mean), "fid_sd": float(truth.fid_std), "draws": CALIBRATION_DRAWS,
                        "block_sd": [float(v) for v in block_sd], "bootstrap_sd": [float(v) for v in boot_sd]},
         "FID of N real training digits against the test digits (the floor) and the spread of the two interval rules")
''')

md(r'''
## 5. What the training costs against what it saves

The chain's time (section 2, an upper bound on its CPU time) is paid once; each image drawn by a student instead of a slower sampler saves the
difference in seconds per image. The break-even point is the number of images after which distillation has paid for
itself (`helpers.stats.break_even`), against each slower way to get comparable images.
''')

code(r'''
rows = []
for n in (8, 4, 2, 1):
    if f"student-{n}" not in by.index:
        continue
    fast = by.loc[f"student-{n}", "s_per_image"]
    for slow in ("ddpm-1000", "ddim-50-eta0"):
        if slow in by.index:
            rows.append({"student": f"student-{n}", "instead of": slow, "s per image (student)": fast,
                         "s per image (instead)": by.loc[slow, "s_per_image"], "speed-up": by.loc[slow, "s_per_image"] / fast,
                         "break-even images": stats.break_even(distill_seconds, by.loc[slow, "s_per_image"], fast)})
display(pd.DataFrame(rows))
R.table("break_even", pd.DataFrame(rows), "images after which the distillation chain's time is paid back, per student and slower sampler")
print(f"one-off cost: the chain's {distill_seconds / 3600:.2f} hours on one thread ({distill_seconds:.0f} s)")
''')

md(r'''
## 6. What the measurements say

The key ratios first, computed from the table of section 4: each student's FID against the best training-free
sampler at the same NFE and against the two references, and its time per image against theirs.
''')

code(r'''
rows = []
for n in sorted((int(k.split("-")[1]) for k in by.index if k.startswith("student-")), reverse=True):
    s = by.loc[f"student-{n}"]
    rivals = results[(results.nfe == n) & ~results.name.str.startswith("student")]
    best = rivals.loc[rivals.fid.idxmin()] if len(rivals) else None
    rows.append({"student": f"student-{n}", "FID": s.fid, "95% lo": s.fid_lo, "95% hi": s.fid_hi,
                 "best baseline at this NFE": None if best is None else best["name"],
                 "its FID": None if best is None else best.fid,
                 "FID / best baseline": None if best is None else s.fid / best.fid,
                 "FID / DDIM-50": s.fid / by.loc["ddim-50-eta0", "fid"], "FID / DDPM-1000": s.fid / by.loc["ddpm-1000", "fid"],
                 "speed-up over DDIM-50": by.loc["ddim-50-eta0", "s_per_image"] / s.s_per_image,
                 "speed-up over DDPM-1000": by.loc["ddpm-1000", "s_per_image"] / s.s_per_image})
ratios = pd.DataFrame(rows)
display(ratios)
R.table("ratios", ratios, "each student's FID against the best baseline at its NFE and the references, and its speed-up in time")
''')

md(r'''
* **Distillation wins where the training-free samplers break down.** With 1, 2 and 4 network evaluations every
  student beats the best of the teacher's own samplers at the same NFE, by margins far outside the intervals (the
  verdicts of section 4 and the ratios above): with one or two calls DDIM, DPM-Solver++(2M) and respaced DDPM draw no
  digits at all, while the one- and two-step students draw recognisable ones (section 3). This is what the method is
  for: the cost of many small steps is moved into training.
* **At 8 NFE the second-order solver has caught up.** DPM-Solver++(2M) with 8 calls scores better than the 8-step
  student, resolved; respaced DDPM at 8 steps is level with it (the intervals overlap). Past 4 steps a better
  integrator of the teacher's ODE gains more than our distillation keeps.
* **The issue's targets are not met.** The 4-step student is worse than DDIM-50 (resolved), and every student is far
  from DDPM-1000 (resolved on KID). Two causes, both visible here. (1) The students imitate the teacher's
  *deterministic* sampler, so their ceiling is this model's probability-flow ODE, whose plateau notebook 05 found well
  above ancestral sampling; DDIM-50 already sits close to that plateau, so beating it needs an almost lossless chain.
  (2) The chain is not lossless: each round leaves part of the one-step error (section 2's ratio column), and the
  students' FID rises with every halving from 16 steps down, slowly at first and steeply at the end (the ratios
  table), so the error compounds. The paper's
  rounds train for 50,000 optimizer steps each; ours trained a few hundred (section 2), the budget this CPU allows.
* **Cost.** The whole chain took a few hours on one thread, once; a student image then costs a fraction of a
  DDIM-50 image and a tiny fraction of a DDPM-1000 one, so the chain has paid for itself after the break-even numbers
  of section 5: a few thousand images against DDPM-1000, tens of thousands against DDIM-50. Against the
  training-free sampler of equal quality there is no break-even at all: DPM-Solver++(2M) with 8 calls is both better
  and as fast as the 8-step student.
* **What would close the gap**, in order of expected effect: longer rounds (the paper's budget, on a GPU); a
  teacher whose deterministic sampler is as good as its ancestral one (notebook 05's 8 × 8 model is such a case);
  and distillation targets from a stochastic sampler (consistency-style or adversarial distillation), which the
  deterministic target of Algorithm 2 cannot express.
''')

nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
nbf.write(nb, "notebooks/06_progressive_distillation.ipynb")
