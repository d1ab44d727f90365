"""Adds issue 13's measurements to notebooks/05_ddpm_vs_ddim.ipynb (run once from the repository root after
bench/results/fid_vs_nfe.csv has its intervals and clipping rows, then re-execute the notebook in full mode and
rewrite section 8's text from the printed verdicts; delete this file after): a 95% interval on every FID, verdicts
instead of typed comparisons, the clipping ablation (each sampler the other way from its default), DDIM's image
series across eta from the same x_T, and the 8 x 8 floor at the samples' N. The notebook has no generator; this
script edits its sources in place."""
import nbformat as nbf

from cells import Patch  # notebooks/drafts/cells.py (run with PYTHONPATH=notebooks/drafts)

P = Patch("notebooks/05_ddpm_vs_ddim.ipynb", marker="clipping_table")
cells, find, replace = P.cells, P.find, P.replace

# Parameters: the 8x8 samples at the training set's N (the floor's), the eta series, bootstrap resamples.
params = find("import sys")
replace(params, "DIGITS_N = pick(200, 200, 500)", "DIGITS_N = pick(200, 200, 1437)")  # full: every training digit, the floor's N
replace(params, 'OVERHEAD_JSON =', 'PAIRS_CSV = ROOT / "bench" / "results" / "fid_pairs.csv"        # made by `python bench/paired_fid.py`\nOVERHEAD_JSON =')
replace(params, "HUB_ARCHITECTURES", "ETA_SERIES = (0.0, 0.2, 0.5, 1.0)   # DDIM's eta in the image series (the DDIM problem set)\n"
        "ETA_STEPS = 10 if QUICK else 50\nETA_IMAGES = 8\nBOOTSTRAP = 20 if QUICK else 200  # bootstrap resamples per FID interval (8x8 digits)\n"
        "HUB_ARCHITECTURES")
imports = find("import inspect, json")
replace(imports, "from helpers import cost, samplers\n", "from helpers import cost, samplers, stats\n")
replace(imports, "from helpers.metrics import compute_features, frechet_distance, label, reference_features\n",
        "from helpers.metrics import compute_features, fid_by_sample_size, fid_interval, frechet_distance, label, reference_features\n")

# Section 1: say which sampler clips.
s1 = find("## 1. Two samplers, one network")
replace(s1, r"$\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)) / \sqrt{\bar\alpha_t}$ (clipped to $[-1, 1]$).",
        r"$\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)) / \sqrt{\bar\alpha_t}$." "\n"
        r"**Clipping.** DDPM and DDIM clip $\hat x_0$ to $[-1, 1]$ (Ho et al.'s code; diffusers' `clip_sample=True`);" "\n"
        r"DPM-Solver++ and Heun do not (their papers; diffusers' defaults), since clipping makes the ODE's right-hand side" "\n"
        r"non-smooth, which a higher-order step assumes away. Each sampler runs with its own default everywhere; section 5" "\n"
        r"runs each one the other way too and measures what clipping changes.")

# Section 3: intervals, KID.
s3 = find("## 3. Number of steps")
cells[s3].source += r"""

Every FID carries a 95% interval: the FID $\pm 1.96$ standard deviations of the FID over 200 bootstrap resamples of
the N images (`metrics.fid_interval`; the real set is fixed, as for every configuration). Two configurations whose
intervals overlap are "not resolved at this N". Images $i$ of two configurations start from the same $x_T$, so these
intervals are conservative for differences; `bench/paired_fid.py` scores each comparison the notebook makes on the
difference itself (FID(A) - FID(B) over bootstrap resamples that take the same images from both, so the shared noise
cancels; `metrics.fid_difference`), and the verdicts below give both: "paired" resolves where its interval excludes 0.
KID (Bińkowski et al. 2018) is an unbiased estimate of the squared MMD
between the feature distributions: it can be negative when the true value is near zero, and a KID whose standard
deviation (over the estimator's subsets) is larger than its value cannot be told from zero at this N; the cell
below counts such rows."""
bench = find("if RUN_BENCH:")
replace(bench, '    display(pd.read_csv(tmp / "q.csv")[["name", "nfe", "fid", "s_per_image"]])\n',
        '    display(pd.read_csv(tmp / "q.csv")[["name", "nfe", "fid", "s_per_image"]])\n'
        '    spec = importlib.util.spec_from_file_location("paired_fid", ROOT / "bench" / "paired_fid.py")\n'
        '    paired_fid = importlib.util.module_from_spec(spec); spec.loader.exec_module(paired_fid)\n'
        '    paired_fid.main(["--csv", str(tmp / "q.csv"), "--samples", str(tmp / "samples"), "--out", str(tmp / "p.csv"), "--num-boot", "20"])\n')
replace(bench, 'results = pd.read_csv(BENCH_CSV)\n',
        'results = pd.read_csv(BENCH_CSV)\n'
        'pairs = pd.read_csv(PAIRS_CSV).set_index("name")  # bench/paired_fid.py, on the same images as BENCH_CSV\n'
        'def paired(a, b):\n'
        '    """The paired verdict on rows a and b (FID(a) - FID(b), 95% paired-bootstrap interval), None if not scored."""\n'
        '    r = pairs.loc[f"{a} - {b}"] if f"{a} - {b}" in pairs.index else None\n'
        '    return None if r is None else stats.compare_paired((r["diff"], r.diff_lo, r.diff_hi), (a, b))\n'
        'flipped = results.name.str.endswith(("-clip", "-noclip"))  # the clipping ablation of section 5\n'
        'clip_rows, results = results[flipped].copy(), results[~flipped].copy()\n')
replace(bench, 'fid_col, kid_col = label("FID", "mnist-cnn", N), label("KID", "mnist-cnn", N)\nresults = results.rename(columns={"fid": fid_col, "kid": kid_col})',
        'fid_col, kid_col = label("FID", "mnist-cnn", N), label("KID", "mnist-cnn", N)\n'
        'results = results.rename(columns={"fid": fid_col, "kid": kid_col})\n'
        'clip_rows = clip_rows.rename(columns={"fid": fid_col, "kid": kid_col})\n'
        'ci = lambda r: (r[fid_col], r.fid_lo, r.fid_hi)  # (FID, 95% lo, 95% hi) of a row')
replace(bench, '[["sampler", "steps", "nfe", fid_col, kid_col, "kid_std", "s_per_image"]]',
        '[["sampler", "steps", "nfe", fid_col, "fid_lo", "fid_hi", kid_col, "kid_std", "s_per_image"]]')
replace(bench, 'R.table("fid_by_nfe", results[["name", "sampler", "steps", "eta", "spacing", "nfe", fid_col, kid_col, "kid_std", "s_per_image"]],\n'
        '        f"every sampler configuration of bench/sampler_fid.py: FID and KID at N = {N} (one set, MNIST-CNN features), s/image")',
        'R.table("fid_by_nfe", results[["name", "sampler", "steps", "eta", "spacing", "nfe", fid_col, "fid_lo", "fid_hi", kid_col, "kid_std", "s_per_image", "clip_x0"]],\n'
        '        f"every sampler configuration of bench/sampler_fid.py: FID (95% bootstrap interval) and KID at N = {N} (one set, MNIST-CNN features), s/image")\n'
        'weak = results[(results[kid_col] < 0) | (results.kid_std > results[kid_col].abs())]\n'
        'print(f"KID below zero or smaller than its standard deviation: {len(weak)} of {len(results)} rows"\n'
        '      + (f" ({\', \'.join(weak.name)})" if len(weak) else ""))')
plot = find("fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))")
replace(plot, '    axes[0].plot(group.s_per_image, group[fid_col], "o-", label=name.upper())',
        '    err = [group[fid_col] - group.fid_lo, group.fid_hi - group[fid_col]]\n'
        '    axes[0].errorbar(group.s_per_image, group[fid_col], yerr=err, fmt="o-", capsize=3, label=name.upper())')
replace(plot, '    axes[1].plot(group.nfe, group[fid_col], "o-", label=name.upper())',
        '    axes[1].errorbar(group.nfe, group[fid_col], yerr=err, fmt="o-", capsize=3, label=name.upper())')
replace(plot, 'axes[0].set_title("quality against time (labels: steps)")',
        'axes[0].set_title("quality against time (labels: steps; bars: 95% intervals)")')

# Section 4: eta with intervals, verdicts, and the image series from one x_T.
eta = find("eta_table = linspace[")
replace(eta, 'display(pivot.rename_axis(index="eta", columns=f"steps -> {fid_col}"))',
        'display(eta_table.assign(FID=[f"{f:.2f} [{lo:.2f}, {hi:.2f}]" for f, lo, hi in zip(eta_table[fid_col], eta_table.fid_lo, eta_table.fid_hi)])\n'
        '        .pivot(index="eta", columns="steps", values="FID").rename_axis(index="eta", columns=f"steps -> {fid_col} [95% interval]"))\n'
        'by_eta = eta_table.set_index(["steps", "eta"])\n'
        'for steps in pivot.columns:\n'
        '    for e in (0.2, 1.0):\n'
        '        print(f"{steps} steps: " + stats.compare(ci(by_eta.loc[(steps, e)]), ci(by_eta.loc[(steps, 0.0)]), (f"eta {e:g}", "eta 0")))\n'
        '        print("    paired: " + str(paired(f"ddim-{steps}-eta{e:g}", f"ddim-{steps}-eta0")))')
cells.insert(eta + 1, nbf.v4.new_markdown_cell(r'''
**The same $x_T$ across $\eta$.** Image $i$ starts from the same $x_T$ in every row and, for $\eta > 0$, draws its
step noise from the same generator stream; only $\eta$ changes. At $\eta = 0$ the image is a function of $x_T$ alone;
as $\eta$ grows, the fresh noise takes over more of the image's identity.'''.strip()))
cells.insert(eta + 2, nbf.v4.new_code_cell(r'''
fig, axes = plt.subplots(len(ETA_SERIES), 1, figsize=(1.1 * ETA_IMAGES, 1.25 * len(ETA_SERIES)))
series = {}
for ax, e in zip(axes, ETA_SERIES):
    series[e] = samplers.generate(denoiser, ETA_IMAGES, SEED, shape, sampler="ddim", steps=ETA_STEPS, eta=e,
                                  batch_size=ETA_IMAGES)
    show_grid(series[e], nrow=ETA_IMAGES, ax=ax, title=f"DDIM, {ETA_STEPS} steps, eta = {e:g}")
plt.tight_layout(); plt.show()
for e in ETA_SERIES[1:]:
    print(f"eta {e:g}: RMS distance to the eta = 0 image from the same x_T, per image: "
          + ", ".join(f"{d:.2f}" for d in (series[e] - series[0.0]).pow(2).mean((1, 2, 3)).sqrt()))
'''.strip()))

# Section 5: the clipping ablation, after the every-sampler figure and table.
every = find("fig, ax = plt.subplots(figsize=(7, 4))\nfor (name, spacing)")
cells.insert(every + 1, nbf.v4.new_markdown_cell(r'''
**Clipping, measured.** Each row below runs one sampler the other way from its default (section 1): DDPM and DDIM
without clipping $\hat x_0$, DPM-Solver++ and Heun with it; same N, same $x_T$, same network. Whether clipping is
part of the gap between the ODE solvers and ancestral sampling is read off these pairs.'''.strip()))
cells.insert(every + 2, nbf.v4.new_code_cell(r'''
pairs = []
for _, r in clip_rows.iterrows():
    default = r["name"].removesuffix("-noclip").removesuffix("-clip")
    if default not in by_name.index:
        continue
    d = by_name.loc[default]
    pairs.append({"configuration": default, "NFE": int(r.nfe), "default clips": bool(d.clip_x0),
                  f"{fid_col}, default": f"{d[fid_col]:.2f} [{d.fid_lo:.2f}, {d.fid_hi:.2f}]",
                  f"{fid_col}, other way": f"{r[fid_col]:.2f} [{r.fid_lo:.2f}, {r.fid_hi:.2f}]",
                  "verdict": stats.compare(ci(r), ci(d), ("clipped" if r.clip_x0 else "unclipped",
                                                          "clipped" if d.clip_x0 else "unclipped")).split(" (")[0],
                  "paired verdict": (paired(r["name"], default) or "not scored").split(" (")[0]})
clipping_table = pd.DataFrame(pairs)
display(clipping_table)
R.table("clipping", clipping_table, f"each sampler with and without clipping x0_hat to [-1, 1]; FID [95% interval] at N = {N}")
'''.strip()))

# Section 7: the 8x8 floor at the samples' N, intervals, and the ODE-against-ancestral verdict there.
digits = find("digits, dcard = from_checkpoint(DIGITS_CHECKPOINT")
replace(digits, 'floor = frechet_distance(compute_features(load_images("digits:train").images, "pixels"), real)\n',
        'train_px = compute_features(load_images("digits:train").images, "pixels")\n'
        'floor = fid_by_sample_size(train_px, real, [DIGITS_N], num_boot=1 if DIGITS_N == len(train_px) else 10, seed=SEED).iloc[0]\n')
replace(digits, 'f"floor (the 1437 training digits): {label(\'FID\', \'pixels\', 1437)} {floor:.2f}")',
        'f"floor ({DIGITS_N} of the {len(train_px)} training digits): {label(\'FID\', \'pixels\', DIGITS_N)} {floor.fid_mean:.2f}")')
replace(digits, '        rows.append({"sampler": name, "steps": steps, label("FID", "pixels", DIGITS_N): frechet_distance(compute_features(images, "pixels"), real),\n'
        '                     "ms per image": 1e3 * seconds / DIGITS_N})\ndisplay(pd.DataFrame(rows))',
        '        fid, lo, hi = fid_interval(compute_features(images, "pixels"), real, num_boot=BOOTSTRAP, seed=SEED)\n'
        '        rows.append({"sampler": name, "steps": steps, label("FID", "pixels", DIGITS_N): fid, "95% lo": lo, "95% hi": hi,\n'
        '                     "ms per image": 1e3 * seconds / DIGITS_N})\n'
        'digits_table = pd.DataFrame(rows)\ndisplay(digits_table)\n'
        'R.table("digits8", digits_table, f"the 8x8 model: Frechet distance on pixels at N = {DIGITS_N} (95% bootstrap interval); floor {floor.fid_mean:.2f}")\n'
        'dcol = label("FID", "pixels", DIGITS_N)\n'
        'by_d = digits_table.set_index(["sampler", "steps"])\n'
        'for steps in DIGITS_STEPS:\n'
        '    print(f"8x8, {steps} steps: " + stats.compare(*(tuple(by_d.loc[(s, steps), [dcol, "95% lo", "95% hi"]]) for s in ("ddim", "ddpm")), ("DDIM", "DDPM")))')

# Section 8: verdicts with intervals instead of bare numbers.
summary = find("from helpers.metrics import fid_by_sample_size")
replace(summary, "from helpers.metrics import fid_by_sample_size\n\n", "")
replace(summary, 'print("the ODE solvers at many steps: " + ", ".join(f"{n} {f[n]:.1f}" for n in plateau))\n'
        'print("respaced ancestral sampling: " + ", ".join(f"{n} {f[n]:.1f}" for n in ancestral))\n',
        'fmt = lambda n: f"{n} {f[n]:.1f} [{by_name.loc[n].fid_lo:.1f}, {by_name.loc[n].fid_hi:.1f}]"\n'
        'print("the ODE solvers at many steps: " + ", ".join(fmt(n) for n in plateau))\n'
        'print("respaced ancestral sampling: " + ", ".join(fmt(n) for n in ancestral))\n'
        'def verdict(a, b):\n'
        '    print(f"{a} against {b}: " + stats.compare(ci(by_name.loc[a]), ci(by_name.loc[b]), (a, b)))\n'
        '    print("    paired: " + str(paired(a, b)))\n'
        'for a, b in (("ddpm-50", "ddpm-100"), ("ddpm-100", "ddpm-1000"), ("ddpm-50", "ddpm-1000"), ("ddim-1000-eta0", "ddpm-1000"),\n'
        '             ("ddim-100-eta0", "ddim-1000-eta0"), ("dpmpp-2m-50", "ddim-1000-eta0"), ("heun-50", "ddim-1000-eta0")):\n'
        '    if a in by_name.index and b in by_name.index:\n'
        '        verdict(a, b)\n')
replace(summary, '    print(f"{n} steps: " + ", ".join(f"{s} {v:.1f}" for s, v in row.items() if v is not None))',
        '    print(f"{n} steps: " + ", ".join(f"{s} {v:.1f}" for s, v in row.items() if v is not None))\n'
        '    for a, b in ((f"dpmpp-2m-{n}", f"ddim-{n}-eta0"), (f"ddpm-{n}", f"dpmpp-2m-{n}"), (f"ddpm-{n}", f"ddim-{n}-eta0")):\n'
        '        if a in by_name.index and b in by_name.index:\n'
        '            verdict(a, b)\n'
        'print("floor against ancestral sampling: " + ", ".join(f"{n} - floor = {f[n] - floor.fid_mean:.1f}" for n in ancestral))')
conclusions = find("What the measurements say")
replace(conclusions, "(one set of N per configuration: differences within a few floor standard deviations are not resolved at this N; issue 13 adds intervals):",
        "(one set of N per configuration with its 95% bootstrap interval; every comparison below is one of the verdicts printed above: a pair whose intervals overlap is not resolved at this N by the overlap rule, and the paired verdict on the same images says whether the difference itself is):")
P.write()
