"""Training and loading the tabular DDPM: the configuration, the encoded data of a run, its objective for the shared
training loop (helpers.training.loop), checkpoints with the fitted transform, and drawing rows as a data frame.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from helpers import checkpoints as ckpt
from helpers.denoisers import Denoiser
from helpers.training.loop import BatchOrder, LoopConfig, check_out, fit, step_generator
from helpers.models import count_parameters
from helpers.models.mlp import MLPConfig, MLPDenoiser
from helpers.schedules import SCHEDULES, Schedule
from helpers.tabular.data import Table, TabularTransform, load_table, split_rows
from helpers.tabular.multinomial import generate_rows, tabular_loss

TRANSFORM_FILE = "transform.safetensors"


@dataclass
class TabularTrainConfig(LoopConfig):
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
    weight_decay: float = 1e-5
    schedule: str = "cosine"
    T: int = 1000
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
    if table.dropped:
        print(f"note: {table.dropped} of {table.dropped + len(table.frame)} rows of {cfg.data} have missing values in "
              "the kept columns and are left out", file=sys.stderr)
    train_idx, test_idx = split_rows(len(table.frame), cfg.test_fraction, cfg.split_seed)
    train, test = table.frame.iloc[train_idx].reset_index(drop=True), table.frame.iloc[test_idx].reset_index(drop=True)
    transform = transform or TabularTransform.fit(table, train, cfg.transform, cfg.n_quantiles)
    x_num, x_cat = transform.encode(train)
    return TabularData(table, train, test, transform, x_num, x_cat)


def global_batch(data: TabularData, order: BatchOrder, step: int, cfg: TabularTrainConfig):
    """x_num, x_cat, t, eps and the uniforms u of batch `step`, from a generator seeded by (seed, step) alone, so a
    resumed run draws exactly what an uninterrupted one would (as helpers.training.ddpm.global_batch)."""
    idx = order(step)
    g = step_generator(cfg.seed, step)
    t = torch.randint(0, cfg.T, (len(idx),), generator=g)
    eps = torch.randn((len(idx), data.x_num.shape[1]), generator=g)
    u = torch.rand((len(idx), sum(data.transform.cat_sizes)), generator=g)
    return data.x_num[idx], data.x_cat[idx], t, eps, u


def tabular_objective(data: TabularData, schedule: Schedule, cfg: TabularTrainConfig):
    """TabDDPM's loss L_simple + sum_j L_j / C (tabular_loss) as an objective of helpers.training.loop; the two terms are
    logged beside the total."""
    order = BatchOrder(len(data.train), cfg.batch_size, cfg.seed)

    def objective(model, step: int, ctx):
        x_num, x_cat, t, eps, u = (ctx.local(v) for v in global_batch(data, order, step, cfg))
        loss_gauss, loss_cat = tabular_loss(model, schedule, x_num, x_cat, t, eps, u)
        return loss_gauss.mean() + loss_cat.mean(), [loss_gauss.mean(), loss_cat.mean()]

    return objective


def describe(model_cfg: MLPConfig, cfg: TabularTrainConfig, data: TabularData, n_params: int) -> dict:
    """The static part of a tabular DDPM's model card (helpers.training.loop adds step, losses, EMA and the command)."""
    return {
        "kind": "tabddpm",
        "architecture": "mlp",
        "model": model_cfg.to_dict(),
        "parameters": n_params,
        "schedule": {"name": cfg.schedule, "T": cfg.T,
                     "fingerprint": Schedule.from_name(cfg.schedule, cfg.T).fingerprint()},
        "prediction": "eps (numerical), x0 logits (categorical)",
        "categorical_diffusion": "multinomial (Hoogeboom et al. 2021)",
        "train": asdict(cfg),
        "data": {"spec": cfg.data, "rows_train": len(data.train), "rows_test": len(data.test),
                 "numerical": data.transform.numerical, "categorical": data.transform.categorical,
                 "cat_sizes": list(data.transform.cat_sizes), "split_seed": cfg.split_seed,
                 "test_fraction": cfg.test_fraction},
        "transform": data.transform.config(),
        "loss_history_columns": ["step", "loss", "loss_gauss", "loss_multinomial"],
    }


def train(cfg: TabularTrainConfig, out: Path, resume: bool = False, command: str = "", model_overrides=None,
          progress: bool = True) -> dict:
    """Train on cfg.data with helpers.training.loop.fit, checkpointing to `out` every cfg.checkpoint_every steps and at the
    end (weights, EMA, optimiser, transform, card); with `resume` continue the checkpoint in `out` exactly. Returns
    the final card."""
    out = Path(out)
    if check_out(out, resume):
        previous = ckpt.read_card(out)
        cfg = TabularTrainConfig(**{**previous["train"], "steps": cfg.steps})
        transform = TabularTransform.from_saved(previous["transform"], ckpt.read_tensors(out / TRANSFORM_FILE))
        data = prepare_data(cfg, transform)
        model_cfg = MLPConfig(**previous["model"])
    else:
        data = prepare_data(cfg)
        model_cfg = MLPConfig(data.x_num.shape[1], data.transform.cat_sizes, **(model_overrides or {}))
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown beta schedule {cfg.schedule!r}; known schedules: {', '.join(SCHEDULES)}")
    schedule = Schedule.from_name(cfg.schedule, cfg.T)
    torch.manual_seed(cfg.seed)
    model = MLPDenoiser(model_cfg)

    def save_transform(folder: Path) -> None:
        stats = torch.from_numpy(np.ascontiguousarray(data.transform.stats))
        ckpt.save_tensors({"stats": stats}, folder / TRANSFORM_FILE)

    out.mkdir(parents=True, exist_ok=True)
    info = describe(model_cfg, cfg, data, count_parameters(model))
    return fit(model, tabular_objective(data, schedule, cfg), cfg, out, lambda: info, resume=resume,
               command=command, on_save=save_transform, progress=progress, part_names=("gauss", "multinomial"))


def load_checkpoint(folder, ema: bool = True, device="cpu") -> tuple[Denoiser, TabularTransform, dict]:
    """The Denoiser (helpers.denoisers, eps for the numerical block) of a tabular checkpoint in eval mode, its
    transform and its model card."""
    folder = Path(folder)
    card = ckpt.read_card(folder)
    if card.get("kind") != "tabddpm":
        raise ckpt.CheckpointError(f"{folder} is not a tabular DDPM checkpoint (kind {card.get('kind')!r})")
    net, _ = ckpt.load_model(folder, ema=ema, device=device)
    transform = TabularTransform.from_saved(card["transform"], ckpt.read_tensors(folder / TRANSFORM_FILE))
    schedule = ckpt.card_schedule(card, folder)
    return Denoiser(net, schedule, "eps"), transform, card


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
