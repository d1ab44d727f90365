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


ESTABLISHED_NAMES = ("dpmpp-3m", "sde-dpmpp-2m", "sde-dpmpp-3m", "unipc", "unipc-3", "deis", "sa-solver")


@pytest.mark.parametrize("name", ESTABLISHED_NAMES)
def test_the_established_samplers_are_registry_names_with_exact_nfe_and_per_image_noise(tiny_denoiser, name):
    """Each published sampler by its paper's name is its diffusers scheduler with its config: the same images as the
    explicit adapter call, one network call per step at 4 and 6 steps, and image i the same at batch sizes 4 and 2."""
    from helpers.samplers.schedulers import ESTABLISHED

    cls_name, config = ESTABLISHED[name]
    for steps in (4, 6):
        tiny_denoiser.nfe = 0
        a = generate(tiny_denoiser, 4, 1, (1, 8, 8), sampler=name, steps=steps, spacing="trailing", batch_size=4)
        assert tiny_denoiser.nfe == steps and torch.isfinite(a).all()
        b = generate(tiny_denoiser, 4, 1, (1, 8, 8), sampler=f"diffusers:{cls_name}", steps=steps, spacing="trailing",
                     batch_size=2, **config)
        assert (a - b).abs().max().item() < 1e-5


def test_the_command_line_runs_a_named_scheduler_on_its_trailing_grid_and_refuses_clipping(tmp_path, capsys):
    """`--sampler dpmpp-3m` without --spacing steps on the trailing grid (linspace would be refused by the scheduler
    and used to leave a half-made folder); another grid is refused before any file, naming the sampler; clipping,
    which these schedulers cannot do, is refused rather than ignored."""
    from helpers.denoisers import from_checkpoint
    from helpers.paths import ROOT

    common = ["--checkpoint", str(ROOT / "checkpoints" / "ddpm-digits8"), "--num", "2", "--steps", "4"]
    assert sample_main(common + ["--sampler", "dpmpp-3m", "--out", str(tmp_path / "a")]) == 0
    with pytest.raises(ValueError, match=r"dpmpp-3m \(DPMSolverMultistepScheduler\) does not clip x0_hat"):
        generate(from_checkpoint(ROOT / "checkpoints" / "ddpm-digits8")[0], 2, 0, sampler="dpmpp-3m", steps=4,
                 clip_x0=True)
    assert sample_main(common + ["--sampler", "unipc", "--spacing", "linspace", "--out", str(tmp_path / "c")]) == 2
    assert "--sampler unipc: UniPCMultistepScheduler with 4 linspace steps" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpmpp-2m", "heun", "dpmpp-2m-sde", "dpmpp-3m", "sde-dpmpp-2m",
                                  "unipc", "deis", "sa-solver", "diffusers:UniPCMultistepScheduler"])
def test_every_sampler_calls_the_network_without_autograd(tiny_denoiser, monkeypatch, name):
    """The adapter once ran diffusers' schedulers with autograd on: every call's activations stayed alive until the
    batch ended (10.6 GB at a batch of 250 on the MNIST U-Net; issue 39's benchmark was killed for memory)."""
    seen = []
    forward = tiny_denoiser.net.forward
    monkeypatch.setattr(tiny_denoiser.net, "forward", lambda *a, **k: (seen.append(torch.is_grad_enabled()), forward(*a, **k))[1])
    generate(tiny_denoiser, 2, 0, (1, 8, 8), sampler=name, steps=5, spacing="trailing", batch_size=2)
    assert seen and not any(seen)
