"""Our samplers on a diffusers UNet2DModel loaded with from_pretrained, against diffusers' own schedulers."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel

from helpers.denoisers import DiffusersModelError, from_diffusers, load_denoiser
from helpers.paths import ROOT
from helpers.samplers import sample_ddim, sample_dpmpp_2m
from helpers.schedules import get_timesteps
from tests.conftest import GaussianPlusNet
from tests.test_samplers import run_scheduler


@pytest.fixture(scope="module")
def diffusers_folder(tmp_path_factory):
    """A small randomly initialised UNet2DModel (seed 0) and a DDPMScheduler, saved as a pipeline would be."""
    folder = tmp_path_factory.mktemp("tiny-ddpm")
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(16, 32),
                       norm_num_groups=8, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"))
    unet.save_pretrained(folder / "unet")
    DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear").save_pretrained(folder / "scheduler")
    return folder


def wrapped(folder):
    """The loaded model, plus the exact Gaussian noise prediction, so that samples stay of order one."""
    denoiser, info = load_denoiser(str(folder))
    denoiser.net = GaussianPlusNet(denoiser.net, denoiser.alpha_bar)
    return denoiser, info


def test_loads_pipeline_layout(diffusers_folder):
    denoiser, info = load_denoiser(str(diffusers_folder))
    assert info["shape"] == (1, 8, 8) and info["T"] == 1000 and denoiser.prediction == "eps"
    ref = UNet2DModel.from_pretrained(diffusers_folder / "unet")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 700])
    assert torch.allclose(denoiser(x, t), ref(x, t).sample)


def test_ddim_on_diffusers_unet(diffusers_folder):
    denoiser, _ = wrapped(diffusers_folder)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    sched = DDIMScheduler.from_pretrained(diffusers_folder / "scheduler")  # same betas, clip_sample on
    sched.set_timesteps(20)
    ref, ts = run_scheduler(sched, denoiser, x_T, eta=0.0, use_clipped_model_output=True)
    assert ts == get_timesteps(1000, 20, "leading").tolist()
    assert (sample_ddim(denoiser, x_T, ts) - ref).abs().max().item() < 1e-4


def test_dpmpp_2m_on_diffusers_unet(diffusers_folder):
    denoiser, _ = wrapped(diffusers_folder)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    sched = DPMSolverMultistepScheduler.from_pretrained(diffusers_folder / "scheduler", algorithm_type="dpmsolver++",
                                                        solver_order=2)
    sched.set_timesteps(15)
    ref, ts = run_scheduler(sched, denoiser, x_T)
    assert (sample_dpmpp_2m(denoiser, x_T, ts) - ref).abs().max().item() < 1e-4


def test_sample_cli_with_diffusers_folder_and_noise_file(diffusers_folder, tmp_path):
    noise = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x_T.npy", noise)
    args = [sys.executable, "-m", "helpers.sample", "--checkpoint", str(diffusers_folder), "--sampler", "ddim",
            "--steps", "10", "--eta", "0", "--noise", str(tmp_path / "x_T.npy"), "--out"]
    a = subprocess.run(args + [str(tmp_path / "a")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    b = subprocess.run(args + [str(tmp_path / "b"), "--batch-size", "1", "--seed", "9"], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert len(list((tmp_path / "a").glob("*.png"))) == 3  # --num defaults to the rows of --noise
    # DDIM with eta = 0 is deterministic given x_T: the seed and batch size do not matter.
    assert all((tmp_path / "a" / f.name).read_bytes() == f.read_bytes() for f in (tmp_path / "b").glob("*.png"))
    bad = subprocess.run(args[:-3] + ["--noise", str(tmp_path / "x_T.npy"), "--num", "5", "--out", str(tmp_path / "c")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "the starting noise has shape [3, 1, 8, 8], expected [5, 1, 8, 8]" in bad.stderr
    eta = subprocess.run([sys.executable, "-m", "helpers.sample", "--checkpoint", str(diffusers_folder), "--sampler",
                          "ddpm", "--eta", "0.5", "--steps", "5", "--num", "1", "--out", str(tmp_path / "d")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert eta.returncode == 2 and "eta applies to the ddim, dpmpp-2m-sde, gn-2m samplers only" in eta.stderr


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DiffusersModelError, match="google/ddpm-cifar10-32.*huggingface-cli download"):
        from_diffusers("google/ddpm-cifar10-32")


def test_unreachable_hub_fails_fast_with_the_reason(monkeypatch):
    """Without a network a hub id is looked up in the local cache only (no retries), and the error says so."""
    import time

    import helpers.denoisers as denoisers

    monkeypatch.setattr(denoisers, "hub_reachable", lambda *a, **k: False)
    start = time.time()
    with pytest.raises(DiffusersModelError, match="local Hugging Face cache.*not reachable.*huggingface-cli download"):
        from_diffusers("google/ddpm-cifar10-32")
    assert time.time() - start < 10


@pytest.mark.parametrize("kind, hub_id", [("dit", "facebook/DiT-XL-2-256"),
                                          ("stable-diffusion", "stabilityai/stable-diffusion-2-1-base")])
def test_hub_pipelines_offline_say_what_is_missing_in_one_line(monkeypatch, kind, hub_id):
    """DiTPipeline (notebook 10) and StableDiffusionPipeline (notebook 11) need the hub: offline, one line naming the
    pipeline, the id, what it needs and the download command, at once (the local cache only, no retries)."""
    import time

    import helpers.samplers.pipelines as pipelines

    monkeypatch.setattr(pipelines, "hub_reachable", lambda *a, **k: False)
    start = time.time()
    with pytest.raises(DiffusersModelError) as err:
        pipelines.load_pipeline(kind, device="cpu")
    message = str(err.value)
    assert "\n" not in message and hub_id in message and "GPU" in message
    if "package" in message:  # Stable Diffusion also needs transformers, which the set-up leaves out
        assert "`pip install transformers`" in message
    else:
        assert "local Hugging Face cache" in message and f"huggingface-cli download {hub_id}" in message
    assert time.time() - start < 10
    with pytest.raises(ValueError, match="unknown pipeline kind 'dall-e'; known: dit, stable-diffusion"):
        pipelines.load_pipeline("dall-e")
