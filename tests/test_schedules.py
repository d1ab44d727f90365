"""Schedules and the forward process against diffusers' DDPMScheduler on the same inputs."""
import math

import pytest
import torch
from diffusers import DDPMScheduler

from helpers.diffusion import eps_from_v, q_posterior_mean_variance, q_sample, v_target, x0_from_eps
from helpers.objectives import diffusion_loss, elementwise_loss, loss_weight
from helpers.schedules import SCHEDULES, Schedule, get_betas, get_timesteps

DIFFUSERS_NAME = {"linear": "linear", "cosine": "squaredcos_cap_v2", "quadratic": "scaled_linear", "sigmoid": "sigmoid"}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("T", [1000, 50])
def test_betas_match_diffusers(name, T):
    ref = DDPMScheduler(num_train_timesteps=T, beta_start=1e-4, beta_end=0.02, beta_schedule=DIFFUSERS_NAME[name])
    betas = get_betas(name, T)
    assert betas.dtype == torch.float64 and betas.shape == (T,)
    assert torch.allclose(betas, ref.betas.double(), atol=1e-6, rtol=0)
    assert torch.allclose(Schedule(name, betas).alpha_bar, ref.alphas_cumprod.double(), atol=1e-6, rtol=0)


def test_golden_values():
    # Closed forms: linear beta_t = 1e-4 + (0.02 - 1e-4) t / (T-1); cosine alpha_bar_T-1 = 0 up to the 0.999 cap.
    s = Schedule.from_name("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    assert s.betas[500].item() == pytest.approx(1e-4 + (0.02 - 1e-4) * 500 / 999, rel=1e-12)
    # alpha_bar at T-1 for the linear schedule, = prod(1 - beta): computed once with math.prod in float64.
    expected = math.prod(1 - (1e-4 + (0.02 - 1e-4) * i / 999) for i in range(1000))
    assert s.alpha_bar[-1].item() == pytest.approx(expected, rel=1e-9)
    assert 4.0e-5 < s.alpha_bar[-1].item() < 4.1e-5  # the well-known ~4.04e-5 of Ho et al.'s schedule
    c = Schedule.from_name("cosine", 1000)
    assert c.betas.max().item() == pytest.approx(0.999)
    assert c.alpha_bar[0].item() == pytest.approx(math.cos((1 / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2 /
                                                  math.cos(0.008 / 1.008 * math.pi / 2) ** 2, rel=1e-12)


def test_unknown_schedule_lists_known_ones():
    with pytest.raises(ValueError, match="unknown beta schedule 'cosin'.*linear, cosine, quadratic, sigmoid"):
        get_betas("cosin", 1000)
    with pytest.raises(ValueError, match="positive integer"):
        get_betas("linear", 0)


def test_derived_quantities_identities():
    s = Schedule.from_name("cosine", 200)
    assert torch.allclose(s.snr, s.alpha_bar / (1 - s.alpha_bar))
    # beta_tilde_t <= beta_t, and equality of eq. (7) coefficients with their definition.
    assert torch.all(s.posterior_variance <= s.betas + 1e-15)
    assert s.posterior_variance[0].item() == 0.0


def test_q_sample_matches_add_noise():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(8, 1, 6, 6, generator=g), torch.randn(8, 1, 6, 6, generator=g)
    t = torch.tensor([0, 1, 10, 100, 500, 900, 998, 999])
    for name in SCHEDULES:
        ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_NAME[name])
        ours = q_sample(Schedule.from_name(name), x0, t, eps)
        assert torch.allclose(ours, ref.add_noise(x0, eps, t), atol=1e-5)


def test_posterior_matches_diffusers():
    s = Schedule.from_name("linear")
    ref = DDPMScheduler(num_train_timesteps=1000, variance_type="fixed_small")
    # diffusers keeps alpha_bar in float32, so 1 - alpha_bar loses digits at small t: compare absolutely.
    for t in [1, 2, 50, 500, 999]:
        assert s.posterior_variance[t].item() == pytest.approx(ref._get_variance(t).item(), abs=1e-7)
    # The posterior mean of the true x0 from x_t: compare with diffusers' step with the exact eps (no clipping).
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.rand(2, 1, 4, 4, generator=g) * 2 - 1, torch.randn(2, 1, 4, 4, generator=g)
    t = torch.tensor([300, 300])
    x_t = q_sample(s, x0, t, eps)
    mean, var = q_posterior_mean_variance(s, x0, x_t, t)
    ref_mean = ref.step(eps, 300, x_t, generator=torch.Generator().manual_seed(0)).prev_sample
    # diffusers adds sqrt(var) * z; remove it with the same z to compare means.
    z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(ref_mean - var.sqrt() * z, mean, atol=1e-5)


def test_x0_and_v_round_trips():
    s = Schedule.from_name("cosine")
    g = torch.Generator().manual_seed(2)
    x0, eps = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 990])
    x_t = q_sample(s, x0, t, eps)
    assert torch.allclose(x0_from_eps(s, x_t, t, eps), x0, atol=1e-3)
    assert torch.allclose(eps_from_v(s, x_t, t, v_target(s, x0, t, eps)), eps, atol=1e-5)
    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    assert torch.allclose(v_target(s, x0, t, eps), ref.get_velocity(x0, eps, t), atol=1e-5)


def test_losses_golden_and_errors():
    pred, target = torch.tensor([0.0, 0.5, 3.0]), torch.zeros(3)
    # Hand-computed: l2 = x^2, l1 = |x|, huber(delta=1) = 0.5 x^2 for |x| <= 1 else |x| - 0.5.
    assert elementwise_loss(pred, target, "l2").tolist() == [0.0, 0.25, 9.0]
    assert elementwise_loss(pred, target, "l1").tolist() == [0.0, 0.5, 3.0]
    assert elementwise_loss(pred, target, "huber").tolist() == [0.0, 0.125, 2.5]
    with pytest.raises(ValueError, match="unknown loss 'l3'"):
        elementwise_loss(pred, target, "l3")
    s = Schedule.from_name("linear")
    w = loss_weight(s, torch.tensor([0, 999]), "min-snr-5", "eps")
    assert w[0].item() == pytest.approx(5 / s.snr[0].item(), rel=1e-5) and w[1].item() == pytest.approx(1.0)


def test_diffusion_loss_of_perfect_model_is_zero():
    s = Schedule.from_name("linear")
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([5, 50, 500, 950])
    oracle = lambda x_t, tt: eps  # noqa: E731 - predicts the true noise
    assert diffusion_loss(oracle, s, x0, t, eps).abs().max().item() < 1e-12


@pytest.mark.parametrize("spacing,expected", [
    # Hand-derived for T = 1000, n = 5; "leading" and "trailing" equal diffusers' DDIMScheduler timesteps.
    ("linspace", [999, 749, 500, 250, 0]),
    ("leading", [800, 600, 400, 200, 0]),
    ("trailing", [999, 799, 599, 399, 199]),
    ("quadratic", [800, 450, 200, 50, 0]),
])
def test_timestep_spacings(spacing, expected):
    assert get_timesteps(1000, 5, spacing).tolist() == expected


def test_timesteps_errors():
    with pytest.raises(ValueError, match="asked for 2000 sampling steps but the model has only T = 1000"):
        get_timesteps(1000, 2000)
    with pytest.raises(ValueError, match="unknown timestep spacing 'even'"):
        get_timesteps(1000, 10, "even")
    assert get_timesteps(1000, 1000).tolist() == list(range(999, -1, -1))


def test_eq11_mean_equals_posterior_mean_of_x0_hat():
    from helpers.diffusion import p_mean_from_eps
    s = Schedule.from_name("linear")
    g = torch.Generator().manual_seed(5)
    x_t, eps = torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64), torch.randn(4, 1, 8, 8, generator=g, dtype=torch.float64)
    t = torch.tensor([1, 100, 500, 999])
    mean7, _ = q_posterior_mean_variance(s, x0_from_eps(s, x_t, t, eps), x_t, t)
    assert torch.allclose(p_mean_from_eps(s, x_t, t, eps), mean7, atol=1e-10)


def test_vlb_weighting_golden():
    s = Schedule.from_name("linear")
    lam = s.betas / (2 * s.alphas * (1 - s.alpha_bar))
    w = loss_weight(s, torch.tensor([0, 999]), "vlb", "eps")
    # Hand-computed: at t = 0, beta = 1e-4 and 1 - alpha_bar = 1e-4, so lambda_0 = 1 / (2 (1 - 1e-4)).
    assert lam[0].item() == pytest.approx(0.5 / (1 - 1e-4), rel=1e-9)
    assert w[0].item() == pytest.approx(lam[0].item() / lam.mean().item(), rel=1e-6)
    assert w[0] > 20 * w[1]  # the bound weighs the nearly clean steps far more than L_simple does
    with pytest.raises(ValueError, match="vlb weighting is defined for eps prediction"):
        loss_weight(s, torch.tensor([0]), "vlb", "v")


@pytest.mark.parametrize("n", [5, 10, 20, 50])
def test_karras_spacing_matches_diffusers_rounded(n):
    """Our karras spacing (nearest integer t in log sigma) equals diffusers' EulerDiscreteScheduler with
    use_karras_sigmas=True, whose fractional timesteps we round (for n = 5: 999, 843, 593, 142, 0)."""
    from diffusers import EulerDiscreteScheduler

    ref = EulerDiscreteScheduler(num_train_timesteps=1000, beta_schedule="linear", use_karras_sigmas=True)
    ref.set_timesteps(n)
    ours = get_timesteps(1000, n, "karras", alpha_bar=Schedule.from_name("linear", 1000).alpha_bar)
    assert ours.tolist() == ref.timesteps.round().long().tolist()


def test_karras_spacing_needs_alpha_bar():
    with pytest.raises(ValueError, match="karras spacing needs the model's alpha_bar"):
        get_timesteps(1000, 10, "karras")


def test_the_resolution_shift_multiplies_the_snr_by_base_over_size_squared():
    """simple diffusion's shift: log-SNR + 2 log(64 / d). A 128-pixel image averaged 2 x 2 down to 64 pixels keeps its
    (smooth) signal and divides the noise variance by 4, so under the shifted schedule its coarse-scale SNR is the
    unshifted schedule's SNR at 64 pixels: 4 * SNR_128(t) = SNR_64(t) at every t."""
    from helpers.schedules import shift_schedule

    for name in ("linear", "cosine"):
        s = Schedule.from_name(name, 1000)
        torch.testing.assert_close(shift_schedule(s, 64).alpha_bar, s.alpha_bar, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(shift_schedule(s, 32).snr, 4 * s.snr, rtol=1e-7, atol=0)
        big = shift_schedule(s, 128)
        torch.testing.assert_close(4 * big.snr, s.snr, rtol=1e-7, atol=0)
        assert (big.alpha_bar.diff() < 0).all() and big.name == f"{name}-shifted-64/128"
    with pytest.raises(ValueError, match="size and base must be positive integers"):
        shift_schedule(Schedule.from_name("linear"), 0)
