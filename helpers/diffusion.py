"""The forward process q(x_t | x_0), the posterior q(x_{t-1} | x_t, x_0), conversions between the network's
possible targets (eps, x0, v), and the training losses. Equations are from Ho et al. (2020) unless noted.

Shapes: x0, x_t, eps are [N x C x H x W] (any trailing dims work); t is an [N] tensor of integer timesteps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .schedules import Schedule, gather

LOSSES = ("l2", "l1", "huber")
PREDICTIONS = ("eps", "v", "x0")
WEIGHTINGS = ("none", "min-snr-5", "vlb")


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, eq. (4) reparameterised."""
    ab = gather(schedule.alpha_bar, t, x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def q_posterior_mean_variance(schedule: Schedule, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor):
    """Mean mu_tilde_t(x_t, x_0) and variance beta_tilde_t of q(x_{t-1} | x_t, x_0), eqs. (6)-(7)."""
    mean = gather(schedule.posterior_mean_coef1, t, x_t) * x0 + gather(schedule.posterior_mean_coef2, t, x_t) * x_t
    return mean, gather(schedule.posterior_variance, t, x_t)


def x0_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), eq. (4) solved for x_0 (eq. 15)."""
    ab = gather(schedule.alpha_bar, t, x_t)
    return (x_t - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_from_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    ab = gather(schedule.alpha_bar, t, x_t)
    return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()


def v_target(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho 2022, sec. 4)."""
    ab = gather(schedule.alpha_bar, t, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def eps_from_v(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """eps = sqrt(1 - alpha_bar_t) x_t + sqrt(alpha_bar_t) v."""
    ab = gather(schedule.alpha_bar, t, x_t)
    return (1 - ab).sqrt() * x_t + ab.sqrt() * v


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


def p_mean_from_eps(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t), Ho et al. eq. (11): the mean of
    Algorithm 2's update. Equal to mu_tilde(x_t, x0_hat) with x0_hat from eps (eq. 15), before any clipping."""
    beta, ab = gather(schedule.betas, t, x_t), gather(schedule.alpha_bar, t, x_t)
    return (x_t - beta / (1 - ab).sqrt() * eps) / (1 - beta).sqrt()


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
