"""The training objectives: the network's target (eps, v or x0), the elementwise losses (L2, L1, Huber), the weighting
over timesteps, and the per-sample DDPM loss of Ho et al. (2020) Algorithm 1 built from them.

Shapes: x0, eps are [N x C x ...]; t is an [N] tensor of integer timesteps; losses are per sample, [N].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from helpers.diffusion import q_sample, v_target
from helpers.schedules import Schedule

LOSSES = ("l2", "l1", "huber")
PREDICTIONS = ("eps", "v", "x0")
WEIGHTINGS = ("none", "min-snr-5", "vlb")


def elementwise_loss(pred: torch.Tensor, target: torch.Tensor, loss: str, huber_delta: float = 1.0) -> torch.Tensor:
    if loss == "l2":
        return F.mse_loss(pred, target, reduction="none")
    if loss == "l1":
        return F.l1_loss(pred, target, reduction="none")
    if loss == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=huber_delta)
    raise ValueError(f"unknown loss {loss!r}; known losses: {', '.join(LOSSES)}")


def training_target(schedule: Schedule, x0, t, eps, prediction: str) -> torch.Tensor:
    if prediction == "eps":
        return eps
    if prediction == "v":
        return v_target(schedule, x0, t, eps)
    if prediction == "x0":
        return x0
    raise ValueError(f"unknown prediction type {prediction!r}; known types: {', '.join(PREDICTIONS)}")


def loss_weight(schedule: Schedule, t: torch.Tensor, weighting: str, prediction: str) -> torch.Tensor:
    """Per-sample weight of the loss. "none" is Ho et al.'s simplified objective (eq. 14);
    "min-snr-5" is Hang et al. (2023): min(SNR_t, 5) / SNR_t for eps, min(SNR_t, 5) / (SNR_t + 1) for v;
    "vlb" is the weight of the variational bound's term L_{t-1} for eps prediction, Ho et al. eq. (12) with
    sigma_t^2 = beta_t: beta_t / (2 alpha_t (1 - alpha_bar_t)), rescaled to mean 1 over t so that the learning rate
    means the same as for the simplified objective."""
    if weighting == "none":
        return torch.ones(t.shape, dtype=torch.float32, device=t.device)
    if weighting == "vlb":
        if prediction != "eps":
            raise ValueError(f"the vlb weighting is defined for eps prediction, not {prediction!r}")
        lam = schedule.betas / (2 * schedule.alphas * (1 - schedule.alpha_bar))
        return (lam / lam.mean()).to(t.device)[t].float()
    if weighting == "min-snr-5":
        snr = schedule.snr.to(t.device)[t]
        denom = {"eps": snr, "v": snr + 1, "x0": torch.ones_like(snr)}[prediction]
        return (snr.clamp(max=5.0) / denom).float()
    raise ValueError(f"unknown loss weighting {weighting!r}; known: {', '.join(WEIGHTINGS)}")


def diffusion_loss(model, schedule: Schedule, x0, t, eps, y=None, loss="l2", prediction="eps", weighting="none"):
    """Per-sample training loss ([N]) of Ho et al. Algorithm 1: the network sees x_t = q_sample(x0, t, eps) and
    regresses the target of `prediction` under the elementwise `loss`, averaged over pixels."""
    x_t = q_sample(schedule, x0, t, eps)
    out = model(x_t, t) if y is None else model(x_t, t, y)
    target = training_target(schedule, x0, t, eps, prediction)
    per_sample = elementwise_loss(out.float(), target, loss).flatten(1).mean(1)
    return per_sample * loss_weight(schedule, t, weighting, prediction)


@torch.no_grad()
def loss_per_timestep(model, schedule: Schedule, x0: torch.Tensor, timesteps, generator: torch.Generator,
                      loss: str = "l2") -> list[float]:
    """The mean per-pixel training loss of `model` on the images x0 at each given timestep (same eps for all t)."""
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    out = []
    for t in timesteps:
        tt = torch.full((x0.shape[0],), int(t), device=x0.device, dtype=torch.long)
        out.append(float(diffusion_loss(model, schedule, x0, tt, eps, loss=loss).mean()))
    return out


def step_weights(alpha_bar: torch.Tensor, student_grid: torch.Tensor, prediction: str) -> torch.Tensor:
    """Progressive distillation's "step" weighting (helpers.training.distill): for each step i of the student's grid (t -> s), the weight on the squared error of the
    network's output that makes the loss the squared error of the step's z_s: (c_i d_i)^2 with c = alpha_s - (sigma_s /
    sigma_t) alpha_t (z_s's change per unit of x_hat) and d = dx_hat / d(output) (sigma_t for v, sigma_t / alpha_t for
    eps), divided by its mean over the grid. Returns [N] weights (float64)."""
    if prediction not in ("v", "eps"):
        raise ValueError(f"prediction must be one of ('v', 'eps'), got {prediction!r}")
    ab = alpha_bar.double()
    at = lambda u: torch.where(u >= 0, ab[u.clamp(min=0)], torch.ones((), dtype=torch.float64))
    ab_t, ab_s = at(student_grid[:-1]), at(student_grid[1:])
    sigma_t = (1 - ab_t).sqrt()
    c = ab_s.sqrt() - (1 - ab_s).sqrt() / sigma_t * ab_t.sqrt()
    d = sigma_t if prediction == "v" else sigma_t / ab_t.sqrt()
    w = (c * d) ** 2
    return w / w.mean()
