"""Guidance: steer a diffusion model towards a class label y, with or without a classifier.

The guidance scale w follows one convention everywhere in this workbook, diffusers' `guidance_scale`:

    eps_guided = eps_u + w (eps_c - eps_u)        eps_c = eps_theta(x_t, t, y), eps_u = eps_theta(x_t, t, null)

so w = 0 is the unconditional model, w = 1 the plain conditional model and w > 1 guided. Ho & Salimans (2021) write
(1 + w') eps_c - w' eps_u, so their w' = w - 1 (their w' = 0.3 is our w = 1.3).

- `CFGDenoiser`: classifier-free guidance (Ho & Salimans 2021) on a conditional model with a null label; one
  batched network call [2N] per step.
- `NoisyClassifier`: a classifier of noisy images x_t, p_phi(y | x_t, t) (Dhariwal & Nichol 2021, sec. 4), trained
  by `train_noisy_classifier` or `python -m helpers.guidance train-classifier` (`make train-noisy-classifier`):

    python -m helpers.guidance train-classifier --out checkpoints/noisy-classifier --steps 1500 --seed 0

- `ClassifierGuidedDenoiser`: classifier guidance, eps_hat - s sqrt(1 - alpha_bar_t) grad_x log p_phi(y | x_t)
  (Dhariwal & Nichol 2021, Algorithm 2).

Both wrappers are denoisers (`denoiser(x_t, t, y) -> eps_hat`, `alpha_bar`, `nfe`), so every sampler runs them through
`samplers.generate(..., y=labels)`.
"""
from __future__ import annotations

import math
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from helpers import checkpoints as ckpt
from helpers.checks import positive_int
from helpers.cli import ArgumentParser, check_new_checkpoint, training_options
from helpers.datasets.images import load_images, parse_spec
from helpers.denoisers import DenoiserWrapper, base_net, check_labels, model_num_classes, text_conditioned
from helpers.diffusion import q_sample
from helpers.models.classifier import NoisyClassifier, NoisyClassifierConfig
from helpers.paths import checkpoints_dir
from helpers.schedules import SCHEDULES, Schedule, gather

KIND = "noisy-classifier"
EVAL_FRACTIONS = (0.0, 0.25, 0.5, 0.75, 1.0)  # timesteps t = min(int(f T), T - 1): 0, 250, 500, 750, 999 for T = 1000
EVAL_SEED = 1234  # the noise of the test accuracy, the same for every run


def default_classifier_path() -> Path:
    return checkpoints_dir() / "noisy-classifier"


class CFGDenoiser(DenoiserWrapper):
    """Classifier-free guidance, Ho & Salimans (2021) eq. (6) in diffusers' convention:
    eps_u + w (eps_c - eps_u), with eps_u the prediction for the null label `num_classes`.

    w = 1 is one plain conditional call, w = 0 one call with the null label; otherwise one batched call on
    [x, x] ([2N x C x H x W]) with labels [y, null] (so `nfe` counts one call per step, of twice the batch).
    A text-conditioned model takes token ids [N, L] as y, and the empty caption as its null condition."""

    def __init__(self, denoiser: nn.Module, w: float, num_classes: int | None = None, source: str = "this model"):
        super().__init__()
        self.text = text_conditioned(denoiser)
        num_classes = num_classes if num_classes is not None else model_num_classes(denoiser)
        if num_classes is None and not self.text:
            raise ValueError(f"guidance needs a conditional model; {source} is unconditional")
        if not math.isfinite(float(w)):
            raise ValueError(f"the guidance scale w must be a finite number, got {w}")
        self.denoiser, self.w = denoiser, float(w)
        self.num_classes = None if num_classes is None else int(num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("classifier-free guidance needs class labels y (an [N] LongTensor) or, for a "
                             "text-conditioned model, captions (token ids [N, L]); got None")
        if self.text:
            if y.ndim != 2 or y.shape[0] != x.shape[0]:
                raise ValueError(f"got captions of shape {list(y.shape)} for {x.shape[0]} images; give token ids [N, L]")
            null = base_net(self.denoiser).null_condition(y)
        else:
            check_labels(y, self.num_classes)
            if y.shape != (x.shape[0],):
                raise ValueError(f"got labels of shape {list(y.shape)} for {x.shape[0]} images; give one label per image")
            null = torch.full_like(y, self.num_classes)
        if self.w == 1:
            return self.denoiser(x, t, y)
        if self.w == 0:
            return self.denoiser(x, t, null)
        eps_c, eps_u = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return eps_u + self.w * (eps_c - eps_u)


def eval_timesteps(T: int) -> list[int]:
    return [min(int(f * T), T - 1) for f in EVAL_FRACTIONS]


@torch.no_grad()
def noisy_accuracy(model: NoisyClassifier, schedule: Schedule, images: torch.Tensor, labels: torch.Tensor,
                   timesteps, batch_size: int = 500) -> dict[str, float]:
    """Test accuracy of p_phi(y | x_t, t) at each timestep, on x_t = q_sample(x_0, t, eps) with one fixed eps
    (seed EVAL_SEED) shared by all timesteps."""
    model.eval()
    eps = torch.randn(images.shape, generator=torch.Generator().manual_seed(EVAL_SEED))
    out = {}
    for t in timesteps:
        correct = 0
        for i in range(0, len(images), batch_size):
            x0, e = images[i : i + batch_size], eps[i : i + batch_size]
            tt = torch.full((len(x0),), t, dtype=torch.long)
            correct += int((model(q_sample(schedule, x0, tt, e), tt).argmax(1) == labels[i : i + batch_size]).sum())
        out[str(t)] = round(correct / len(images), 4)
    return out


def train_noisy_classifier(schedule_name: str = "linear", T: int = 1000, steps: int = 1500, batch_size: int = 128,
                           lr: float = 1e-3, seed: int = 0, dataset: str = "mnist:train", test: str | None = None,
                           base_channels: int = 32, log_every: int = 50) -> tuple[NoisyClassifier, dict]:
    """Adam on cross-entropy of p_phi(y | x_t, t) with t ~ U{0, ..., T-1} and x_t = q_sample(x_0, t, eps)
    (Dhariwal & Nichol 2021, sec. 4). `test` defaults to the test split of `dataset`. Returns the model (in eval
    mode) and {"accuracy_by_t": {"0": ..., "250": ..., ...}, "steps", "wall_time_s", "loss_history", ...}."""
    name, split = parse_spec(dataset)
    train_spec, test_spec = f"{name}:{split}", test or f"{name}:test"
    data, test_data = load_images(train_spec), load_images(test_spec)
    if data.labels is None:
        raise ValueError(f"a classifier needs labels, but {train_spec} has none")
    schedule = Schedule.from_name(schedule_name, T)
    c, h, _ = data.shape
    torch.manual_seed(seed)
    model = NoisyClassifier(NoisyClassifierConfig(c, h, base_channels, data.num_classes, T, schedule_name))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses, window, start = [], [], time.time()
    model.train()
    for step in range(1, steps + 1):
        # 1. A batch of x_0, y and a random timestep per image.
        idx = torch.randint(len(data), (batch_size,), generator=g)
        x0, y = data.images[idx], data.labels[idx]
        t = torch.randint(T, (batch_size,), generator=g)
        # 2. Noise it: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.
        x_t = q_sample(schedule, x0, t, torch.randn(x0.shape, generator=g))
        # 3. Cross-entropy of p_phi(y | x_t, t).
        loss = F.cross_entropy(model(x_t, t), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        window.append(loss.item())
        if step % log_every == 0 or step == steps:
            losses.append([step, round(sum(window) / len(window), 4)])
            window = []
    train_time = time.time() - start
    accuracy = noisy_accuracy(model, schedule, test_data.images, test_data.labels, eval_timesteps(T))
    info = {
        "accuracy_by_t": accuracy, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
        "data": {"train": train_spec, "test": test_spec, "num_train": len(data), "num_test": len(test_data)},
        "loss_history": losses, "final_loss": losses[-1][1] if losses else None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_time_s": round(train_time, 1), "wall_time_s": round(time.time() - start, 1),
    }
    return model.eval(), info


def save_noisy_classifier(model: NoisyClassifier, info: dict, folder: str | Path, command: str = "") -> dict:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    card = {"kind": KIND, "config": asdict(cfg), "schedule": {"name": cfg.schedule, "T": cfg.T,
                                                                "fingerprint": Schedule.from_name(cfg.schedule, cfg.T).fingerprint()}, **info,
            "command": command}
    ckpt.save_tensors(model.state_dict(), folder / ckpt.MODEL)
    ckpt.save_json(card, folder / ckpt.CARD)
    return card


def load_noisy_classifier(folder: str | Path | None = None, device="cpu") -> tuple[NoisyClassifier, dict]:
    """The NoisyClassifier of a checkpoint folder (default checkpoints/noisy-classifier) in eval mode, and its card.
    Missing or corrupt files raise CheckpointError."""
    folder = Path(folder) if folder is not None else default_classifier_path()
    try:
        card = ckpt.read_card(folder)
    except ckpt.CheckpointError as err:
        raise ckpt.CheckpointError(f"noisy classifier: {err} (train one with `make train-noisy-classifier`)") from err
    if card.get("kind") != KIND:
        raise ckpt.CheckpointError(f"{folder} holds a {card.get('kind')!r} checkpoint, not a {KIND!r} one")
    return ckpt.load_model(folder, device=device)


class ClassifierGuidedDenoiser(DenoiserWrapper):
    """Classifier guidance, Dhariwal & Nichol (2021) Algorithm 2 (their eq. 14):

        eps_guided = eps_theta(x_t) - s sqrt(1 - alpha_bar_t) grad_x log p_phi(y | x_t, t)

    For DDIM this is their Algorithm 2 exactly. For the DDPM sampler the posterior mean
    (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) moves by s beta_t / sqrt(alpha_t) grad, close to their
    Algorithm 1 (mean + s Sigma grad) with Sigma = beta_t (1 / sqrt(alpha_t) <= 1.01 for the linear schedule) rather
    than the sampler's beta_tilde_t; the two differ only at small t, where beta_tilde_t < beta_t. (With clip_x0 the
    clipping of x0_hat can cut the shift.)

    The base is called with y = None: an unconditional model, or a conditional one of ours with its null label.
    The gradient is taken under torch.enable_grad(), so it works inside the samplers' torch.no_grad()."""

    def __init__(self, denoiser: nn.Module, classifier: NoisyClassifier, scale: float):
        super().__init__()
        cfg, ab = classifier.config, denoiser.alpha_bar
        if cfg.T != ab.shape[0]:
            raise ValueError(f"the classifier was trained with T = {cfg.T} diffusion steps but the denoiser has "
                             f"T = {ab.shape[0]}")
        ref = Schedule.from_name(cfg.schedule, cfg.T).alpha_bar
        if not torch.allclose(ref, ab.detach().cpu().double(), rtol=1e-5, atol=1e-8):
            raise ValueError(f"the classifier was trained on the {cfg.schedule!r} schedule, whose alpha_bar differs "
                             "from the denoiser's")
        if not math.isfinite(float(scale)):
            raise ValueError(f"the classifier guidance scale must be a finite number, got {scale}")
        self.denoiser, self.classifier, self.scale = denoiser, classifier, float(scale)
        self.classifier_calls = 0

    def classifier_grad(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """grad_x log p_phi(y | x_t, t), [N x C x H x W] (the log-probabilities are summed over the batch, whose
        images are independent)."""
        self.classifier_calls += 1
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_probs = F.log_softmax(self.classifier(x_in, t), dim=-1)  # (N, num_classes)
            selected = log_probs[torch.arange(len(y), device=y.device), y].sum()
            return torch.autograd.grad(selected, x_in)[0]

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is None:
            raise ValueError("classifier guidance needs class labels y (an [N] LongTensor); got None")
        check_labels(y, self.classifier.config.num_classes, "the classifier's")
        if y.shape != (x.shape[0],):
            raise ValueError(f"got labels of shape {list(y.shape)} for {x.shape[0]} images; give one label per image")
        # 1. The unconditional prediction.
        eps_hat = self.denoiser(x, t, None)
        if self.scale == 0:
            return eps_hat
        # 2. Shift it along the classifier's gradient, Algorithm 2.
        ab = gather(self.alpha_bar, t, x)
        return eps_hat - self.scale * (1 - ab).sqrt() * self.classifier_grad(x, t, y)


def guided_denoiser(checkpoint, guidance: float | None = None, classifier_scale: float | None = None,
                    classifier: str | Path | None = None, ema: bool = True, device="cpu") -> tuple[nn.Module, dict]:
    """The denoiser of `checkpoint` (see denoisers.load_denoiser), wrapped in CFGDenoiser(w = guidance) or
    ClassifierGuidedDenoiser(scale = classifier_scale, the NoisyClassifier in `classifier`, default
    checkpoints/noisy-classifier); not both. Returns it and load_denoiser's info plus "num_classes" (the labels
    it accepts, None if it takes none), "label_owner", "guidance", "classifier_scale" and "classifier"."""
    from helpers.denoisers import load_denoiser

    if guidance is not None and classifier_scale is not None:
        raise ValueError("use either classifier-free guidance or classifier guidance, not both")
    denoiser, info = load_denoiser(str(checkpoint), ema=ema, device=device)
    num_classes, owner, clf_path = model_num_classes(denoiser), "the model's", None
    if guidance is not None:
        denoiser = CFGDenoiser(denoiser, guidance, source=str(checkpoint))
    if classifier_scale is not None:
        clf, card = load_noisy_classifier(classifier, device=device)
        cfg = card["config"]
        clf_shape = (cfg["in_channels"], cfg["image_size"], cfg["image_size"])
        if tuple(info["shape"]) != clf_shape:
            raise ValueError(f"the noisy classifier takes {'x'.join(map(str, clf_shape))} images but "
                             f"{checkpoint} makes {'x'.join(map(str, info['shape']))} ones")
        denoiser = ClassifierGuidedDenoiser(denoiser, clf, classifier_scale)
        num_classes, owner = cfg["num_classes"], "the classifier's"
        clf_path = str(classifier if classifier is not None else default_classifier_path())
    return denoiser, {**info, "num_classes": num_classes, "label_owner": owner, "guidance": guidance,
                      "classifier_scale": classifier_scale, "classifier": clf_path}


def class_accuracy(images: torch.Tensor, labels: torch.Tensor, classifier=None) -> float:
    """The fraction of [N x 1 x 28 x 28] images in [-1, 1] that the evaluation classifier (checkpoints/mnist-cnn,
    helpers.evaluation.digits) assigns to their requested label ([N])."""
    from helpers.evaluation.digits import load_classifier, predict

    model = classifier if classifier is not None else load_classifier()
    probs = predict(model, images)
    return float((probs.argmax(1) == labels.cpu()).double().mean())


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.guidance", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    tc = sub.add_parser("train-classifier", help="train a noise-aware classifier for classifier guidance")
    training_options(tc, out_default=default_classifier_path(), steps=1500, batch_size=128, lr=1e-3)
    tc.add_argument("--schedule", choices=SCHEDULES, default="linear")
    tc.add_argument("--T", type=positive_int, default=1000, help="diffusion steps (must match the models it guides)")
    tc.add_argument("--dataset", default="mnist", help="mnist or digits (train split; tested on the test split)")
    tc.add_argument("--base-channels", type=positive_int, default=32)
    args = p.parse_args(argv)
    from helpers.datasets.images import DataUnavailableError

    try:
        check_new_checkpoint(args.out, args.overwrite)
        model, info = train_noisy_classifier(args.schedule, args.T, args.steps, args.batch_size, args.lr, args.seed,
                                             args.dataset, base_channels=args.base_channels)
    except (ValueError, OSError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "python -m helpers.guidance " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    save_noisy_classifier(model, info, args.out, command)
    acc = ", ".join(f"t={t}: {a:.3f}" for t, a in info["accuracy_by_t"].items())
    print(f"{args.steps} steps in {info['wall_time_s']:.0f} s; test accuracy {acc} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
