"""The notebooks' analysis modules (helpers.studies.*) reproduce, from the committed inputs, the tables the committed
full-mode notebooks saved in results/ (golden values: those tables, made by the notebooks' full runs at the commits
their records name), and small known answers."""
import numpy as np
import pandas as pd
import pytest

from helpers.paths import ROOT
from helpers.workbook import results

BENCH = ROOT / "bench" / "results"


def same_table(made: pd.DataFrame, saved: pd.DataFrame, skip=()):
    """Every column of the saved table, value by value (floats to 1e-9 relative; the CSV round trip), but `skip`."""
    made = made.reset_index(drop=True)
    assert list(made.columns) == list(saved.columns)
    for col in saved.columns:
        if col in skip:
            continue
        a, b = made[col], saved[col]
        if pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-9, equal_nan=True, err_msg=col)
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col


def test_ddpm_ddim_tables_match_notebook_05():
    from helpers.studies import ddpm_ddim as study

    bench = study.read_bench(BENCH / "fid_vs_nfe.csv", BENCH / "fid_pairs.csv")
    same_table(study.clipping_table(bench), results.read("05_ddpm_vs_ddim", "clipping"))
    chosen, reference = study.against_ddpm1000(bench)
    same_table(chosen, results.read("05_ddpm_vs_ddim", "against_ddpm1000"))
    assert reference.startswith("reference: DDPM, 1000 steps")
    # the verdicts rest on the paired table: a pair it does not hold says so instead of guessing
    assert bench.paired("ddpm-50", "no-such-row") is None


def test_fast_sampler_targets_match_notebook_07():
    from helpers.studies import fast_sampler as study

    same_table(study.targets(pd.read_csv(BENCH / "fast_fid.csv")), results.read("07_fast_sampler", "targets"))


def test_latent_dit_steps_table_matches_notebook_10():
    from helpers.studies import latent_dit as study

    table, col, n, _ = study.steps_table(BENCH / "dit_fid.csv", BENCH / "fid_vs_nfe.csv")
    assert col == f"DiT FID (N={n})"
    # seconds per image are measured again whenever the benchmark re-times its rows: not golden
    same_table(table, results.read("10_latent_dit", "fid_by_steps"), skip=("DiT s/image", "U-Net s/image"))


def test_ema_windows_match_notebook_04():
    from helpers.studies import cfg_ema_analysis as study

    saved = results.read("04_cfg_ema", "ema_windows")
    # power 0.75 and cap 0.9999: the fine-tune's EMA settings (checkpoints/ddpm-mnist-cond/model_card.json)
    same_table(study.ema_windows(saved.step.tolist(), 0.75, 0.9999), saved)


def test_adherence_grid_and_pooled_spread():
    from helpers.studies import adherence as study

    texts, asked = study.prompt_grid(2)
    assert len(texts) == 180 and asked.shape == (180, 3) and texts[0] == texts[90]
    # two groups of two values each: within-group variances 1 and 4, pooled over 4 values -> sqrt((1 * 2 + 4 * 2) / 4)
    values, groups = np.array([0.0, 2.0, 10.0, 14.0]), np.array([0, 0, 1, 1])
    assert study.within_sd(values, groups) == pytest.approx(np.sqrt(2.5))


def test_gradient_agreement_is_deterministic_and_pairs_the_same_batches():
    """A tiny network on random images: the cosines lie in [-1, 1], a second call with the same seed gives the same
    numbers, and the same weighting on both sides differs by exactly 0 pair by pair (the batches are shared)."""
    import torch

    from helpers.schedules import Schedule
    from helpers.studies.sweep_analysis import gradient_agreement

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x, t):
            return self.conv(x) * (1 + t.float().reshape(-1, 1, 1, 1) / 1000)

    torch.manual_seed(0)
    net, schedule = Net(), Schedule.from_name("linear", 1000)
    images = torch.rand(200, 1, 8, 8) * 2 - 1
    cos, diff = gradient_agreement(net, schedule, images, pairs=6, batch_size=16, seed=3)
    again, _ = gradient_agreement(net, schedule, images, pairs=6, batch_size=16, seed=3)
    assert set(cos) == {"none", "vlb"} and all(-1 <= c.value <= 1 for c in cos.values())
    assert cos == again and diff.rule == "paired-sets" and diff.n == 6
    same, zero = gradient_agreement(net, schedule, images, weightings=("none", "none"), pairs=3, batch_size=16, seed=3)
    assert zero.value == zero.lo == zero.hi == 0.0


def test_per_nfe_picks_the_best_established_sampler_and_pairs_by_set():
    """Three rows at 4 NFE and a reference, five sets each (made-up numbers): the best established sampler is the one
    with the lowest mean (unipc, not ddim), ours minus it is read set by set (-1 in every set but one: a t-interval
    that excludes 0), and ours against the reference (+5 in every set: resolved the other way)."""
    from helpers.studies.fast_sampler import per_nfe

    def row(name, sampler, nfe, sets):
        v = np.array(sets, float)
        return {"name": name, "sampler": sampler, "nfe": nfe, "fid": v.mean(), "fid_lo": v.min(), "fid_hi": v.max(),
                "fid_sets": " ".join(map(str, v)), "seed": 0, "num": 1000, "labels": ""}

    base = [30.0, 31.0, 29.0, 32.0, 30.5]
    results = pd.DataFrame([row("ddim-4-eta0-trailing", "ddim", 4, [b + 20 for b in base]),
                            row("unipc-4-trailing", "unipc", 4, base),
                            row("lsq-sde-4-trailing", "lsq-sde", 4, [b - 1 for b in base[:4]] + [base[4] - 1.5]),
                            row("ddpm-250-trailing", "ddpm", 250, [b - 6 for b in base[:4]] + [base[4] - 6.5])])
    table, lines = per_nfe(results, nfes=(4,))
    assert len(table) == 1 and table.iloc[0]["best established"] == "unipc" and table.iloc[0].verdict == "ours better"
    assert table.iloc[0]["ours - best"] == pytest.approx(-1.1)
    assert table.iloc[0]["ours - reference"] == pytest.approx(5.0) and table.iloc[0]["ref lo"] > 0
    assert lines[0].startswith("4 NFE: lsq-sde-4-trailing is better (resolved)")
    assert lines[1].startswith("4 NFE: ddpm-250-trailing is better (resolved)")


def test_distillation_fid_table_pairs_each_student_with_its_comparators():
    """Made-up rows, five sets each: the 4-step student 2 below DDIM-50 in every set (resolved), against the teacher's
    DDIM-4 and the best training-free sampler at 4 NFE (unipc, not ddim) and DDPM-250; the break-even divides the
    chain's seconds by the seconds per image saved."""
    from helpers.studies.distillation import chain_cost, fid_table

    def row(name, sampler, nfe, sets, s_per_image=0.01):
        v = np.array(sets, float)
        return {"name": name, "sampler": sampler, "nfe": nfe, "fid": v.mean(), "fid_lo": v.min(), "fid_hi": v.max(),
                "fid_sets": " ".join(map(str, v)), "seed": 0, "num": 1000, "labels": "", "s_per_image": s_per_image}

    base = np.array([30.0, 31.0, 29.0, 32.0, 30.5])
    pd_rows = pd.DataFrame([row("pd-4", "ddim", 4, base - 2, 0.02), row("ddim-50-eta0", "ddim", 50, base, 0.2),
                            row("ddim-4-eta0-trailing-noclip", "ddim", 4, base + 40, 0.02)])
    samplers_rows = pd.DataFrame([row("unipc-4-trailing", "unipc", 4, base + 10), row("ddim-4-eta0-trailing", "ddim", 4, base + 30),
                                  row("ddpm-250-trailing", "ddpm", 250, base - 3, 1.0)])
    table, lines = fid_table(pd_rows, samplers_rows)
    r = table.iloc[0]
    assert r.student == "pd-4" and r["best training-free"] == "unipc-4-trailing"
    assert r["- DDIM-50"] == pytest.approx(-2) and r["- teacher DDIM-4"] == pytest.approx(-42) and r["- DDPM-250"] == pytest.approx(1)
    assert lines[0].startswith("pd-4 against DDIM-50 (ddim-50-eta0): pd-4 is better (resolved)")
    cards = [{"wall_time_s": 3600.0}, {"wall_time_s": 1800.0}]
    cost = chain_cost(cards, pd_rows, "pd-4", {"DDIM-50": "ddim-50-eta0"})
    assert cost[0] == "the chain: 2 rounds, 1.5 CPU hours"
    assert cost[1].startswith("break-even of pd-4 against DDIM-50 (ddim-50-eta0): 30,000 images")  # 5400 s / 0.18 s


def test_latent_roughness_and_decoder_gain_on_known_cases():
    """Independent Gaussian entries have roughness 1 (adjacent differences have twice the variance), a smooth ramp
    far less; a decoder that doubles its input has gain exactly 2."""
    import torch

    from helpers.studies.latent_dit import decoder_gain, roughness

    g = torch.Generator().manual_seed(0)
    assert roughness(torch.randn(64, 4, 16, 16, generator=g)) == pytest.approx(1.0, abs=0.03)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16) + torch.linspace(0, 1, 16).view(1, 1, 16, 1)
    assert roughness(ramp.expand(8, 4, 16, 16) + 0.01 * torch.randn(8, 4, 16, 16, generator=g)) < 0.05
    assert decoder_gain(lambda z: 2 * z, torch.randn(8, 4, 7, 7, generator=g)) == pytest.approx(2.0)
