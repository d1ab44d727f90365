"""Measuring guidance and EMA on a class-conditional model: what notebook 04 computes, as short tested functions.

- `evaluate_guided`: draw images for given labels with any denoiser (plain, `CFGDenoiser`, `ClassifierGuidedDenoiser`)
  and score them: FID and KID (Heusel et al. 2017; Binkowski et al. 2018) on a named feature network, class accuracy
  by the evaluation classifier (checkpoints/mnist-cnn), within-class diversity, time and U-Net passes per image.
- `choose_w`, `matched_w`: read a guidance sweep (Ho & Salimans 2021, fig. 1's FID against IS trade-off, here FID
  against class accuracy) and match classifier guidance (Dhariwal & Nichol 2021) to CFG at equal accuracy.
- `ema_decay_curve`, `ema_iterate_weights`: the EMA decay with warm-up of diffusers' `EMAModel` (as used by
  helpers.training.ddpm), and the weight each past iterate carries in the average.
- `snapshot_denoisers`: the raw and EMA weights kept along training (`python -m helpers.train --keep-every K`).

The guidance scale w is diffusers' `guidance_scale` throughout (see helpers.samplers.guidance): w = 0 unconditional,
w = 1 conditional, Ho & Salimans' w' = w - 1.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from helpers import checkpoints as ckpt
from helpers.denoisers import DenoiserWrapper
from helpers.evaluation.metrics import compute_features, reference_features, scores
from helpers.paths import write_atomic

ACCURACY = "class accuracy"
WORST_CLASS = "worst-class accuracy"
DIVERSITY = "within-class spread / real"
SECONDS = "s/image"
PASSES = "U-Net passes per image"


def balanced_labels(num: int, num_classes: int = 10) -> torch.Tensor:
    """[num] labels asking image i for class i % num_classes: balanced classes, and image i asks for the same class
    in every call (so with the same seed it starts from the same x_T and asks for the same digit)."""
    if num < 1 or num_classes < 1:
        raise ValueError(f"num and num_classes must be positive, got {num} and {num_classes}")
    return torch.arange(num) % num_classes


@dataclass
class Reference:
    """The real data that samples are scored against: features [M x D] and labels [M] of a labelled data set."""

    spec: str
    features_name: str
    feats: np.ndarray
    labels: np.ndarray
    spread: float  # within_class_spread(feats, labels)


def reference(spec: str = "mnist:test", features: str = "mnist-cnn", device="cpu") -> Reference:
    """Features (cached, see metrics.reference_features) and labels of `spec`, and their within-class spread."""
    from helpers.datasets.images import load_images

    feats = reference_features(spec, features, device=device)
    labels = load_images(spec).labels.numpy()
    return Reference(spec, features, feats, labels, within_class_spread(feats, labels))


def within_class_spread(feats: np.ndarray, labels) -> float:
    """Diversity within a class: the root mean squared distance of a feature vector [D] to its class mean, averaged
    over the classes present (sqrt of the mean trace of the per-class covariance). Guidance that collapses each class
    onto a few prototypes lowers it; FID mixes this with fidelity, this measures diversity alone."""
    labels = np.asarray(labels)
    spreads = [np.sqrt(((feats[labels == c] - feats[labels == c].mean(0)) ** 2).sum(1).mean())
               for c in np.unique(labels) if (labels == c).sum() > 1]
    if not spreads:
        raise ValueError("within-class spread needs at least two images of some class")
    return float(np.mean(spreads))


def base_network(denoiser: nn.Module) -> nn.Module:
    """The network inside a stack of wrappers (CFGDenoiser / ClassifierGuidedDenoiser -> Denoiser -> net)."""
    while hasattr(denoiser, "denoiser"):
        denoiser = denoiser.denoiser
    return denoiser.net


@contextmanager
def count_passes(denoiser: nn.Module):
    """Count the images the U-Net processes (a CFG call on [2N] rows counts 2N), through a forward pre-hook on the
    base network. Yields a dict whose "rows" grows while the block runs."""
    counter = {"rows": 0}

    def hook(_module, args):
        counter["rows"] += args[0].shape[0]

    handle = base_network(denoiser).register_forward_pre_hook(hook)
    try:
        yield counter
    finally:
        handle.remove()


def class_scores(images: torch.Tensor, labels: torch.Tensor, classifier=None) -> tuple[float, float]:
    """(accuracy, lowest per-class accuracy) of the evaluation classifier (helpers.evaluation.digits, checkpoints/mnist-cnn)
    on [N x 1 x 28 x 28] images in [-1, 1] against the labels [N] they were asked for."""
    from helpers.evaluation.digits import load_classifier, predict

    model = classifier if classifier is not None else load_classifier()
    correct = (predict(model, images).argmax(1) == labels.cpu()).double()
    per_class = [float(correct[labels.cpu() == c].mean()) for c in torch.unique(labels.cpu())]
    return float(correct.mean()), min(per_class)


@torch.no_grad()
def noisy_classifier_accuracy(classifier, images: torch.Tensor, labels: torch.Tensor, t: int = 0) -> float:
    """The share of [N x C x H x W] images that a NoisyClassifier, read at timestep t (default 0: clean images),
    assigns to their labels [N]. Against the evaluation classifier's accuracy it shows whether guidance by this
    classifier's gradient convinced only the classifier (an adversarial direction) or changed the digit."""
    device = next(classifier.parameters()).device
    logits = classifier(images.to(device), torch.full((len(images),), t, dtype=torch.long, device=device))
    return float((logits.argmax(1).cpu() == labels.cpu()).double().mean())


def evaluate_guided(denoiser: nn.Module, labels: torch.Tensor, seed: int, ref: Reference, sampler: str = "ddim",
                    steps: int = 50, shape=None, batch_size: int = 250, classifier=None,
                    device="cpu") -> tuple[dict, torch.Tensor]:
    """Draw len(labels) images, image i for labels[i] from the x_T of (seed, i) (samplers.generate), and score them.
    Returns (row, images [N x C x H x W]); the row holds FID and KID labelled with the feature network and N
    (metrics.label), "KID std", class accuracy and the worst class's accuracy (evaluation classifier), the
    within-class feature spread relative to the real data's, seconds and U-Net passes per image."""
    from helpers.samplers import generate

    num = len(labels)
    with count_passes(denoiser) as passes:
        start = time.perf_counter()
        images = generate(denoiser, num, seed, shape, sampler=sampler, steps=steps, batch_size=batch_size,
                          device=device, y=labels)
        seconds = time.perf_counter() - start
    feats = compute_features(images, ref.features_name, device=device)
    s = scores(feats, ref.feats, ref.features_name, seed=seed)
    accuracy, worst = class_scores(images, labels, classifier)
    row = {**s.row(), ACCURACY: accuracy, WORST_CLASS: worst,
           DIVERSITY: within_class_spread(feats, labels.numpy()) / ref.spread,
           SECONDS: seconds / num, PASSES: passes["rows"] / num}
    return row, images


class RunCache(dict):
    """{key: (row, images)} of evaluate_guided, kept in a file after every new key, so that an interrupted long run
    (notebook 04's full mode takes about three hours on one thread) continues where it stopped. The file records
    `stamp` (the checkpoints' training steps, N, seed, sampler, steps, ...); a file made under another stamp is not
    reused: it is set aside as FILE.stale and the run starts empty, saying so. path None: nothing is kept."""

    def __init__(self, path: str | Path | None, stamp: dict):
        super().__init__()
        self.path, self.stamp, self.loaded = (Path(path) if path else None), dict(stamp), 0
        if self.path is not None and self.path.exists():
            saved = torch.load(self.path, weights_only=False)
            if saved.get("stamp") == self.stamp:
                self.update(saved["runs"])
                self.loaded = len(saved["runs"])
            else:
                self.path.replace(self.path.with_name(self.path.name + ".stale"))
                print(f"{self.path} was made under {saved.get('stamp')}, not {self.stamp}: set aside as "
                      f"{self.path.name}.stale; drawing every configuration again")

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if self.path is not None:
            write_atomic(self.path, lambda tmp: torch.save({"stamp": self.stamp, "runs": dict(self)}, tmp))


def fid_column(row_or_columns) -> str:
    """The name of the FID column (metrics.label's 'FID (..., N=...)') in a row or a DataFrame's columns."""
    names = [c for c in row_or_columns if str(c).startswith("FID (")]
    if len(names) != 1:
        raise ValueError(f"expected one FID column, found {names}")
    return names[0]


def choose_w(table, min_accuracy: float = 0.95) -> tuple[float, str]:
    """The guidance scale to use, from a sweep table with columns "w", ACCURACY and one FID column: the w with the
    lowest FID among those whose class accuracy reaches `min_accuracy` (the smallest such w if FIDs tie); if none
    reaches it, the w with the highest accuracy. Returns (w, the reason in words)."""
    fid = fid_column(table.columns)
    ok = table[table[ACCURACY] >= min_accuracy]
    if len(ok):
        best = ok.sort_values([fid, "w"]).iloc[0]
        return float(best["w"]), (f"lowest {fid} ({best[fid]:.2f}) among the {len(ok)} scales with class accuracy >= "
                                  f"{min_accuracy:.0%} (w = {', '.join(f'{v:g}' for v in ok['w'])})")
    best = table.sort_values([ACCURACY, "w"], ascending=[False, True]).iloc[0]
    return float(best["w"]), (f"no scale reaches {min_accuracy:.0%}; the highest class accuracy is "
                              f"{best[ACCURACY]:.1%}")


def matched_w(ws, accuracies, target: float) -> float | None:
    """The CFG scale whose class accuracy equals `target`, by linear interpolation along the sweep (ws ascending
    after sorting): the first segment [w_i, w_i+1] whose accuracies bracket the target. None if no segment does."""
    order = np.argsort(ws)
    w, a = np.asarray(ws, float)[order], np.asarray(accuracies, float)[order]
    for i in range(len(w) - 1):
        lo, hi = sorted((a[i], a[i + 1]))
        if lo <= target <= hi:
            if a[i + 1] == a[i]:
                return float(w[i])
            return float(w[i] + (target - a[i]) * (w[i + 1] - w[i]) / (a[i + 1] - a[i]))
    return None


def match_accuracy(evaluate, target: float, ws, accuracies, tol: float = 0.01, max_evaluations: int = 4):
    """The CFG scale whose measured class accuracy is within `tol` of `target`: start from the interpolation along
    the sweep (matched_w), measure (`evaluate(w)` -> accuracy), add the point and interpolate again, at most
    `max_evaluations` times. Returns (w, accuracy, [(w, accuracy) tried]); w is None if the sweep does not bracket
    the target, and the last try is returned if none came within tol (the caller reports the gap)."""
    ws, accuracies, tried = list(map(float, ws)), list(map(float, accuracies)), []
    for _ in range(max_evaluations):
        w = matched_w(ws, accuracies, target)
        if w is None:
            return None, None, tried
        w = round(w, 3)
        if any(w == v for v, _ in tried):
            break
        acc = float(evaluate(w))
        tried.append((w, acc))
        if abs(acc - target) <= tol:
            return w, acc, tried
        ws.append(w); accuracies.append(acc)
    w, acc = min(tried, key=lambda p: abs(p[1] - target))
    return w, acc, tried


def ema_decay_curve(steps, power: float = 0.75, cap: float = 0.9999, inv_gamma: float = 1.0) -> np.ndarray:
    """The decay used by the k-th EMA update (k = optimisation step, 1-based; the update after k optimiser steps),
    as in diffusers' EMAModel.get_decay with use_ema_warmup=True (@crowsonkb's warm-up):

        decay_k = min(cap, 1 - (1 + (k - 1) / inv_gamma)^-power),  decay_1 = 0

    so the first update copies the weights and, with inv_gamma = 1, decay_k = 1 - k^-power until the cap."""
    k = np.asarray(steps, dtype=np.float64)
    decay = np.minimum(cap, 1 - (1 + (k - 1) / inv_gamma) ** -power)
    return np.where(k <= 1, 0.0, np.maximum(decay, 0.0))


def ema_iterate_weights(k: int, power: float = 0.75, cap: float = 0.9999) -> np.ndarray:
    """The weight of the raw weights after step j (j = 1..k) in the EMA after step k: the EMA is
    theta_ema_k = sum_j (1 - d_j) prod_{i>j} d_i theta_j with d = ema_decay_curve; [k] weights summing to 1
    (d_1 = 0, so the starting weights carry none)."""
    d = ema_decay_curve(np.arange(1, k + 1), power, cap)
    later = np.concatenate([np.cumprod(d[::-1])[::-1][1:], [1.0]])  # prod_{i>j} d_i
    return (1 - d) * later


def snapshot_denoisers(folder, device="cpu") -> list[tuple[int, nn.Module, nn.Module]]:
    """[(step, raw Denoiser, EMA Denoiser)] for every snapshot of a checkpoint folder, by step."""
    from helpers.denoisers import from_snapshot

    return [(s, from_snapshot(folder, s, False, device), from_snapshot(folder, s, True, device))
            for s in ckpt.snapshot_steps(folder)]


class UnbatchedCFGDenoiser(DenoiserWrapper):
    """CFG computed with two separate network calls per step (conditional, then null label) instead of one call on
    the doubled batch: the same eps_u + w (eps_c - eps_u) as CFGDenoiser, to measure what batching saves."""

    def __init__(self, cfg_denoiser):
        super().__init__()
        self.cfg = cfg_denoiser
        self.denoiser = cfg_denoiser.denoiser

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps_c = self.denoiser(x, t, y)
        eps_u = self.denoiser(x, t, torch.full_like(y, self.cfg.num_classes))
        return eps_u + self.cfg.w * (eps_c - eps_u)


def sampling_cost(denoisers: dict, labels: torch.Tensor, seed: int, sampler: str = "ddim", steps: int = 50,
                  shape=None, device="cpu") -> list[dict]:
    """Time one call of samplers.generate on all of `labels` at once (batch = N) for each named denoiser, through
    cost.measure (after one warm-up step on 2 images); one row per name with s/image, network calls, U-Net
    passes per image and noisy-classifier calls (classifier guidance)."""
    from helpers.evaluation.cost import measure
    from helpers.samplers import generate

    rows = []
    for name, d in denoisers.items():
        generate(d, 2, seed, shape, sampler=sampler, steps=1, device=device, y=labels[:2])  # warm-up
        clf_before = getattr(d, "classifier_calls", 0)
        with count_passes(d) as passes:
            m = measure(lambda: generate(d, len(labels), seed, shape, sampler=sampler, steps=steps,  # noqa: B023
                                         batch_size=len(labels), device=device, y=labels), d, len(labels), device)
        rows.append({"method": name, SECONDS: m["s/image"], "network calls": m["NFE (calls)"],
                     PASSES: passes["rows"] / len(labels),
                     "classifier calls (forward + backward)": getattr(d, "classifier_calls", 0) - clf_before})
    return rows
