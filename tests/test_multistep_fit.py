"""The least-squares multistep sampler lsq-ms (helpers.samplers.lsq_ms): the fit recovering
known coefficients exactly, DDIM and DPM-Solver++(2M) as special cases, the calibration found by default, errors, NFE and per-image seeding."""
import pytest
import torch

from helpers.samplers.lsq_ms import calibrate, fit, sample_lsq_ms, solver_coefficients
from helpers.samplers import generate, sample_ddim, sample_dpmpp_2m
from helpers.schedules import get_timesteps


def ddim_coefficients(denoiser, timesteps):
    return solver_coefficients(denoiser, timesteps, "ddim")


@pytest.mark.parametrize("solver, reference", [("ddim", lambda d, x, ts: sample_ddim(d, x, ts, clip_x0=False)),
                                               ("dpmpp-2m", lambda d, x, ts: sample_dpmpp_2m(d, x, ts))])
def test_the_fixed_solvers_are_special_cases(tiny_denoiser, solver, reference):
    """DDIM and DPM-Solver++(2M) written as lsq-ms coefficients (the rules the fit replaces) reproduce the samplers."""
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ts = get_timesteps(1000, 6, "trailing")
    ours = sample_lsq_ms(tiny_denoiser, x_T, ts, coefficients=solver_coefficients(tiny_denoiser, ts, solver))
    assert (ours - reference(tiny_denoiser, x_T, ts)).abs().max().item() < 1e-5
    with pytest.raises(ValueError, match="solver must be 'ddim' or 'dpmpp-2m', got 'heun'"):
        solver_coefficients(tiny_denoiser, ts, "heun")


def test_the_fit_recovers_ddim_from_ddims_own_trajectory(tiny_denoiser):
    """Teacher states made by DDIM on the same grid are reachable exactly with one estimate per step: the fit finds
    DDIM's coefficients and lands on the teacher (RMS ~ 0)."""
    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    ts = [int(t) for t in get_timesteps(1000, 5, "trailing")]
    states = {}
    sample_ddim(tiny_denoiser, x_T, ts, clip_x0=False,
                callback=lambda info: states.__setitem__(ts[info["i"] + 1] if info["i"] + 1 < len(ts) else -1, info["x"]))
    coefficients, rms = fit(tiny_denoiser, x_T, states, ts, history=1)
    expected = ddim_coefficients(tiny_denoiser, ts)
    for got, want in zip(coefficients[:-1], expected[:-1]):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert coefficients[-1][1] == pytest.approx(1.0, abs=1e-5)  # the last step returns the estimate (sigma = 0)
    assert max(rms) < 1e-5


def test_without_coefficients_it_says_how_to_fit_them(tiny_denoiser):
    with pytest.raises(ValueError, match=r"no coefficients for these 4 timesteps .* run `python -m helpers.multistep_fit"):
        generate(tiny_denoiser, 1, 0, (1, 8, 8), sampler="lsq-ms", steps=4, spacing="trailing")
    with pytest.raises(ValueError, match="got coefficients for 2 steps, the grid has 4"):
        sample_lsq_ms(tiny_denoiser, torch.zeros(1, 1, 8, 8), [999, 749, 499, 249], coefficients=[[1, 0], [1, 0]])


def test_a_calibration_serves_generate_by_default_with_one_call_per_step(tiny_denoiser):
    tiny_denoiser.sample_shape = (1, 8, 8)
    result = calibrate(tiny_denoiser, 6, [3, 4], history=2, batch_size=3, log=lambda *_: None, teacher_steps=40)
    assert set(result["fits"]) == {"3", "4"} and len(result["fits"]["4"]["coefficients"]) == 4
    tiny_denoiser.calibration = {"lsq-ms": result}
    tiny_denoiser.nfe = 0
    a = generate(tiny_denoiser, 4, 2, sampler="lsq-ms", steps=4, spacing="trailing", batch_size=4)
    assert tiny_denoiser.nfe == 4
    b = generate(tiny_denoiser, 4, 2, sampler="lsq-ms", steps=4, spacing="trailing", batch_size=3)
    assert torch.allclose(a, b, atol=1e-6)  # image i is the same at any batch size
    with pytest.raises(ValueError, match=r"4-step coefficients are fitted on the trailing grid .*: add --spacing trailing"):
        generate(tiny_denoiser, 1, 0, sampler="lsq-ms", steps=4, spacing="linspace")  # calibrated, on another grid
    with pytest.raises(ValueError, match=r"calibrated: \[3, 4\] steps, trailing spacing"):
        generate(tiny_denoiser, 1, 0, sampler="lsq-ms", steps=5, spacing="trailing")


def test_a_coarse_teacher_grid_still_holds_the_wanted_states(tiny_denoiser):
    """teacher_states with a coarse teacher keeps the state at every wanted timestep, also those off its grid, and
    its all-T form equals sampling on every timestep."""
    from helpers.samplers.lsq_ms import teacher_states
    from helpers.samplers import sample_dpmpp_2m

    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    states = teacher_states(tiny_denoiser, x_T, {999, 749, 500, 123, -1}, teacher_steps=20)
    assert set(states) == {999, 749, 500, 123, -1} and torch.equal(states[999], x_T)
    grid = sorted({int(t) for t in get_timesteps(1000, 20, "linspace")} | {749, 500, 123}, reverse=True)
    kept = {}
    final = sample_dpmpp_2m(tiny_denoiser, x_T, grid,
                            callback=lambda info: kept.__setitem__(grid[info["i"] + 1] if info["i"] + 1 < len(grid) else -1, info["x"]))
    assert torch.equal(states[-1], final) and torch.equal(states[500], kept[500])


def test_distance_to_teacher_is_the_fits_own_rms(tiny_denoiser):
    """On the trajectories it was fitted to, distance_to_teacher of the fitted coefficients is the fit's RMS, and the
    fit is never farther from the teacher than DPM-Solver++(2M) itself, which is one point of its search space."""
    from helpers.samplers.lsq_ms import distance_to_teacher, teacher_states

    x_T = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    ts = [int(t) for t in get_timesteps(1000, 5, "trailing")]
    states = teacher_states(tiny_denoiser, x_T, set(ts) | {-1}, teacher_steps=40)
    coefficients, rms = fit(tiny_denoiser, x_T, states, ts, history=2)
    assert distance_to_teacher(tiny_denoiser, x_T, states, ts, coefficients) == pytest.approx(rms, rel=1e-4, abs=1e-6)
    fixed = distance_to_teacher(tiny_denoiser, x_T, states, ts, solver_coefficients(tiny_denoiser, ts, "dpmpp-2m"))
    assert fixed[0] >= rms[0] - 1e-6  # step by step the fit is optimal given its own earlier steps; the first step is comparable


@pytest.mark.parametrize("sampler", ["lsq-ms", "cn-2m"])
def test_the_shipped_calibrations_serve_the_cli_with_no_other_option(sampler, tmp_path):
    """`python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler S --steps K` finds the shipped
    calibration (and its trailing grid) by itself; K is the number of network calls, for every NFE of notebook 07."""
    import json

    from helpers.paths import ROOT
    from helpers.sample import main as sample_main

    calibration = json.loads((ROOT / "checkpoints" / "ddpm-mnist" / "calibration.json").read_text())
    if sampler == "lsq-ms":
        fits = calibration[sampler]["fits"]
        assert sorted(int(k) for k in fits) == [4, 5, 6, 8, 10, 15, 20]
        # the state and up to three estimates: step i has i + 1 estimates so far
        assert all(len(c) == min(i + 2, 4) for f in fits.values() for i, c in enumerate(f["coefficients"]))
    else:
        assert len(calibration[sampler]["eta_bands"]) == 3 and calibration[sampler]["steps"] == 6
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(ROOT / "checkpoints" / "ddpm-mnist"), "--sampler", sampler, "--steps", "5",
                        "--num", "2", "--out", str(out)]) == 0
    record = json.loads((out / "sampling.json").read_text())
    assert (record["sampler"], record["steps"], record["spacing"], record["nfe"]) == (sampler, 5, "trailing", 5)
    assert len(list(out.glob("*.png"))) == 2
