"""Our DDPM sampler against diffusers' DDPMScheduler on the same network and the same random draws."""
import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.utils.torch_utils import randn_tensor

from helpers.denoisers import Denoiser
from helpers.samplers import generate, get_sampler, image_generators, sample_ddpm
from helpers.schedules import Schedule, get_timesteps
from tests.conftest import tiny_unet


def diffusers_ddpm(denoiser, x, num_steps, spacing, generators):
    sched = DDPMScheduler(num_train_timesteps=1000, variance_type="fixed_small", clip_sample=True,
                          timestep_spacing=spacing)
    sched.set_timesteps(num_steps)
    for t in sched.timesteps:
        eps = denoiser(x, torch.full((x.shape[0],), int(t)))
        x = sched.step(eps, t, x, generator=generators).prev_sample
    return x, sched.timesteps


@pytest.mark.parametrize("num_steps,spacing", [(1000, "leading"), (50, "leading"), (20, "linspace")])
def test_ddpm_matches_diffusers(tiny_denoiser, num_steps, spacing):
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ref, ref_ts = diffusers_ddpm(tiny_denoiser, x_T, num_steps, spacing, image_generators(7, range(3)))
    ts = get_timesteps(1000, num_steps, spacing)
    assert ts.tolist() == ref_ts.tolist()
    ours = sample_ddpm(tiny_denoiser, x_T, ts, generator=image_generators(7, range(3)))
    assert (ours - ref).abs().max().item() < 1e-4


def test_same_seed_same_image_at_any_batch_size(tiny_denoiser):
    a = generate(tiny_denoiser, 5, seed=3, shape=(1, 8, 8), steps=20, batch_size=5)
    b = generate(tiny_denoiser, 5, seed=3, shape=(1, 8, 8), steps=20, batch_size=2)
    assert (a - b).abs().max().item() < 1e-5
    c = generate(tiny_denoiser, 5, seed=4, shape=(1, 8, 8), steps=20, batch_size=5)
    assert (a - c).abs().max().item() > 0.1


def test_callback_sees_every_step_and_final_x0(tiny_denoiser):
    seen = []
    x_T = randn_tensor((2, 1, 8, 8), generator=image_generators(0, range(2)))
    out = sample_ddpm(tiny_denoiser, x_T, get_timesteps(1000, 10), generator=image_generators(0, range(2)),
                      callback=lambda d: seen.append((d["i"], d["t"], d["x"].clone(), d["x0_hat"])))
    assert [s[0] for s in seen] == list(range(10)) and seen[0][1] == 999 and seen[-1][1] == 0
    assert torch.equal(seen[-1][2], out)
    assert all(s[3].abs().max() <= 1 for s in seen)  # x0_hat is clipped


def test_nfe_counted(tiny_denoiser):
    generate(tiny_denoiser, 4, seed=0, shape=(1, 8, 8), steps=25, batch_size=2)
    assert tiny_denoiser.nfe == 2 * 25


def test_v_prediction_adapter_matches_eps():
    # A v-predicting network built from an eps one gives back the same eps through the adapter.
    s = Schedule.from_name("cosine", 1000)
    eps_net = tiny_unet()
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([10, 700])

    class VNet(torch.nn.Module):
        def forward(self, x_t, tt):
            eps = eps_net(x_t, tt)
            ab = s.alpha_bar[tt].float().reshape(-1, 1, 1, 1)
            x0 = (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()
            return ab.sqrt() * eps - (1 - ab).sqrt() * x0

    ref = Denoiser(eps_net, s)(x, t)
    assert torch.allclose(Denoiser(VNet(), s, prediction="v")(x, t), ref, atol=1e-4)


def test_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler 'ddpn'; known samplers: ddpm"):
        get_sampler("ddpn")


def run_scheduler(sched, denoiser, x, generators=None, **step_kwargs):
    for t in sched.timesteps:
        eps = denoiser(x, torch.full((x.shape[0],), int(t)))
        x = sched.step(eps, t, x, generator=generators, **step_kwargs).prev_sample
    return x, [int(t) for t in sched.timesteps]


@pytest.mark.parametrize("num_steps,spacing", [(10, "leading"), (50, "leading"), (25, "trailing")])
def test_ddim_eta0_matches_diffusers(tiny_denoiser, num_steps, spacing):
    from diffusers import DDIMScheduler
    from helpers.samplers import sample_ddim
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    sched = DDIMScheduler(num_train_timesteps=1000, clip_sample=True, set_alpha_to_one=True, timestep_spacing=spacing)
    sched.set_timesteps(num_steps)
    ref, ref_ts = run_scheduler(sched, tiny_denoiser, x_T, eta=0.0, use_clipped_model_output=True)
    ts = get_timesteps(1000, num_steps, spacing)
    assert ts.tolist() == ref_ts
    ours = sample_ddim(tiny_denoiser, x_T, ts, eta=0.0)
    assert (ours - ref).abs().max().item() < 1e-4


def test_ddim_eta1_matches_diffusers_with_same_noise(tiny_denoiser):
    from diffusers import DDIMScheduler
    from helpers.samplers import sample_ddim
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    sched = DDIMScheduler(num_train_timesteps=1000, clip_sample=True, set_alpha_to_one=True)
    sched.set_timesteps(20)
    ref, ts = run_scheduler(sched, tiny_denoiser, x_T, image_generators(4, range(2)), eta=1.0,
                            use_clipped_model_output=True)
    ours = sample_ddim(tiny_denoiser, x_T, ts, generator=image_generators(4, range(2)), eta=1.0)
    assert (ours - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("num_steps", [10, 20])
def test_dpmpp_2m_matches_diffusers(tiny_denoiser, num_steps):
    from diffusers import DPMSolverMultistepScheduler
    from helpers.samplers import sample_dpmpp_2m
    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    sched = DPMSolverMultistepScheduler(num_train_timesteps=1000, algorithm_type="dpmsolver++", solver_order=2,
                                        solver_type="midpoint", lower_order_final=True, final_sigmas_type="zero")
    sched.set_timesteps(num_steps)
    ref, ts = run_scheduler(sched, tiny_denoiser, x_T)
    assert ts == get_timesteps(1000, num_steps + 1, "linspace").tolist()[:-1]  # diffusers drops the final 0
    ours = sample_dpmpp_2m(tiny_denoiser, x_T, ts)
    assert (ours - ref).abs().max().item() < 1e-4


def test_heun_converges_to_the_ode_solution(tiny_denoiser):
    """Heun (2 calls per step) at 50 steps is closer to a 500-step DDIM (the same ODE, eta = 0, no clipping) than
    DDIM at 100 steps with the same number of network calls."""
    from helpers.samplers import sample_ddim, sample_heun
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    exact = sample_ddim(tiny_denoiser, x_T, get_timesteps(1000, 1000, "linspace"), clip_x0=False)
    heun = sample_heun(tiny_denoiser, x_T, get_timesteps(1000, 50, "linspace"))
    ddim = sample_ddim(tiny_denoiser, x_T, get_timesteps(1000, 100, "linspace"), clip_x0=False)
    assert (heun - exact).abs().max() < (ddim - exact).abs().max()


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_trajectory_ends_where_generate_ends(tiny_denoiser, sampler):
    """The captured trajectory starts from generate's x_T and its last x is generate's image (same seed)."""
    from helpers.samplers import generate, image_generators, initial_noise, trajectory

    kept = trajectory(tiny_denoiser, 3, 7, (1, 8, 8), sampler=sampler, steps=10, every=4)
    # linspace timesteps of 10 steps are 999, 888, ..., 111, 0: kept are steps 0, 4, 8 and the last (9)
    assert kept["t"] == [999, 555, 111, 0]
    assert torch.equal(kept["x_T"], initial_noise(image_generators(7, range(3)), (1, 8, 8)))
    final = generate(tiny_denoiser, 3, 7, (1, 8, 8), sampler=sampler, steps=10)
    assert torch.equal(kept["x"][-1], final)
    assert all(x.shape == (3, 1, 8, 8) for x in kept["x"] + kept["x0_hat"])


class VideoNet(torch.nn.Module):
    """A toy network on clips [N x F x C x H x W] with a 3-D convolution (whose 5-D weight cannot be channels_last)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(2, 2, 3, padding=1)

    def forward(self, x, t, y=None):
        return 0.1 * self.conv(x.transpose(1, 2)).transpose(1, 2) + 0.5 * x * (t.float() / 1000).reshape(-1, 1, 1, 1, 1)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp-2m", "heun", "dpmpp-2m-sde"])
def test_samplers_run_on_clips_unchanged(sampler):
    """No sampler assumes 4-D images: a 5-D clip [N x F x C x H x W] samples like an image, and channels_last (a
    layout of 4-D tensors only) is skipped, so it may stay on."""
    schedule = Schedule.from_name("linear", 1000)
    denoiser = Denoiser(VideoNet(), schedule, channels_last=True, sample_shape=(3, 2, 4, 4))
    clips = generate(denoiser, 2, 0, sampler=sampler, steps=5, batch_size=1)
    assert clips.shape == (2, 3, 2, 4, 4) and torch.isfinite(clips).all()
    # Clip i has its own noise at any batch size (up to the 3-D convolution's batch-dependent rounding).
    assert torch.allclose(clips, generate(denoiser, 2, 0, sampler=sampler, steps=5, batch_size=2), rtol=1e-5, atol=1e-5)


def test_sampler_registry():
    from helpers.samplers import SAMPLER_REGISTRY, SAMPLERS, check_options

    # the image samplers written here, then the published ones run through diffusers' schedulers (helpers.samplers.adapter)
    assert SAMPLERS == ("ddpm", "ddim", "dpmpp-2m", "heun", "dpmpp-2m-sde", "cn-2m", "lsq-ms", "gn-2m",
                        "gn-2m-noise", "gn-2m-grid", "lsq-sde", "dpmpp-3m", "sde-dpmpp-2m", "sde-dpmpp-3m", "unipc", "unipc-3", "deis", "sa-solver")
    for name, spec in SAMPLER_REGISTRY.items():
        assert callable(get_sampler(name)) and "clip_x0" in spec.options, name
    assert SAMPLER_REGISTRY["tabddpm"].data == "tabular"
    with pytest.raises(ValueError, match="unknown sampler 'tabddpm'; known samplers: ddpm, ddim, dpmpp-2m, heun, "
                                         "dpmpp-2m-sde, cn-2m, lsq-ms"):
        get_sampler("tabddpm", data="image")
    with pytest.raises(ValueError, match="eta applies to the ddim, dpmpp-2m-sde, gn-2m samplers only, not to 'heun'"):
        check_options("heun", {"eta": 0.5})
