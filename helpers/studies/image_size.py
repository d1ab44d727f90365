"""Notebook 09 (image size and colour): the forward process at each size with and without simple diffusion's shift,
the cost of our U-Net recipe per size, the colour models' quality against the real floor, DDPM against DDIM across
the workbook's sizes, and the course's five data sets."""
from __future__ import annotations

import pandas as pd
import torch

from helpers.evaluation import cost
from helpers.evaluation.stats import compare
from helpers.schedules import Schedule, shift_schedule
from helpers.studies.forward import coarse_correlation

FEWEST = "fewest DDIM steps within the best's interval"
FEWEST_DDIM = "fewest DDIM steps within the best DDIM row's interval"
UNET_MULTS = {32: (1, 2, 2), 64: (1, 2, 2, 2), 128: (1, 2, 2, 2, 2)}  # the channel multipliers of our recipe per size


def forward_table(data: dict, sizes, n: int, ts: list[int], seed: int) -> pd.DataFrame:
    """Per schedule (linear, cosine), size and shift (none, or to base 64): the last t at which the 8 x 8 view of x_t
    still correlates >= 0.9 and >= 0.5 with x_0's, on n test images; the 0.5 row keeps the whole curve."""
    rows = []
    for name in ("linear", "cosine"):
        base = Schedule.from_name(name, 1000)
        for s in sizes:
            images = data[s].images[:n]
            for shifted, sched in (("no", base), ("yes", shift_schedule(base, s, base=64))):
                df = coarse_correlation(sched, images, ts, torch.Generator().manual_seed(seed))
                for threshold in (0.9, 0.5):
                    ok = df[df.correlation >= threshold]
                    rows.append({"schedule": name, "shifted to base 64": shifted, "size": s, "threshold": threshold,
                                 "last t": int(ok.t.max()) if len(ok) else -1})
                rows[-1]["curve"] = df.correlation.to_numpy()
    return pd.DataFrame(rows)


def plot_forward(forward: pd.DataFrame, ts: list[int], sizes, axes) -> None:
    for ax, name in zip(axes, ("linear", "cosine")):
        for i, s in enumerate(sizes):
            for shifted, style in (("no", "-"), ("yes", "--")):
                r = forward[(forward.schedule == name) & (forward["size"] == s)
                            & (forward["shifted to base 64"] == shifted) & (forward.threshold == 0.5)]
                ax.plot(ts, r.curve.iloc[0], style, color=f"C{i}",
                        label=f"{s} px" + (", shifted" if shifted == "yes" else ""))
        ax.set_xlabel("t")
        ax.set_title(f"{name}: 8 x 8 view of x_t against x_0's", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("correlation")
    axes[1].legend(fontsize=7, ncol=2)


def model_table(cards: dict) -> pd.DataFrame:
    return pd.DataFrame([{"size": s, "parameters": c["parameters"], "steps": c["step"], "batch": c["train"]["batch_size"],
                          "images seen": c["step"] * c["train"]["batch_size"],
                          "training wall-clock h": c["wall_time_s"] / 3600, "final loss": c["final_loss"],
                          "command": c["command"]} for s, c in cards.items()])


def cost_table(sizes, calls: int, seed: int) -> pd.DataFrame:
    """Our U-Net recipe at each size (random weights, batch 8): parameters, GFLOP, seconds per image per call (the
    mean of `calls` after a warm-up), peak tensor memory of a call and its growth per image."""
    from helpers.models.unet import UNet, UNetConfig

    rows = []
    for s in sizes:
        torch.manual_seed(seed)
        net = UNet(UNetConfig(in_channels=3, image_size=s, base_channels=32, channel_mults=UNET_MULTS[s],
                              attention_resolutions=(8,))).eval()
        x, t = torch.randn(8, 3, s, s), torch.full((8,), 500)
        peak = cost.call_memory_mb(net, x, t)
        rows.append({"size": s, "parameters": sum(p.numel() for p in net.parameters()),
                     "GFLOP per image per call": cost.gflop_per_call(net, x[:2], t[:2]),
                     "s per image per call": cost.seconds_per_image_per_call(net, x, t, calls),
                     "peak MB per call (batch 8)": peak, "MB per image": (peak - cost.call_memory_mb(net, x[:4], t[:4])) / 4})
    table = pd.DataFrame(rows)
    table["x the 32-pixel cost"] = table["s per image per call"] / table["s per image per call"].iloc[0]
    return table


FLOOR_SETS = 5  # disjoint sets of real training images per floor


def quality_table(models: dict, features: dict, bench_csv: dict, test: dict, floor_n: int, seed: int):
    """The benchmark's rows per size with FID over the real floor; the floors (FID of floor_n real training images
    against the test images, the mean over FLOOR_SETS disjoint sets with its t-interval: helpers.evaluation.fid_sets)
    and the valid share of real images and of clamped Gaussian noise."""
    from helpers.checkpoints import load_model
    from helpers.datasets.shapes import load_shapes
    from helpers.evaluation.features import valid_share
    from helpers.evaluation.fid_sets import fid_floor
    from helpers.evaluation.metrics import compute_features

    rows, floors, checks = [], {}, []
    for s in models:
        feats = f"feature-net:{features[s]}"
        pool = load_shapes(s, "train", num=FLOOR_SETS * floor_n)[0]  # the first training images, not all 20,000
        floors[s] = fid_floor(compute_features(pool, feats), compute_features(test[s].images, feats), floor_n,
                              sets=FLOOR_SETS, seed=seed)
        real = pool[:floor_n]
        judge = load_model(features[s])[0].eval()
        noise = torch.randn(floor_n, 3, s, s, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)
        checks.append({"size": s, "valid share, real training images": valid_share(judge, real),
                       "valid share, Gaussian noise": valid_share(judge, noise), "N": floor_n})
        for r in pd.read_csv(bench_csv[s]).itertuples():
            rows.append({"size": s, "sampler": r.sampler, "steps": r.steps, "N": r.num, "FID": r.fid, "95% lo": r.fid_lo,
                         "95% hi": r.fid_hi, "FID / floor": r.fid / floors[s].value, "valid share": r.valid_share,
                         "s/image": r.s_per_image})
    return pd.DataFrame(rows).sort_values(["size", "sampler", "steps"]), floors, pd.DataFrame(checks)


def plot_quality(quality: pd.DataFrame, floors: dict, sizes: list, axes) -> None:
    for (s, sampler), g_ in quality.groupby(["size", "sampler"]):
        style, color = ("o-" if sampler == "ddim" else "s--"), f"C{sizes.index(s)}"
        yerr = [(g_.FID - g_["95% lo"]) / floors[s].value, (g_["95% hi"] - g_.FID) / floors[s].value]
        axes[0].errorbar(g_.steps, g_["FID / floor"], yerr=yerr, fmt=style, capsize=3, color=color,
                         label=f"{s} px, {sampler}")
        axes[1].plot(g_.steps, g_["valid share"], style, color=color, label=f"{s} px, {sampler}")
    for ax, yl in zip(axes, ("FID / real floor", "valid share (shape and colour read, p >= 0.9)")):
        ax.set_xscale("log")
        ax.set_xlabel("sampling steps")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes[0].set_yscale("log")


def _standard(df, size, data, features, fid, lo, hi, seconds) -> pd.DataFrame:
    out = pd.DataFrame({"sampler": df.sampler, "steps": df.steps.astype(int), "FID": df[fid], "95% lo": df[lo],
                        "95% hi": df[hi], "s/image": df[seconds]})
    return out.assign(size=size, data=data, features=features)


def across_sizes(quality: pd.DataFrame, sizes, floor_n: int) -> pd.DataFrame:
    """DDPM and DDIM rows at every size the workbook trained: 8 and 28 from notebook 05's saved results, the colour
    models from `quality`; FID with 95% intervals on each size's own features."""
    from helpers.workbook import results

    d8 = results.read("05_ddpm_vs_ddim", "digits8")
    fid8 = next(c for c in d8.columns if c.startswith("FID"))
    d8["s/image"] = d8["ms per image"] / 1000
    m28 = results.read("05_ddpm_vs_ddim", "fid_by_nfe")
    fid28 = next(c for c in m28.columns if c.startswith("FID"))
    m28 = m28[(m28.spacing == "linspace") & ((m28.sampler == "ddpm") | ((m28.sampler == "ddim") & (m28.eta == 0)))]
    across = pd.concat([_standard(d8, 8, "sklearn digits (grey)", fid8, fid8, "95% lo", "95% hi", "s/image"),
                        _standard(m28, 28, "MNIST (grey)", fid28, fid28, "fid_lo", "fid_hi", "s_per_image")]
                       + [_standard(quality[quality["size"] == s], s, "coloured shapes",
                                    f"shapes-features-{s}, N = {floor_n}", "FID", "95% lo", "95% hi", "s/image")
                          for s in sizes])
    across.loc[across["size"] == 8, "features"] = fid8.split("(")[1].rstrip(")")
    across.loc[across["size"] == 28, "features"] = fid28.split("(")[1].rstrip(")")
    return across


def steps_needed(across: pd.DataFrame) -> pd.DataFrame:
    """Per size: the best row, DDPM-50 against DDIM-50 (the interval rule), and the fewest DDIM steps whose interval
    overlaps the best row's (any sampler) and the best DDIM row's (where DDIM stops improving)."""
    need = []
    for s, g_ in across.groupby("size"):
        best = g_.sort_values("FID").iloc[0]
        ddim = g_[g_.sampler == "ddim"].sort_values("steps")
        ok = ddim[ddim["95% lo"] <= best["95% hi"]]
        best_ddim = ddim.sort_values("FID").iloc[0]
        ok_ddim = ddim[ddim["95% lo"] <= best_ddim["95% hi"]]
        at50 = {k: g_[(g_.sampler == k) & (g_.steps == 50)].iloc[0] for k in ("ddpm", "ddim")}
        verdict = compare(*[(r.FID, r["95% lo"], r["95% hi"]) for r in at50.values()], names=("DDPM-50", "DDIM-50"))
        need.append({"size": s, "data": best.data, "features": best.features, "best row": f"{best.sampler}-{best.steps}",
                     "best FID [95%]": f"{best.FID:.3g} [{best['95% lo']:.3g}, {best['95% hi']:.3g}]",
                     "DDPM-50 against DDIM-50": verdict.split(" (")[0], "DDIM steps tried": ", ".join(map(str, ddim.steps)),
                     FEWEST: int(ok.steps.iloc[0]) if len(ok) else None, FEWEST_DDIM: int(ok_ddim.steps.iloc[0]),
                     "s/image, DDIM-50": at50["ddim"]["s/image"]})
    return pd.DataFrame(need).astype({FEWEST: "Int64"})


def findings(spread: pd.DataFrame, costs: pd.DataFrame, quality: pd.DataFrame, cards: dict, need: pd.DataFrame,
             valid_check: pd.DataFrame, sizes) -> list[str]:
    """The numbers the conclusions quote, one line each."""
    out = [f"- Forward, {name}, correlation >= {threshold}: 'last t' spans {r['no']} steps across sizes {tuple(sizes)} "
           f"without the shift, {r['yes']} with it." for (name, threshold), r in spread.iterrows()]
    out += [f"- Cost at {int(r['size'])} px: {r['GFLOP per image per call']:.3f} GFLOP and "
            f"{r['s per image per call'] * 1000:.1f} ms per image per call ({r['x the 32-pixel cost']:.1f} x the "
            f"32-pixel cost); {r['MB per image']:.1f} MB of activations per image." for _, r in costs.iterrows()]
    for s in cards:
        best = quality[quality["size"] == s].sort_values("FID").iloc[0]
        out.append(f"- {s} px: best {best.sampler}-{best.steps}, FID {best.FID:.2f} [{best['95% lo']:.2f}, "
                   f"{best['95% hi']:.2f}] = {best['FID / floor']:.2f} x the floor, valid share {best['valid share']:.0%}; "
                   f"training {cards[s]['wall_time_s'] / 3600:.1f} h wall clock.")
    for _, r in need.iterrows():
        few = "none" if pd.isna(r[FEWEST]) else int(r[FEWEST])
        out.append(f"- {r['size']} px ({r['data']}): DDPM-50 against DDIM-50: {r['DDPM-50 against DDIM-50']}; the fewest "
                   f"DDIM steps (of {r['DDIM steps tried']}) within the best row's ({r['best row']}) interval: {few}; "
                   f"within the best DDIM row's: {r[FEWEST_DDIM]}.")
    out += [f"- Valid share at {int(r['size'])} px: real images {r['valid share, real training images']:.0%}, Gaussian "
            f"noise {r['valid share, Gaussian noise']:.0%}." for _, r in valid_check.iterrows()]
    return out


def course_table(costs: pd.DataFrame, hub_cost: pd.DataFrame, need: pd.DataFrame, sizes) -> pd.DataFrame:
    """The course's five data sets: what was measured at their size and on what data, the DDIM steps needed where
    measured, and the cost per call of our U-Net recipe and of the hub U-Net (random weights) where measured."""
    rows = []
    for name, size in (("MNIST", 28), ("CIFAR-10", 32), ("Pokemon", 64), ("butterflies", 128), ("LSUN church", 256)):
        ours, hub, row = costs[costs["size"] == size], hub_cost[hub_cost.resolution == size], need[need["size"] == size]
        rows.append({
            "data set": name, "size": size,
            "quality (DDPM, DDIM)": {28: "measured on MNIST (notebook 05)", 32: "measured on shapes, not CIFAR-10",
                                     64: "measured on shapes, not Pokemon"}.get(size, "not measured (no model at this size)"),
            "forward process": "measured on MNIST (notebook 01)" if size == 28 else
                               "measured on shapes (section 2)" if size in sizes else "not measured (predicted by the shift)",
            "DDIM steps within the best's interval": None if row.empty or pd.isna(row[FEWEST].iloc[0]) else int(row[FEWEST].iloc[0]),
            "DDIM steps within DDIM's best": None if row.empty else int(row[FEWEST_DDIM].iloc[0]),
            "our U-Net, ms per image per call": ours["s per image per call"].iloc[0] * 1000 if len(ours) else None,
            "hub U-Net, ms per image per call": hub["s per image per call"].iloc[0] * 1000 if len(hub) else None})
    return pd.DataFrame(rows).astype({"DDIM steps within the best's interval": "Int64", "DDIM steps within DDIM's best": "Int64"})
