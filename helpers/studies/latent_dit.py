"""The latent DiT (notebook 10): the autoencoder's floor, the adaLN-Zero check, the steps question from the
benchmark (helpers.studies.sampler_fid, `make bench-dit`) beside the pixel U-Net, the latent-space diagnostic, the
guidance sweep, the conditioning ablation, latent against pixel, and the facts its conclusions read. Each function
returns a table (and the sentences the notebook prints); every FID row comes with its 95% bootstrap interval and,
given the asked labels, the evaluation classifier's accuracy (Scorer)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers.evaluation import cost, stats
from helpers.evaluation.metrics import compute_features, fid_interval, frechet_distance
from helpers.samplers import generate
from helpers.studies import cfg_ema as gs

CONDITIONINGS = ("adaln-zero", "adaln", "cross-attention", "in-context")
FID = ["FID", "95% lo", "95% hi"]


@dataclass
class Scorer:
    """FID against `ref` (cfg_ema.reference) with its 95% bootstrap interval; class accuracy by `evaluator`."""
    ref: object
    evaluator: object
    num_boot: int = 200
    seed: int = 0

    def row(self, images, labels=None) -> dict:
        fid, lo, hi = fid_interval(compute_features(images, "mnist-cnn"), self.ref.feats, num_boot=self.num_boot,
                                   seed=self.seed)
        row = {"FID": fid, "95% lo": lo, "95% hi": hi, "N": len(images)}
        if labels is not None:
            row["class accuracy"] = gs.class_scores(images, labels, self.evaluator)[0]
        return row


def autoencoder_floor(ae, ae_card: dict, images, labels, scorer: Scorer):
    """Real test digits and their reconstructions (encode the posterior mean, decode): the latent models' floor.
    Returns (table, reconstructions, a sentence on the autoencoder)."""
    with torch.no_grad():
        z = ae.posterior_means(images)
        recon = torch.cat([ae.decode(part) for part in z.split(250)]).clamp(-1, 1)
    n = len(images)
    table = pd.DataFrame([{"images": f"real ({n} test digits)", **scorer.row(images, labels)},
                          {"images": "reconstructed (encode, decode)", **scorer.row(recon, labels),
                           "MAE per pixel in [-1, 1]": float((recon - images).abs().mean())}])
    latent, m = ae_card["latent"], ae_card["model"]
    text = (f"{ae_card['parameters']:,} parameters, {m['image_size']}x{m['image_size']}x{m['in_channels']} -> "
            f"{'x'.join(map(str, latent['shape']))} ({np.prod(latent['shape'])} numbers for {m['image_size'] ** 2} "
            f"pixels), {ae_card['step']} steps in {ae_card['wall_time_s'] / 60:.0f} min; scaling factor "
            f"{latent['scaling_factor']:.4f} (std of the training latents {latent['latent_std']:.3f}); its card's test "
            f"MAE on {latent['test_images']} digits: {latent['test_mae']:.4f}")
    return table, recon, text


def adaln_zero_check(config: dict, seed: int = 0) -> str:
    """A freshly initialised DiT of `config`: adaLN-Zero makes every block the identity and the output 0."""
    from helpers.models.dit import DiT, DiTConfig

    fresh = DiT(DiTConfig(**config)).eval()
    probe = torch.randn(8, *fresh.config.sample_shape, generator=torch.Generator().manual_seed(seed))
    t, y = torch.randint(0, 1000, (8,)), torch.arange(8) % 10
    with torch.no_grad():
        emb, tokens = fresh.embed(t, y)
        h = fresh.patch(probe).flatten(2).transpose(1, 2) + fresh.pos
        change = max(float((block(h, emb, tokens) - h).abs().max()) for block in fresh.blocks)
        out = float(fresh(probe, t, y).abs().max())
    return (f"a freshly initialised DiT of this config: largest change any block makes to its input {change:.1e}, "
            f"largest output {out:.1e} (adaLN-Zero: every block the identity, the output 0)")


def architectures(models: dict) -> pd.DataFrame:
    """Parameters, input shape and GFLOP per image per call of each {name: (denoiser, card)}."""
    return pd.DataFrame([{"model": name, "parameters": card["parameters"], "input": "x".join(map(str, den.sample_shape)),
                          "GFLOP per image per call": cost.gflop_per_call(den.net, torch.randn(2, *den.sample_shape),
                                                                          torch.full((2,), 500))}
                         for name, (den, card) in models.items()])


def steps_table(bench_csv: Path, unet_csv: Path) -> tuple[pd.DataFrame, str, int, list[str]]:
    """The DiT's FID by sampler and steps (benchmark rows) beside the pixel U-Net's rows of the same names (notebook
    05). Returns (table, its FID column, N per row, the configurations not yet drawn)."""
    rows_in = pd.read_csv(bench_csv)
    n = int(rows_in["num"].iloc[0])
    unet = pd.read_csv(unet_csv).set_index("name")
    col = f"DiT FID (N={n})"
    table = pd.DataFrame([{"sampler": r.sampler, "steps": r.steps, col: r.fid, "95% lo": r.fid_lo, "95% hi": r.fid_hi,
                           "DiT s/image": r.s_per_image, "U-Net FID (notebook 05)": unet.fid.get(r["name"], np.nan),
                           "U-Net s/image": unet.s_per_image.get(r["name"], np.nan)}
                          for _, r in rows_in.sort_values(["sampler", "steps"]).iterrows()])
    wanted = (("ddim", (5, 10, 20, 50, 100, 250)), ("dpmpp-2m", (5, 10, 20, 50, 100, 250)), ("ddpm", (50, 100)))
    missing = [f"{s}-{k}" for s, ks in wanted for k in ks if not ((rows_in.sampler == s) & (rows_in.steps == k)).any()]
    return table, col, n, missing


def latent_diagnostic(dit, ae, sf: float, real_images, configs, scorer: Scorer, seed: int = 0):
    """Samples in latent space against the real latents (Frechet distance on the scaled latents, std, mean, distance
    to the nearest real latent, spatial roughness) and the decoder's gain at them, with their decoded FID. Returns
    (table, the real-against-real floor of the latent distance from another len(real_images) test digits given as
    real_images[n:2n])."""
    n = len(real_images) // 2
    real_latents = ae.posterior_means(real_images[:n]) * sf
    real_z = real_latents.flatten(1)
    labels = gs.balanced_labels(n, 10)
    rough, gain = "latent roughness (real: %.3f)" % roughness(real_latents), \
        "decoder gain (real: %.2f)" % decoder_gain(dit.decoder, real_latents[:64], seed)
    rows = []
    for sampler, k in configs:
        latents = generate(dit, n, seed, sampler=sampler, steps=k, batch_size=250, y=labels, decode=False)
        images = torch.cat([dit.decoder(part) for part in latents.split(250)])  # decoded as generate() does
        z = latents.flatten(1)
        rows.append({"sampler": sampler, "steps": k, "latent Frechet distance": frechet_distance(z.numpy(), real_z.numpy()),
                     "latent std (real: %.3f)" % real_z.std(): float(z.std()),
                     "latent mean (real: %.3f)" % real_z.mean(): float(z.mean()),
                     "mean distance to nearest real latent": float(torch.cdist(z, real_z).min(1).values.mean()),
                     rough: roughness(latents), gain: decoder_gain(dit.decoder, latents[:64], seed),
                     **scorer.row(images, labels)})
    other = (ae.posterior_means(real_images[n:2 * n]) * sf).flatten(1)
    return pd.DataFrame(rows), frechet_distance(other.numpy(), real_z.numpy())


def roughness(latents: torch.Tensor) -> float:
    """How rough [N x C x H x W] latents are: the mean squared difference of spatially adjacent entries over twice
    the latents' variance (1 for independent entries, 0 for constant maps)."""
    dx = (latents[..., :, 1:] - latents[..., :, :-1]).pow(2).mean()
    dy = (latents[..., 1:, :] - latents[..., :-1, :]).pow(2).mean()
    return float((dx + dy) / 2 / (2 * latents.var()))


@torch.no_grad()
def decoder_gain(decoder, latents: torch.Tensor, seed: int = 0, eps: float = 0.05) -> float:
    """How strongly the decoder turns a small change of the latents into a change of pixels, at these latents: the
    RMS pixel change over the RMS latent change for a random perturbation of size `eps` (in scaled latent units)."""
    g = torch.Generator().manual_seed(seed)
    delta = eps * torch.randn(latents.shape, generator=g)
    change = decoder(latents + delta) - decoder(latents)
    return float(change.pow(2).mean().sqrt() / delta.pow(2).mean().sqrt())


def guidance_sweep(dit, scales, labels, steps: int, scorer: Scorer, device="cpu"):
    """The DiT under CFG at each scale w (DDIM): FID with its interval, class accuracy, spread, time. Returns (table,
    the first 20 images per scale)."""
    from helpers.samplers.guidance import CFGDenoiser

    rows, grids = [], {}
    for w in scales:
        row, images = gs.evaluate_guided(CFGDenoiser(dit, w), labels, scorer.seed, scorer.ref, "ddim", steps,
                                         classifier=scorer.evaluator, device=device)
        fid, lo, hi = fid_interval(compute_features(images, "mnist-cnn"), scorer.ref.feats, num_boot=scorer.num_boot,
                                   seed=scorer.seed)
        rows.append({"w": float(w), "FID": fid, "95% lo": lo, "95% hi": hi,
                     **{k: v for k, v in row.items() if not k.startswith(("FID", "KID"))}})
        grids[w] = images[:20]
    return pd.DataFrame(rows), grids


def plot_guidance(guidance: pd.DataFrame, sweep04: pd.DataFrame | None, n: int, steps: int):
    """FID against class accuracy under CFG (beside notebook 04's pixel U-Net), and accuracy, worst class and spread
    against w."""
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4))
    ax.errorbar(guidance[gs.ACCURACY], guidance.FID, yerr=[guidance.FID - guidance["95% lo"], guidance["95% hi"] - guidance.FID],
                fmt="o-", capsize=3, label=f"DiT (N={n}, DDIM-{steps})")
    for _, r in guidance.iterrows():
        ax.annotate(f"w={r.w:g}", (r[gs.ACCURACY], r.FID), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if sweep04 is not None:
        f04 = gs.fid_column(sweep04.columns)
        ax.plot(sweep04[gs.ACCURACY], sweep04[f04], "s--", color="C1", label=f"pixel U-Net, notebook 04 ({f04.split('(')[1][:-1]})")
        for _, r in sweep04.iterrows():
            ax.annotate(f"w={r.w:g}", (r[gs.ACCURACY], r[f04]), textcoords="offset points", xytext=(5, -10), fontsize=7, color="C1")
    ax.set_xlabel("class accuracy (evaluation classifier)"); ax.set_ylabel("FID (MNIST-CNN features)"); ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both"); ax.legend(fontsize=8); ax.set_title("quality against accuracy")
    for col, style, name in ((gs.ACCURACY, "o-", "class accuracy"), (gs.WORST_CLASS, "s--", "worst class's accuracy"),
                             (gs.DIVERSITY, "^-", "within-class spread / real")):
        bx.plot(guidance.w, guidance[col], style, label=name)
    bx.set_xlabel("guidance scale w"); bx.grid(alpha=0.3); bx.legend(fontsize=8); bx.set_title("what guidance buys and costs (DiT)")
    plt.tight_layout()
    return fig


def ablation(folder: Path, n: int, scorer: Scorer, device="cpu"):
    """The four conditionings trained on the same budget: size, GFLOP per call, training time, final loss, FID and
    class accuracy at DDIM-50, w = 1; adaLN-Zero against each other. Returns (table, loss curves, verdicts)."""
    from helpers.denoisers import from_checkpoint

    rows, curves, labels = [], {}, gs.balanced_labels(n, 10)
    for kind in CONDITIONINGS:
        den, c = from_checkpoint(Path(folder) / kind, device=device)
        curves[kind] = np.array(c["loss_history"], dtype=float)
        tail = curves[kind][-max(1, len(curves[kind]) // 10):, 1].mean()
        images = generate(den, n, scorer.seed, sampler="ddim", steps=50, batch_size=250, y=labels)
        rows.append({"conditioning": kind, "parameters": c["parameters"],
                     "GFLOP per call": cost.gflop_per_call(den.net, torch.randn(2, *den.sample_shape), torch.full((2,), 500),
                                                           torch.zeros(2, dtype=torch.long)),
                     "steps": c["step"], "training s": c["wall_time_s"], "loss, last 10% of steps": tail,
                     **scorer.row(images, labels)})
    table = pd.DataFrame(rows)
    by = table.set_index("conditioning")
    verdicts = {other: stats.compare(tuple(by.loc["adaln-zero", FID]), tuple(by.loc[other, FID]), ("adaLN-Zero", other))
                for other in CONDITIONINGS[1:]}
    return table, curves, verdicts


def seconds_per_image(den, num: int, seed: int = 0, steps: int = 50) -> float:
    """Wall seconds per image of DDIM-`steps` on a batch of `num` balanced labels, after a warm-up."""
    y = gs.balanced_labels(num, 10)
    generate(den, 2, seed, sampler="ddim", steps=2, batch_size=2, y=y[:2])  # warm-up
    start = time.perf_counter()
    generate(den, num, seed, sampler="ddim", steps=steps, batch_size=num, y=y)
    return (time.perf_counter() - start) / num


def facts(autoencoder, by_steps, fid_col, latent_diag, guidance, ablation_table, latent_vs_pixel, arch) -> list[str]:
    """Every number section 8's conclusions quote, as sentences, each comparison by the overlap rule."""
    real, rec = autoencoder.iloc[0], autoencoder.iloc[1]
    lines = [f"- The autoencoder's floor: reconstructions of {int(rec.N)} test digits score FID {rec.FID:.1f} "
             f"[{rec['95% lo']:.1f}, {rec['95% hi']:.1f}] against {real.FID:.1f} [{real['95% lo']:.1f}, "
             f"{real['95% hi']:.1f}] for the real digits, class accuracy {rec['class accuracy']:.1%} against "
             f"{real['class accuracy']:.1%}."]
    st = by_steps.set_index(["sampler", "steps"])
    samplers = set(st.index.get_level_values(0))
    ci = lambda sampler, k: tuple(st.loc[(sampler, k), [fid_col, "95% lo", "95% hi"]])
    for sampler in ("ddim", "dpmpp-2m", "ddpm"):
        if sampler in samplers:
            s = st.loc[sampler]
            few, many = s.index.min(), s.index.max()
            lines.append(f"- Steps, {sampler}: FID " + ", ".join(f"{v:.1f} at {k}" for k, v in s[fid_col].items())
                         + f"; lowest at {s[fid_col].idxmin()} steps; {few} against {many} steps: "
                         + stats.compare(ci(sampler, few), ci(sampler, many), (f"{few} steps", f"{many} steps")))
    common = sorted(set(st.loc["ddim"].index) & set(st.loc["dpmpp-2m"].index)) if {"ddim", "dpmpp-2m"} <= samplers else []
    lines += [f"  {k} steps, DPM-Solver++(2M) against DDIM: " + stats.compare(ci("dpmpp-2m", k), ci("ddim", k),
                                                                              ("DPM-Solver++", "DDIM")) for k in common]
    for k in (st.loc["ddpm"].index if "ddpm" in samplers else []):
        lines += [f"  {k} steps, ancestral DDPM against {other}: " + stats.compare(ci("ddpm", k), ci(other, k), ("DDPM", other))
                  for other in ("ddim", "dpmpp-2m") if (other, k) in st.index]
    ld = latent_diag.set_index(["sampler", "steps"])
    std_col = [c for c in ld.columns if c.startswith("latent std")][0]
    lines.append(f"- Latents ({std_col}): " + "; ".join(
        f"{a}-{k}: Frechet distance {r['latent Frechet distance']:.1f}, std {r[std_col]:.3f}, decoded FID {r.FID:.1f}"
        for (a, k), r in ld.iterrows()))
    g = guidance.set_index("w")
    lines.append("- Guidance (DiT): " + "; ".join(f"w={w:g}: FID {r.FID:.1f}, accuracy {r[gs.ACCURACY]:.1%}, spread "
                                                  f"{r[gs.DIVERSITY]:.2f}" for w, r in g.iterrows()))
    if 1.0 in g.index and len(g) > 1:
        w_best = g.FID.idxmin()
        lines.append(f"  lowest FID at w = {w_best:g}; " + stats.compare(tuple(g.loc[w_best, FID]), tuple(g.loc[1.0, FID]),
                                                                         (f"w={w_best:g}", "w=1")))
        hit = g[g[gs.ACCURACY] >= 0.95]
        lines.append(f"  the smallest w with at least 95% class accuracy: {hit.index.min():g}" if len(hit)
                     else "  no w reached 95% class accuracy")
    by = ablation_table.set_index("conditioning")
    lines.append("- Conditioning (same budget): " + "; ".join(
        f"{k}: FID {r.FID:.1f} [{r['95% lo']:.1f}, {r['95% hi']:.1f}], {int(r.parameters):,} parameters, loss "
        f"{r['loss, last 10% of steps']:.4f}" for k, r in by.iterrows()))
    lines.append(f"  ordering by FID here: {' < '.join(by.FID.sort_values().index)}; the paper's: adaln-zero < adaln < "
                 f"cross-attention < in-context")
    d, u = latent_vs_pixel.iloc[0], latent_vs_pixel.iloc[1]
    lines.append(f"- Latent against pixel: DiT FID {d.FID:.1f} [{d['95% lo']:.1f}, {d['95% hi']:.1f}] after "
                 f"{d['training CPU s'] / 3600:.1f} CPU hours, {d['s/image (DDIM-50)']:.3f} s/image; U-Net FID {u.FID:.1f} "
                 f"[{u['95% lo']:.1f}, {u['95% hi']:.1f}] after {u['training CPU s'] / 3600:.1f} CPU hours, "
                 f"{u['s/image (DDIM-50)']:.3f} s/image; GFLOP per call {arch.iloc[0, 3]:.3f} against {arch.iloc[1, 3]:.3f}.")
    return lines
