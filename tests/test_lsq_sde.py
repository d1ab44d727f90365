"""lsq-sde (helpers.samplers.lsq_sde): the Brownian aggregate of the ancestral teacher, its closed-form fit, and the
sampler's determinism, per-image noise and exact NFE."""
import math

import pytest
import torch

from helpers.denoisers import Denoiser
from helpers.samplers import generate
from helpers.samplers.lsq_sde import fine_step, fit, teacher_paths
from helpers.samplers.registry import image_generators, initial_noise
from helpers.samplers.solvers import next_timesteps
from helpers.schedules import Schedule

SCHEDULE = Schedule.from_name("linear", 1000)


class ZeroX0(torch.nn.Module):
    """A 'network' whose clean-image estimate is 0 everywhere: eps = x_t / sigma_t."""

    def forward(self, x, t, y=None):
        ab = SCHEDULE.alpha_bar.to(x.dtype)[t].view(-1, *[1] * (x.ndim - 1))
        return x / (1 - ab).sqrt()


def test_with_a_constant_clean_estimate_the_fit_is_exact_and_the_noise_scale_is_the_brownian_one():
    """With x0_hat = 0 every ancestral step is x_s = c2 x_t + sd z, so over a coarse step x_{t_{i+1}} = (prod c2)
    x_{t_i} + sqrt(v_i) xi_i exactly: the least-squares fit must return a_i = prod c2, intercept 0 and a regression
    noise coefficient sqrt(v_i) (computed here from fine_step, independently of teacher_paths' recursion); the
    moment-matched g_i must be close to it (the variance it adds is the teacher's, up to the sampling noise of 64
    images), and the last step returns x0_hat = 0 whatever the noise: a = g = 0 there."""
    den = Denoiser(ZeroX0(), SCHEDULE, sample_shape=(1, 4, 4))
    grid = [999, 666, 333]
    x_T = initial_noise(image_generators(1, range(64)), (1, 4, 4))
    states, xis, scales = teacher_paths(den, x_T, {"g": grid}, image_generators(2, range(64)))
    result = fit(den, x_T, states, xis["g"], grid, history=1, scales=scales["g"])
    for i, (t, s) in enumerate(next_timesteps(grid)):
        prod, v = 1.0, 0.0
        for u in range(t, max(s, 0), -1):
            c1, c2, sd = fine_step(SCHEDULE.alpha_bar, u, u - 1)
            prod, v = prod * c2, v * c2 * c2 + sd * sd
        last = s == -1
        a, _, intercept, g = result["coefficients"][i]
        assert scales["g"][i] == pytest.approx(math.sqrt(v), rel=1e-6) and result["brownian"][i] == scales["g"][i]
        # step 0 runs on the teacher's own x_T: exact; later steps run on the sampler's states, whose noise is the
        # moment-matched g rather than sqrt(v): their fit is close, not exact
        exact = dict(rel=1e-4, abs=1e-6) if i == 0 else dict(rel=0.05, abs=1e-3)
        assert a == pytest.approx(0.0 if last else prod, **exact) and intercept == pytest.approx(0, abs=1e-2)
        assert result["fitted"][i] == pytest.approx(0.0 if last else math.sqrt(v), **exact)
        assert g == (0.0 if last else pytest.approx(math.sqrt(v), rel=0.25))
        assert xis["g"][i].std().item() == pytest.approx(1.0, abs=0.1)  # 1024 standard normal numbers


def test_the_sampler_draws_per_image_with_exact_nfe(tiny_denoiser):
    coefficients = [[0.5, 0.3, 0.01, 0.9], [0.4, 0.5, 0.2, -0.02, 0.5], [0.1, 0.6, 0.3, 0.0, 0.0]]  # [a, b..., c, g]
    kw = dict(sampler="lsq-sde", steps=3, spacing="trailing", coefficients=coefficients)
    tiny_denoiser.nfe = 0
    a = generate(tiny_denoiser, 4, 7, (1, 8, 8), batch_size=4, **kw)
    assert tiny_denoiser.nfe == 3
    assert torch.equal(a, generate(tiny_denoiser, 4, 7, (1, 8, 8), batch_size=4, **kw))
    assert (a - generate(tiny_denoiser, 4, 7, (1, 8, 8), batch_size=2, **kw)).abs().max().item() < 1e-5
    assert (a - generate(tiny_denoiser, 4, 8, (1, 8, 8), batch_size=4, **kw)).abs().max().item() > 0.1
    with pytest.raises(ValueError, match="no coefficients for these 3 timesteps"):
        generate(tiny_denoiser, 2, 0, (1, 8, 8), sampler="lsq-sde", steps=3, spacing="trailing")


def test_the_noise_ablations_read_the_calibration(tiny_denoiser):
    """`noise` swaps the moment-matched g for the calibration's other noises on the same coefficients: "none" equals
    the coefficients with g = 0, "brownian" with g = sqrt(v_i); a bad name, or a noise with given coefficients, is
    refused in one line."""
    from helpers.schedules import get_timesteps

    grid = get_timesteps(1000, 3, "trailing").tolist()
    coefficients = [[0.5, 0.3, 0.01, 0.9], [0.4, 0.5, 0.2, -0.02, 0.5], [0.1, 0.6, 0.3, 0.0, 0.0]]
    fits = {"3": {"timesteps": grid, "coefficients": coefficients, "fitted": [0.7, 0.4, 0.1], "brownian": [0.99, 0.6, 0.2]}}
    tiny_denoiser.calibration = {"lsq-sde": {"fits": fits}}
    kw = dict(sampler="lsq-sde", steps=3, spacing="trailing")
    with_g = lambda gs: [c[:-1] + [g] for c, g in zip(coefficients, gs)]  # noqa: E731
    try:
        none = generate(tiny_denoiser, 3, 5, (1, 8, 8), noise="none", **kw)
        assert torch.equal(none, generate(tiny_denoiser, 3, 5, (1, 8, 8), coefficients=with_g([0, 0, 0]), **kw))
        brownian = generate(tiny_denoiser, 3, 5, (1, 8, 8), noise="brownian", **kw)
        assert torch.equal(brownian, generate(tiny_denoiser, 3, 5, (1, 8, 8), coefficients=with_g([0.99, 0.6, 0]), **kw))
        assert torch.equal(generate(tiny_denoiser, 3, 5, (1, 8, 8), **kw),
                           generate(tiny_denoiser, 3, 5, (1, 8, 8), coefficients=coefficients, **kw))
        with pytest.raises(ValueError, match="noise must be one of moment, fitted, brownian, none, got 'loud'"):
            generate(tiny_denoiser, 1, 0, (1, 8, 8), noise="loud", **kw)
        with pytest.raises(ValueError, match="cannot be combined with given coefficients"):
            generate(tiny_denoiser, 1, 0, (1, 8, 8), noise="none", coefficients=coefficients, **kw)
    finally:
        tiny_denoiser.calibration = None
