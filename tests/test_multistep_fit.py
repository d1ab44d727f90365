"""The least-squares multistep sampler lsq-ms (helpers.multistep_fit): DDIM as a special case, the fit recovering
known coefficients exactly, the calibration found by default, errors, NFE and per-image seeding."""
import pytest
import torch

from helpers.diffusion import alpha_bar_at
from helpers.multistep_fit import calibrate, fit, sample_lsq_ms
from helpers.samplers import generate, next_timesteps, sample_ddim
from helpers.schedules import get_timesteps


def ddim_coefficients(denoiser, timesteps):
    """DDIM (eta = 0) as x_{i+1} = a x_i + b D_i: a = sigma_{i+1} / sigma_i, b = alpha_{i+1} - a alpha_i."""
    out = []
    for t, s in next_timesteps(timesteps):
        ab_t, ab_s = alpha_bar_at(denoiser.alpha_bar, t), alpha_bar_at(denoiser.alpha_bar, s)
        a = ((1 - ab_s) / (1 - ab_t)) ** 0.5
        out.append([a, ab_s**0.5 - a * ab_t**0.5])
    return out


def test_ddims_coefficients_reproduce_ddim(tiny_denoiser):
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ts = get_timesteps(1000, 6, "trailing")
    ours = sample_lsq_ms(tiny_denoiser, x_T, ts, coefficients=ddim_coefficients(tiny_denoiser, ts))
    assert (ours - sample_ddim(tiny_denoiser, x_T, ts, clip_x0=False)).abs().max().item() < 1e-5


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
    with pytest.raises(ValueError, match=r"calibrated: \[3, 4\] steps, trailing spacing"):
        generate(tiny_denoiser, 1, 0, sampler="lsq-ms", steps=4, spacing="linspace")


def test_a_coarse_teacher_grid_still_holds_the_wanted_states(tiny_denoiser):
    """teacher_states with a coarse teacher keeps the state at every wanted timestep, also those off its grid, and
    its all-T form equals sampling on every timestep."""
    from helpers.multistep_fit import teacher_states
    from helpers.samplers import sample_dpmpp_2m

    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    states = teacher_states(tiny_denoiser, x_T, {999, 749, 500, 123, -1}, teacher_steps=20)
    assert set(states) == {999, 749, 500, 123, -1} and torch.equal(states[999], x_T)
    grid = sorted({int(t) for t in get_timesteps(1000, 20, "linspace")} | {749, 500, 123}, reverse=True)
    kept = {}
    final = sample_dpmpp_2m(tiny_denoiser, x_T, grid,
                            callback=lambda info: kept.__setitem__(grid[info["i"] + 1] if info["i"] + 1 < len(grid) else -1, info["x"]))
    assert torch.equal(states[-1], final) and torch.equal(states[500], kept[500])
