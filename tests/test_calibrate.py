"""SDE-DPM-Solver++(2M) with a noise share per step (samplers.sample_dpmpp_2m_sde) and the calibrated-noise sampler
cn-2m (helpers.samplers.cn2m): limits, a cross-check against diffusers, the calibration found by default, the search."""
import json
import shutil

import numpy as np
import pytest
import torch

from helpers.samplers.cn2m import BAND_EDGES, band_etas, calibrate, classifier_features, sample_cn_2m
from helpers.diffusion import posterior_step
from helpers.samplers import generate, image_generators, sample_dpmpp_2m, sample_dpmpp_2m_sde
from helpers.schedules import get_timesteps
from tests.test_samplers import run_scheduler


def test_eta0_is_dpmpp_2m(tiny_denoiser):
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ts = get_timesteps(1000, 8, "trailing")
    ours, ref = sample_dpmpp_2m_sde(tiny_denoiser, x_T, ts, eta=0.0), sample_dpmpp_2m(tiny_denoiser, x_T, ts)
    assert (ours - ref).abs().max().item() < 1e-5  # the same step, its terms grouped differently


def test_eta1_first_step_is_ddpms_posterior_step(tiny_denoiser):
    """The first (first-order) step with eta = 1 draws from DDPM's posterior q(x_s | x_t, x0_hat), same noise."""
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    first = []
    sample_dpmpp_2m_sde(tiny_denoiser, x_T, [900, 700, 300], generator=image_generators(5, range(2)), eta=1.0,
                        callback=lambda info: first.append(info["x"]) if info["i"] == 0 else None)
    ddpm, _ = posterior_step(tiny_denoiser, x_T, 900, 700, clip_x0=False, generator=image_generators(5, range(2)))
    assert (first[0] - ddpm).abs().max().item() < 1e-5


@pytest.mark.parametrize("num_steps", [8, 15])
def test_eta1_matches_diffusers_sde_dpmsolver_pp(tiny_denoiser, num_steps):
    """eta = 1 is diffusers' DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++", 2nd order, midpoint) on
    the same timesteps and the same noise draws (one generator, one draw per step)."""
    from diffusers import DPMSolverMultistepScheduler

    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    sched = DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="sde-dpmsolver++", solver_order=2,
                                        solver_type="midpoint", lower_order_final=True, final_sigmas_type="zero")
    sched.set_timesteps(num_steps)
    ref, ts = run_scheduler(sched, tiny_denoiser, x_T, torch.Generator().manual_seed(9))
    ours = sample_dpmpp_2m_sde(tiny_denoiser, x_T, ts, generator=torch.Generator().manual_seed(9), eta=1.0)
    assert (ours - ref).abs().max().item() < 1e-4


def test_eta_is_checked(tiny_denoiser):
    x_T = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match=r"eta must be one number in \[0, 1\] or 3 of them"):
        sample_dpmpp_2m_sde(tiny_denoiser, x_T, [900, 500, 100], eta=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"eta must be one number in \[0, 1\]"):
        sample_dpmpp_2m_sde(tiny_denoiser, x_T, [900, 500, 100], eta=1.5)


def test_bands_follow_the_timestep():
    assert band_etas((0.1, 0.2, 0.3), [999, 749, 499, 249], 1000) == [0.1, 0.1, 0.2, 0.3]
    assert band_etas((0.1, 0.2, 0.3), [667, 666, 334, 333], 1000) == [0.1, 0.2, 0.2, 0.3]  # edges 666.7 and 333.3
    assert BAND_EDGES == (2 / 3, 1 / 3)
    with pytest.raises(ValueError, match="eta_bands must hold 3 values"):
        band_etas((0.1, 0.2), [999], 1000)


def test_cn_2m_is_deterministic_per_image_and_counts_its_calls(tiny_denoiser):
    """Registered: image i of a seed is the same at any batch size, and K steps cost K network calls per batch."""
    tiny_denoiser.nfe = 0
    a = generate(tiny_denoiser, 4, 3, (1, 8, 8), sampler="cn-2m", steps=6, spacing="trailing", batch_size=4,
                 eta_bands=(0.0, 0.5, 1.0))
    assert tiny_denoiser.nfe == 6
    b = generate(tiny_denoiser, 4, 3, (1, 8, 8), sampler="cn-2m", steps=6, spacing="trailing", batch_size=3,
                 eta_bands=(0.0, 0.5, 1.0))
    assert torch.allclose(a, b, atol=1e-6)
    c = generate(tiny_denoiser, 4, 4, (1, 8, 8), sampler="cn-2m", steps=6, spacing="trailing", batch_size=4,
                 eta_bands=(0.0, 0.5, 1.0))
    assert not torch.allclose(a, c)


def test_cn_2m_without_a_calibration_says_how_to_make_one(tiny_denoiser):
    with pytest.raises(ValueError, match="needs a calibration of this model: run `python -m helpers.calibrate"):
        generate(tiny_denoiser, 1, 0, (1, 8, 8), sampler="cn-2m", steps=4)


def test_the_calibration_of_a_checkpoint_is_found_by_default(tmp_path):
    """A calibration.json beside the weights is read by from_checkpoint; cn-2m then needs no option."""
    from helpers.denoisers import from_checkpoint
    from helpers.paths import ROOT

    folder = tmp_path / "ddpm-digits8"
    shutil.copytree(ROOT / "checkpoints" / "ddpm-digits8", folder)
    (folder / "calibration.json").write_text(json.dumps({"cn-2m": {"eta_bands": [0.0, 1.0, 0.0]}}))
    denoiser, _ = from_checkpoint(folder)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ts = get_timesteps(1000, 6, "trailing")
    gens = lambda: image_generators(0, range(2))  # noqa: E731
    default = sample_cn_2m(denoiser, x_T, ts, generator=gens())
    assert torch.equal(default, sample_cn_2m(denoiser, x_T, ts, generator=gens(), eta_bands=(0.0, 1.0, 0.0)))
    assert not torch.equal(default, sample_cn_2m(denoiser, x_T, ts, generator=gens(), eta_bands=(0.0, 0.0, 0.0)))


class MeanFeatures(torch.nn.Module):
    """A stand-in 'classifier' whose features are an image's mean and its mean square."""

    def features(self, x, t):
        return torch.stack([x.flatten(1).mean(1), x.flatten(1).pow(2).mean(1)], 1)


def test_calibrate_searches_from_the_ode_and_never_ends_worse(tiny_denoiser):
    real = np.random.default_rng(0).normal(size=(300, 2)) * 0.1
    lines = []
    tiny_denoiser.sample_shape = (1, 8, 8)  # generate() takes the shape of the images from the denoiser
    result = calibrate(tiny_denoiser, MeanFeatures(), real, steps=3, num=40, sweeps=1, batch_size=40, log=lines.append)
    history = result["history"]
    assert history[0]["eta_bands"] == [0.0, 0.0, 0.0] and len(history) == 1 + 3 * 4  # the ODE, then 4 values per band
    assert result["distance"] == min(h["distance"] for h in history) <= history[0]["distance"]
    assert result["eta_bands"] in [h["eta_bands"] for h in history] and len(lines) == len(history)
    feats = classifier_features(MeanFeatures(), torch.zeros(3, 1, 8, 8))
    assert feats.shape == (3, 2) and feats.dtype == np.float64
