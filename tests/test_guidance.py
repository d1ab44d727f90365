"""Guidance: the CFG combination and its one batched call, classifier guidance's gradient step, the noisy classifier,
and the sampling CLI's label and guidance options."""
import json
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import checkpoints as ckpt
from helpers.samplers import guidance
from helpers.denoisers import Denoiser
from helpers.samplers.guidance import CFGDenoiser, ClassifierGuidedDenoiser, load_noisy_classifier, train_noisy_classifier
from helpers.models.classifier import NoisyClassifier, NoisyClassifierConfig
from helpers.sample import main as sample_main
from helpers.samplers import generate
from helpers.schedules import Schedule
from helpers.training.ddpm import main as train_main
from tests.conftest import tiny_unet
from tests.test_train import TINY

SCHEDULE = Schedule.from_name("linear", 1000)


class LabelDenoiser(nn.Module):
    """A deterministic conditional 'network': eps = 0.5 x_t + 0.1 (y + 1), null label 10. Records batch sizes."""

    num_classes = 10

    def __init__(self):
        super().__init__()
        self.alpha_bar, self.nfe, self.batches = SCHEDULE.alpha_bar, 0, []

    def forward(self, x, t, y):
        self.nfe += 1
        self.batches.append(len(x))
        return 0.5 * x + 0.1 * (y + 1).float().reshape(-1, 1, 1, 1)


@pytest.mark.parametrize("w,expected", [
    # By hand, x = 1, labels (2, 7): eps_c = 0.5 + 0.1 * 3 = 0.8 and 0.5 + 0.1 * 8 = 1.3; eps_u (null label 10)
    # = 0.5 + 0.1 * 11 = 1.6. Then eps_u + w (eps_c - eps_u):
    (0.0, [1.6, 1.6]),  # the unconditional prediction
    (1.0, [0.8, 1.3]),  # the conditional prediction
    (3.0, [-0.8, 0.7]),  # 1.6 + 3 (0.8 - 1.6) = -0.8 and 1.6 + 3 (1.3 - 1.6) = 0.7
])
def test_cfg_golden_values(w, expected):
    base = LabelDenoiser()
    cfg = CFGDenoiser(base, w)
    x, t, y = torch.ones(2, 1, 2, 2), torch.tensor([10, 500]), torch.tensor([2, 7])
    eps = cfg(x, t, y)
    assert torch.allclose(eps, torch.tensor(expected).reshape(2, 1, 1, 1).expand(2, 1, 2, 2), atol=1e-6)
    # w in {0, 1}: one call of N; otherwise one batched call of 2N.
    assert base.batches == ([2] if w in (0.0, 1.0) else [4]) and cfg.nfe == 1
    assert cfg.alpha_bar is base.alpha_bar


def conditional_denoiser():
    return Denoiser(tiny_unet(seed=1, num_classes=10), SCHEDULE)


def test_cfg_one_batched_call_equals_two_separate_calls():
    base = conditional_denoiser()
    batches = []
    base.net.register_forward_hook(lambda module, inputs, out: batches.append((len(inputs[0]), inputs[2].tolist())))
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(3, 1, 8, 8, generator=g), torch.tensor([999, 400, 20]), torch.tensor([0, 4, 9])
    with torch.no_grad():
        eps = CFGDenoiser(base, 3.0)(x, t, y)
        assert batches == [(6, [0, 4, 9, 10, 10, 10])] and base.nfe == 1
        eps_c, eps_u = base(x, t, y), base(x, t, torch.full_like(y, 10))
    assert (eps_c - eps_u).abs().max() > 1e-3  # the label matters, so the check below is not vacuous
    assert torch.allclose(eps, eps_u + 3.0 * (eps_c - eps_u), atol=1e-6)


def test_cfg_counts_one_call_per_sampling_step():
    cfg = CFGDenoiser(conditional_denoiser(), 2.0)
    out = generate(cfg, 4, 0, (1, 8, 8), sampler="ddim", steps=5, batch_size=4, y=torch.tensor([1, 2, 3, 4]))
    assert out.shape == (4, 1, 8, 8) and torch.isfinite(out).all() and cfg.nfe == 5


def test_guidance_errors():
    uncond = Denoiser(tiny_unet(), SCHEDULE)
    with pytest.raises(ValueError, match="guidance needs a conditional model; ckpt/x is unconditional"):
        CFGDenoiser(uncond, 2.0, source="ckpt/x")
    cfg = CFGDenoiser(conditional_denoiser(), 2.0)
    x, t = torch.zeros(2, 1, 8, 8), torch.tensor([5, 5])
    with pytest.raises(ValueError, match=r"class label 12 is outside the model's classes 0\.\.9"):
        cfg(x, t, torch.tensor([3, 12]))
    with pytest.raises(ValueError, match="class label 10 is outside"):  # the null label is not a class
        cfg(x, t, torch.tensor([10, 1]))
    with pytest.raises(ValueError, match="classifier-free guidance needs class labels"):
        cfg(x, t, None)


def tiny_classifier(T=1000, seed=0):
    torch.manual_seed(seed)
    return NoisyClassifier(NoisyClassifierConfig(in_channels=1, image_size=8, base_channels=16, T=T)).eval()


def test_noisy_classifier_shapes_and_size():
    x, t = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 500, 999])
    assert tiny_classifier()(x, t).shape == (4, 10)
    mnist = NoisyClassifier(NoisyClassifierConfig())
    assert mnist(torch.randn(2, 1, 28, 28), t[:2]).shape == (2, 10)
    assert sum(p.numel() for p in mnist.parameters()) < 500_000
    with pytest.raises(ValueError, match=r"takes \[N, 1, 8, 8\] images, got \[4, 1, 28, 28\]"):
        tiny_classifier()(torch.randn(4, 1, 28, 28), t)


def test_classifier_guidance_is_the_gradient_step(tiny_denoiser):
    clf = tiny_classifier()
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(3, 1, 8, 8, generator=g), torch.tensor([999, 300, 10]), torch.tensor([0, 5, 9])
    with torch.no_grad():
        base = tiny_denoiser(x, t)
        assert torch.equal(ClassifierGuidedDenoiser(tiny_denoiser, clf, 0.0)(x, t, y), base)
        guided = ClassifierGuidedDenoiser(tiny_denoiser, clf, 2.5)(x, t, y)
    # The gradient image by image, each from its own backward pass.
    grads = []
    for i in range(3):
        xi = x[i : i + 1].clone().requires_grad_(True)
        log_p = F.log_softmax(clf(xi, t[i : i + 1]), dim=1)[0, y[i]]
        grads.append(torch.autograd.grad(log_p, xi)[0])
    grad = torch.cat(grads)
    assert grad.abs().max() > 1e-4
    ab = SCHEDULE.alpha_bar[t].float().reshape(-1, 1, 1, 1)
    assert torch.allclose(guided, base - 2.5 * (1 - ab).sqrt() * grad, atol=1e-6)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_classifier_guidance_runs_inside_the_samplers(tiny_denoiser, sampler):
    guided = ClassifierGuidedDenoiser(tiny_denoiser, tiny_classifier(), 5.0)
    y = torch.tensor([0, 3, 7])
    out = generate(guided, 3, 0, (1, 8, 8), sampler=sampler, steps=4, batch_size=3, y=y)
    plain = generate(tiny_denoiser, 3, 0, (1, 8, 8), sampler=sampler, steps=4, batch_size=3)
    assert out.shape == (3, 1, 8, 8) and torch.isfinite(out).all()
    assert (out - plain).abs().max() > 1e-4 and guided.classifier_calls == 4


def test_classifier_guidance_needs_the_same_schedule(tiny_denoiser):
    with pytest.raises(ValueError, match="trained with T = 500 diffusion steps but the denoiser has T = 1000"):
        ClassifierGuidedDenoiser(tiny_denoiser, tiny_classifier(T=500), 1.0)
    clf = NoisyClassifier(NoisyClassifierConfig(image_size=8, base_channels=16, schedule="cosine"))
    with pytest.raises(ValueError, match="trained on the 'cosine' schedule"):
        ClassifierGuidedDenoiser(tiny_denoiser, clf, 1.0)


def test_training_the_noisy_classifier_learns_digits():
    model, info = train_noisy_classifier(steps=40, batch_size=32, dataset="digits", base_channels=16, log_every=10)
    assert not model.training
    losses = [loss for _, loss in info["loss_history"]]
    assert [s for s, _ in info["loss_history"]] == [10, 20, 30, 40] and losses[-1] < losses[0]
    assert list(info["accuracy_by_t"]) == ["0", "250", "500", "750", "999"]
    assert info["accuracy_by_t"]["0"] > 0.3  # chance is 0.1
    assert info["data"] == {"train": "digits:train", "test": "digits:test", "num_train": 1437, "num_test": 360}


# --- checkpoints and the CLI -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Tiny 8x8 checkpoints: a conditional and an unconditional U-Net (2 steps) and a noisy classifier (5 steps)."""
    root = tmp_path_factory.mktemp("guidance")
    assert train_main(TINY + ["--out", str(root / "cond"), "--steps", "2", "--conditional"]) == 0
    assert train_main(TINY + ["--out", str(root / "uncond"), "--steps", "2"]) == 0
    assert guidance.main(["train-classifier", "--out", str(root / "clf"), "--steps", "5", "--dataset", "digits",
                          "--batch-size", "16", "--base-channels", "16"]) == 0
    return root


def test_noisy_classifier_checkpoint_round_trip(ckpts):
    model, card = load_noisy_classifier(ckpts / "clf")
    from helpers.schedules import Schedule

    assert card["kind"] == "noisy-classifier" and card["schedule"] == {
        "name": "linear", "T": 1000, "fingerprint": Schedule.from_name("linear", 1000).fingerprint()}
    assert card["config"]["image_size"] == 8 and card["steps"] == 5
    assert card["command"].startswith("python -m helpers.guidance train-classifier --out")
    saved = ckpt.read_tensors(ckpts / "clf" / ckpt.MODEL)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_missing_and_corrupt_noisy_classifier(ckpts, tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="noisy classifier: checkpoint folder .* does not exist .*"
                                                   "make train-noisy-classifier"):
        load_noisy_classifier(tmp_path / "none")
    with pytest.raises(ckpt.CheckpointError, match="holds a 'ddpm' checkpoint, not a 'noisy-classifier' one"):
        load_noisy_classifier(ckpts / "cond")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ckpt.CARD).write_text((ckpts / "clf" / ckpt.CARD).read_text())
    (bad / ckpt.MODEL).write_bytes(b"\x00" * 10)
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors is corrupt"):
        load_noisy_classifier(bad)


def run(capsys, *args):
    code = sample_main([str(a) for a in args])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("which,args,message", [
    ("uncond", ["--class-label", "3", "--guidance", "2"],
     "guidance needs a conditional model; .*uncond is unconditional"),
    ("uncond", ["--class-label", "3"], "--class-label needs a class-conditional model .*uncond is unconditional"),
    ("cond", ["--class-label", "12"], r"class label 12 is outside the model's classes 0\.\.9"),
    ("cond", ["--class-label", "1,2,3", "--num", "4"], "--class-label has 3 labels for 4 images"),
    ("cond", ["--class-label", "one"], "--class-label must be an integer or a comma-separated list"),
    ("cond", ["--guidance", "2"], "--guidance needs --class-label"),
    ("uncond", ["--classifier-scale", "1"], "--classifier-scale needs --class-label"),
    ("cond", ["--class-label", "1", "--guidance", "2", "--classifier-scale", "1"], "use either --guidance"),
    ("uncond", ["--class-label", "1", "--classifier-scale", "1", "--classifier", "{root}/none"],
     "noisy classifier: checkpoint folder .* does not exist"),
])
def test_sample_cli_errors_are_one_line(ckpts, tmp_path, capsys, which, args, message):
    args = [a.replace("{root}", str(ckpts)) for a in args]
    code, err = run(capsys, "--checkpoint", ckpts / which, "--out", tmp_path / "x", "--steps", "2", *args)
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith("error: ") and re.search(message, err), err


def test_sample_cli_with_cfg(ckpts, tmp_path, capsys):
    out = tmp_path / "cfg"
    code, err = run(capsys, "--checkpoint", ckpts / "cond", "--out", out, "--steps", "3", "--class-label", "0,1,2",
                    "--guidance", "3", "--sampler", "ddim", "--no-ema")
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png", "000002.png"]
    info = json.loads((out / "sampling.json").read_text())
    assert info["class_label"] == [0, 1, 2] and info["guidance"] == 3.0 and info["ema"] is False
    assert info["num"] == 3 and info["nfe"] == 3 and info["classifier_scale"] is None


def test_sample_cli_with_classifier_guidance(ckpts, tmp_path, capsys):
    out = tmp_path / "clf"
    code, err = run(capsys, "--checkpoint", ckpts / "uncond", "--out", out, "--steps", "3", "--num", "2",
                    "--class-label", "7", "--classifier-scale", "2", "--classifier", ckpts / "clf", "--ema")
    assert code == 0, err
    info = json.loads((out / "sampling.json").read_text())
    assert info["class_label"] == [7, 7] and info["classifier_scale"] == 2.0
    assert info["classifier"] == str(ckpts / "clf")
    assert info["guidance"] is None and info["ema"] is True and len(list(out.glob("*.png"))) == 2


def test_shipped_noisy_classifier_matches_its_card():
    # checkpoints/noisy-classifier was made by `make train-noisy-classifier`; its card holds the test accuracy by t
    # that noisy_accuracy measured (fixed noise, seed EVAL_SEED), so re-measuring must give the same numbers (up to
    # 3 of the 10,000 test digits, for float differences between CPU kernels and thread counts).
    from helpers.datasets.images import load_images
    from helpers.samplers.guidance import eval_timesteps, noisy_accuracy
    from helpers.paths import ROOT

    model, card = load_noisy_classifier(ROOT / "checkpoints" / "noisy-classifier")
    test = load_images(card["data"]["test"])
    schedule = Schedule.from_name(card["schedule"]["name"], card["schedule"]["T"])
    timesteps = eval_timesteps(card["schedule"]["T"])
    measured = noisy_accuracy(model, schedule, test.images, test.labels, timesteps)
    assert measured.keys() == card["accuracy_by_t"].keys()
    assert all(measured[t] == pytest.approx(card["accuracy_by_t"][t], abs=3e-4) for t in measured), measured
    assert card["accuracy_by_t"]["0"] > 0.97 and card["accuracy_by_t"]["250"] > 0.9  # it can guide at low noise
