"""Any diffusers scheduler as a sampler (helpers.samplers.schedulers, issue 39): on the same noise it reproduces our
DDIM and DPM-Solver++(2M), counts its network evaluations exactly, draws per image, and refuses a grid it would not
step on."""
import pytest
import torch

from helpers.samplers import generate
from helpers.sample import main as sample_main


@pytest.mark.parametrize("ours,theirs,options", [
    ("ddim", "diffusers:DDIMScheduler", {}),
    ("dpmpp-2m", "diffusers:DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
])
def test_the_adapter_reproduces_our_solvers_on_the_same_noise(tiny_denoiser, ours, theirs, options):
    """Trailing grid of 10 steps (T // 10 = 100 exactly: diffusers' DDIM steps from t to t - T // n)."""
    a = generate(tiny_denoiser, 6, 3, (1, 8, 8), sampler=ours, steps=10, spacing="trailing", clip_x0=False)
    b = generate(tiny_denoiser, 6, 3, (1, 8, 8), sampler=theirs, steps=10, spacing="trailing", clip_x0=False, **options)
    assert (a - b).abs().max().item() < 1e-4


@pytest.mark.parametrize("name,steps,nfe", [("UniPCMultistepScheduler", 6, 6), ("DEISMultistepScheduler", 5, 5),
                                            ("HeunDiscreteScheduler", 6, 11)])
def test_network_evaluations_are_counted_exactly(tiny_denoiser, name, steps, nfe):
    tiny_denoiser.nfe = 0
    generate(tiny_denoiser, 3, 0, (1, 8, 8), sampler=f"diffusers:{name}", steps=steps, spacing="trailing", batch_size=3)
    assert tiny_denoiser.nfe == nfe  # one batch: the calls per image


def test_a_stochastic_scheduler_draws_per_image_and_is_deterministic(tiny_denoiser):
    kw = dict(sampler="diffusers:EulerAncestralDiscreteScheduler", steps=8, spacing="trailing")
    a = generate(tiny_denoiser, 4, 5, (1, 8, 8), batch_size=4, **kw)
    assert torch.equal(a, generate(tiny_denoiser, 4, 5, (1, 8, 8), batch_size=4, **kw))
    b = generate(tiny_denoiser, 4, 5, (1, 8, 8), batch_size=2, **kw)  # image i from its own generator
    assert (a - b).abs().max().item() < 1e-5
    assert (a - generate(tiny_denoiser, 4, 6, (1, 8, 8), batch_size=4, **kw)).abs().max().item() > 0.1


def test_a_grid_the_scheduler_does_not_step_on_is_refused(tiny_denoiser):
    with pytest.raises(ValueError, match=r"DPMSolverMultistepScheduler with 10 linspace steps uses the timesteps "
                                         r"\[999, 899, .*not our grid \[999, 888"):
        generate(tiny_denoiser, 2, 0, (1, 8, 8), sampler="diffusers:DPMSolverMultistepScheduler", steps=10,
                 spacing="linspace")
    with pytest.raises(ValueError, match="unknown diffusers scheduler 'NopeScheduler'"):
        generate(tiny_denoiser, 2, 0, (1, 8, 8), sampler="diffusers:NopeScheduler", steps=10, spacing="trailing")


def test_the_command_line_passes_scheduler_options_and_refuses_them_elsewhere(tmp_path, capsys):
    from helpers.paths import ROOT

    ckpt = str(ROOT / "checkpoints" / "ddpm-mnist")
    out = tmp_path / "unipc"
    assert sample_main(["--checkpoint", ckpt, "--sampler", "diffusers:UniPCMultistepScheduler", "--steps", "4",
                        "--spacing", "trailing", "--scheduler-option", "solver_order=3", "--num", "2", "--out",
                        str(out)]) == 0
    assert "4 network evaluations per image" in capsys.readouterr().out
    import json

    assert json.loads((out / "sampling.json").read_text())["scheduler_options"] == {"solver_order": 3}
    assert sample_main(["--checkpoint", ckpt, "--sampler", "ddim", "--steps", "4", "--scheduler-option", "a=1",
                        "--num", "2", "--out", str(tmp_path / "x")]) == 2
    assert "--scheduler-option applies to --sampler diffusers:SCHEDULER only" in capsys.readouterr().err
