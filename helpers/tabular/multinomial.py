"""The diffusion of a table (Kotelnikov et al. 2023): Gaussian diffusion on the numerical block and multinomial
diffusion (Hoogeboom et al. 2021) on each categorical column, their training loss and their ancestral sampler.
See helpers.tabular for the notation.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor

from helpers.diffusion import q_posterior_mean_variance, q_sample, respace, x0_from_eps
from helpers.models.mlp import MLPConfig
from helpers.samplers import image_generators, initial_noise
from helpers.schedules import Schedule, get_timesteps


def log_onehot(codes: torch.Tensor, K: int) -> torch.Tensor:
    """log of the one-hot [N x K] rows of integer codes ([N]), with log 0 written as log 1e-30 (as TabDDPM)."""
    return F.one_hot(codes, K).float().clamp(min=1e-30).log()


def log_mix_uniform(log_x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """log(a x + (1 - a) / K) for rows of probabilities x given in log space ([N x K]) and a float64 [N] in [0, 1].
    log a and log(1 - a) are taken in float64 before the cast: 1 - a in float32 would lose most digits of a small
    beta."""
    K = log_x.shape[-1]
    a = a.to(device=log_x.device, dtype=torch.float64).clamp(0.0, 1.0)[:, None]
    return torch.logaddexp(a.log().to(log_x.dtype) + log_x, ((1 - a).log() - math.log(K)).to(log_x.dtype))


def q_cat_log_probs(schedule: Schedule, log_x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """log q(x_t | x_0) = log(alpha_bar_t x_0 + (1 - alpha_bar_t) / K) (Hoogeboom et al. 2021, sec. 4), [N x K]."""
    return log_mix_uniform(log_x0, schedule.alpha_bar.to(t.device)[t])


def q_cat_posterior_log_probs(schedule: Schedule, log_x0: torch.Tensor, log_x_t: torch.Tensor, t: torch.Tensor):
    """log q(x_{t-1} | x_t, x_0) = log theta_post - log sum_k theta_post, theta_post = [alpha_t x_t + (1 - alpha_t)/K]
    * [alpha_bar_{t-1} x_0 + (1 - alpha_bar_{t-1})/K] (Hoogeboom et al. 2021, sec. 4). With x0_hat (a probability row)
    in place of x_0 this is the model's p(x_{t-1} | x_t). All [N x K], log space."""
    from_x_t = log_mix_uniform(log_x_t, schedule.alphas.to(t.device)[t])
    from_x0 = log_mix_uniform(log_x0, schedule.alpha_bar_prev.to(t.device)[t])
    log_theta = from_x_t + from_x0
    return log_theta - torch.logsumexp(log_theta, dim=-1, keepdim=True)


def gumbel_argmax(log_p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """A draw from Cat(exp(log_p)) per row by the Gumbel-max trick, from uniforms u of the same shape; [N] codes."""
    return (log_p - torch.log(-torch.log(u.clamp(1e-30, 1.0 - 1e-7)))).argmax(-1)


def multinomial_kl(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(q || p) = sum_k q_k (log q_k - log p_k) per row ([N x K] -> [N])."""
    return (log_q.exp() * (log_q - log_p)).sum(-1)


def split_blocks(x: torch.Tensor, sizes) -> list[torch.Tensor]:
    """The per-column blocks of the categorical part [N x sum K_j] -> [N x K_j] each."""
    return list(torch.split(x, list(sizes), dim=1)) if len(sizes) else []


def rand_rows(generator, shape, device="cpu") -> torch.Tensor:
    """Uniforms in [0, 1) of `shape`; with a list of generators row i comes from generators[i] (as randn_tensor)."""
    if isinstance(generator, list):
        return torch.stack([torch.rand(shape[1:], generator=g, device=device) for g in generator])
    return torch.rand(shape, generator=generator, device=device)


def tabular_loss(model, schedule: Schedule, x_num, x_cat, t, eps, u) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row losses of TabDDPM (Kotelnikov et al. 2023, sec. 3), L = L_simple + sum_j L_j / C:
    - L_simple = |eps - eps_hat|^2 averaged over the D numerical columns (Ho et al. eq. 14), x_t by q_sample;
    - L_j = T * KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for categorical column j, x_t drawn from q(x_t | x_0)
      with the uniforms u ([N x sum K]); the factor T (TabDDPM's code: kl / p(t) for uniform t) makes it an unbiased
      estimate of the column's sum of KL terms of the bound. At t = 0 the posterior is x_0 itself, so the KL is the
      decoder's -log p(x_0 | x_1).
    x_num: [N x D] float; x_cat: [N x C] int64 codes; t: [N]; eps: [N x D].
    Returns (L_simple, sum_j L_j / C), each [N]."""
    sizes = getattr(model, "module", model).config.cat_sizes  # the network inside a DistributedDataParallel
    x_num_t = q_sample(schedule, x_num, t, eps)
    log_x0 = [log_onehot(x_cat[:, j], K) for j, K in enumerate(sizes)]
    codes_t = [gumbel_argmax(q_cat_log_probs(schedule, lx, t), uj) for lx, uj in zip(log_x0, split_blocks(u, sizes))]
    onehot_t = [F.one_hot(c, K).float() for c, K in zip(codes_t, sizes)]
    out = model(torch.cat([x_num_t, *onehot_t], dim=1), t)
    D = x_num.shape[1]
    eps_hat, logits = out[:, :D], out[:, D:]
    loss_gauss = (eps_hat - eps).pow(2).mean(1) if D else torch.zeros(len(t), device=out.device)
    kls = []
    for lx0, oh, lg in zip(log_x0, onehot_t, split_blocks(logits, sizes)):
        log_x_t = oh.clamp(min=1e-30).log()
        log_true = q_cat_posterior_log_probs(schedule, lx0, log_x_t, t)
        log_model = q_cat_posterior_log_probs(schedule, F.log_softmax(lg, dim=-1), log_x_t, t)
        kls.append(multinomial_kl(log_true, log_model))
    loss_cat = schedule.T * torch.stack(kls, 1).mean(1) if kls else torch.zeros_like(loss_gauss)
    return loss_gauss, loss_cat


@torch.no_grad()
def sample_tabddpm(denoiser, x, timesteps, generator=None, callback=None, clip_x0=None):
    """Ancestral sampling of the joint chain (Kotelnikov et al. 2023), on any decreasing subsequence of timesteps:
    the numerical block by Ho et al. Algorithm 2 (sigma_t^2 = beta_tilde_t, eq. 7; x0_hat not clipped), each
    categorical block by a draw from q(x_{t-1} | x_t, x0_hat) (Hoogeboom et al. 2021, sec. 4). x: [N x width] =
    [x_num | one-hot blocks]. Per step and row the draws are: D normals (not at the last step), then sum K uniforms.
    clip_x0: None, or ([D], [D]) bounds that x0_hat of the numerical block is clipped to (TabularTransform.bounds):
    without it, the first steps of a cosine schedule (alpha_t = alpha_bar_t / alpha_bar_{t_prev} down to 1e-5 when
    respaced) multiply any error of eps_hat by 1 / sqrt(alpha_t)."""
    D, sizes = denoiser.net.config.num_numerical, denoiser.net.config.cat_sizes
    timesteps = [int(t) for t in timesteps]
    resp = respace(denoiser.alpha_bar, timesteps)
    n = x.shape[0]
    for i, t in enumerate(timesteps):
        k = torch.full((n,), len(timesteps) - 1 - i, device=x.device, dtype=torch.long)  # index in `resp`
        x_num, x_cat = x[:, :D], x[:, D:]
        # 1. Predict eps for the numerical block and x_0's logits for each categorical block.
        out = denoiser(x, torch.full((n,), t, device=x.device, dtype=torch.long))
        eps_hat, logits = out[:, :D], out[:, D:]
        x0_hat = x0_from_eps(resp, x_num, k, eps_hat)
        if clip_x0 is not None:
            x0_hat = torch.maximum(torch.minimum(x0_hat, clip_x0[1].to(x.device)), clip_x0[0].to(x.device))
        # 2. Gaussian posterior mean mu_tilde(x_t, x0_hat) and variance beta_tilde_t, Ho et al. eq. (7).
        mean, variance = q_posterior_mean_variance(resp, x0_hat, x_num, k)
        # 3. Categorical posteriors theta_post(x_t, x0_hat), one block per column.
        log_probs0 = [F.log_softmax(lg, dim=-1) for lg in split_blocks(logits, sizes)]
        log_post = [q_cat_posterior_log_probs(resp, lp, xc.clamp(min=1e-30).log(), k)
                    for lp, xc in zip(log_probs0, split_blocks(x_cat, sizes))]
        # 4. Draw x_{t-1}: Gaussian noise except at the last step, then one Gumbel-max draw per column.
        if i + 1 < len(timesteps):
            noise = randn_tensor(x_num.shape, generator=generator, device=x.device, dtype=x.dtype)
            x_num = mean + variance.sqrt() * noise
        else:
            x_num = mean
        blocks = [x_num]
        if sizes:
            u = split_blocks(rand_rows(generator, (n, sum(sizes)), x.device), sizes)
            blocks += [F.one_hot(gumbel_argmax(lp, uj), K).float() for lp, uj, K in zip(log_post, u, sizes)]
        x = torch.cat(blocks, dim=1)
        if callback is not None:
            callback({"x": x, "i": i, "t": t, "x0_hat": torch.cat([x0_hat, *[lp.exp() for lp in log_probs0]], 1)})
    return x


def initial_rows(generators: list[torch.Generator], config: MLPConfig, device="cpu") -> torch.Tensor:
    """x_T: D normals (samplers.initial_noise) then a uniform category per column (sum K uniforms, Gumbel-max) from
    row i's generator; [N x width]."""
    x_num = initial_noise(generators, (config.num_numerical,), device)
    blocks = [x_num]
    if config.cat_sizes:
        u = split_blocks(rand_rows(generators, (len(generators), sum(config.cat_sizes)), device), config.cat_sizes)
        blocks += [F.one_hot(gumbel_argmax(torch.zeros_like(uj), uj), uj.shape[1]).float() for uj in u]
    return torch.cat(blocks, dim=1)


def to_codes(x: torch.Tensor, config: MLPConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Split rows [N x width] into x_num [N x D] and categorical codes [N x C] (argmax of each one-hot block)."""
    D = config.num_numerical
    codes = [b.argmax(1) for b in split_blocks(x[:, D:], config.cat_sizes)]
    return x[:, :D], torch.stack(codes, 1) if codes else torch.zeros((x.shape[0], 0), dtype=torch.long)


def generate_rows(denoiser, num: int, seed: int, steps: int | None = None, spacing: str = "linspace",
                  batch_size: int = 2048, device="cpu", callback=None, clip_x0=None):
    """`num` rows in batches, row i drawn only from its own generator (samplers.image_generators), so that row i of
    seed s is the same at any batch size; returns (x_num [num x D], codes [num x C]) in the transformed space."""
    if num < 1:
        raise ValueError(f"the number of rows must be positive, got {num}")
    timesteps = get_timesteps(denoiser.alpha_bar.shape[0], steps or denoiser.alpha_bar.shape[0], spacing)
    config = denoiser.net.config
    out = []
    for start in range(0, num, batch_size):
        gens = image_generators(seed, range(start, min(num, start + batch_size)), device)
        x = sample_tabddpm(denoiser, initial_rows(gens, config, device), timesteps, generator=gens, callback=callback,
                           clip_x0=clip_x0)
        out.append(x.cpu())
    return to_codes(torch.cat(out), config)
