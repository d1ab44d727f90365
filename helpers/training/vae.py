"""The first stage of latent diffusion (Rombach et al., CVPR 2022): diffusers' `AutoencoderKL`, small, trained here.

    python -m helpers.autoencoder --dataset mnist --out checkpoints/autoencoder-mnist --steps 3000 --seed 0
    python -m helpers.autoencoder --out checkpoints/autoencoder-mnist --resume --steps 4000

The encoder maps a 28 x 28 digit to q(z | x) = N(mu(x), sigma(x)^2) on a `latent_channels` x 7 x 7 grid (two
downsamplings), the decoder maps z back. The loss is the LDM first stage's without its perceptual and adversarial
terms (their networks cannot be downloaded here): the L1 reconstruction error summed over pixels plus `kl_weight`
times KL(q(z | x) || N(0, I)) summed over latent dimensions, per image (LDM's kl_weight is 1e-6), divided by the
number of pixels so that the logged loss reads as a mean absolute error. It trains with the shared loop (EMA,
resume, model card).

After training, the card gets the latent **scaling factor**, 1 / std of the posterior means of training images
(LDM's "rescale the latents to unit variance"; Stable Diffusion's 0.18215 was computed the same way for its own
autoencoder and does not carry over), and the reconstruction error on the test digits. `latents:FOLDER` is then a
data set of `helpers.datasets.images` (the scaled posterior means of the training digits), on which `helpers.training.ddpm` trains a
latent diffusion model exactly as it trains a pixel one.
"""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from helpers import checkpoints as ckpt
from helpers.checks import non_negative_float, non_negative_int, positive_float, positive_int, unit_float
from helpers.cli import ArgumentParser, after_interrupt, user_error, check_resume, given_options, run_status
from helpers.datasets.images import DataUnavailableError, load_images
from helpers.training.loop import BatchOrder, LoopConfig, check_out, fit, make_accelerator, step_generator
from helpers.models.autoencoder import Autoencoder, AutoencoderConfig
from helpers.models.layers import count_parameters


@dataclass
class AutoencoderTrainConfig(LoopConfig):
    dataset: str = "mnist"
    steps: int = 3000
    kl_weight: float = 1e-6


def autoencoder_objective(data, cfg: AutoencoderTrainConfig):
    order = BatchOrder(len(data), cfg.batch_size, cfg.seed)

    def objective(model, step: int, ctx):
        x = ctx.local(data.images[order(step)])
        recon, posterior = model(x, generator=step_generator(cfg.seed, step), return_posterior=True)
        pixels = x[0].numel()
        rec = (recon - x).abs().flatten(1).sum(1)
        kl = posterior.kl()  # summed over the latent dimensions, one value per image
        loss = ((rec + cfg.kl_weight * kl) / pixels).mean()
        return loss, [rec.mean() / pixels, kl.mean()]

    return objective


@torch.no_grad()
def measure(model: Autoencoder, train_images: torch.Tensor, test_images: torch.Tensor) -> dict:
    """The latent scaling factor (1 / std of the training posterior means) and the test reconstruction error."""
    mu = model.posterior_means(train_images)
    recon = torch.cat([model.decode(z) for z in model.posterior_means(test_images).split(500)]).clamp(-1, 1)
    return {"scaling_factor": float(1 / mu.std()), "latent_mean": float(mu.mean()), "latent_std": float(mu.std()),
            "shape": list(model.config.latent_shape), "scaled_from": f"{len(train_images)} training images",
            "test_mae": float((recon - test_images).abs().mean()), "test_mse": float(((recon - test_images) ** 2).mean()),
            "test_images": len(test_images)}


def describe(model_cfg: AutoencoderConfig, cfg: AutoencoderTrainConfig, data, n_params: int) -> dict:
    return {"kind": "autoencoder", "architecture": "autoencoder-kl", "model": model_cfg.to_dict(), "parameters": n_params,
            "loss": "L1 (per pixel) + kl_weight * KL / pixels", "train": vars(cfg),
            "data": {"spec": cfg.dataset, "num_images": len(data), "shape": list(data.shape)}}


def train(model_cfg: AutoencoderConfig, cfg: AutoencoderTrainConfig, out: Path, resume: bool = False,
          command: str = "") -> dict:
    accelerator = make_accelerator(cfg)
    data = load_images(cfg.dataset)
    if tuple(data.shape) != model_cfg.sample_shape:
        raise ValueError(f"{cfg.dataset} has {list(data.shape)} images but the autoencoder is for {list(model_cfg.sample_shape)}")
    torch.manual_seed(cfg.seed)
    model = Autoencoder(model_cfg)
    if check_out(out, resume) and ckpt.read_card(out)["model"] != json.loads(json.dumps(model_cfg.to_dict())):
        raise ValueError(f"the model options differ from the checkpoint in {out}")
    info = describe(model_cfg, cfg, data, count_parameters(model))
    card = fit(model, autoencoder_objective(data, cfg), cfg, out, lambda: info, resume=resume, command=command,
               accelerator=accelerator, part_names=("l1", "kl"))
    if card and card["step"] >= cfg.steps:  # finished: the latent statistics, on the EMA weights
        trained, _ = ckpt.load_model(out)
        split = cfg.dataset.partition(":")[0]
        card["latent"] = measure(trained, data.images[:10_000], load_images(f"{split}:test").images)
        ckpt.save_json(card, Path(out) / ckpt.CARD)
    return card


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m helpers.autoencoder", description=__doc__.split("\n")[0])
    d, m = AutoencoderTrainConfig(), AutoencoderConfig()
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (its options are reused)")
    p.add_argument("--dataset", default=d.dataset)
    types = {"steps": positive_int, "batch_size": positive_int, "lr": positive_float, "warmup": non_negative_int,
             "weight_decay": non_negative_float, "grad_clip": non_negative_float, "kl_weight": non_negative_float,
             "ema_decay": unit_float, "ema_power": positive_float, "seed": non_negative_int,
             "checkpoint_every": positive_int, "log_every": positive_int}
    for name, kind in types.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(d, name))
    p.add_argument("--latent-channels", type=positive_int, default=m.latent_channels)
    p.add_argument("--block-out-channels", type=lambda s: tuple(positive_int(v) for v in s.split(",")),
                   default=m.block_out_channels, help="comma-separated, e.g. 32,64,64 (two downsamplings)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = "python -m helpers.autoencoder " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.resume:
            saved = ckpt.read_card(args.out) if ckpt.has_checkpoint(args.out) else {"train": {}, "model": {}}
            given = given_options(build_parser(), argv)
            check_resume(args.out, True, given,
                         {**saved["train"], **{k: saved["model"].get(k) for k in ("latent_channels", "block_out_channels")}})
            model_cfg = AutoencoderConfig(**saved["model"])
            steps = args.steps if "steps" in given else saved["train"]["steps"]  # left out: the run's own total
            cfg = AutoencoderTrainConfig(**{**saved["train"], "steps": steps})
        else:
            data = load_images(args.dataset)
            c, h, _ = data.shape
            model_cfg = AutoencoderConfig(in_channels=c, image_size=h, latent_channels=args.latent_channels,
                                          block_out_channels=args.block_out_channels)
            cfg = AutoencoderTrainConfig(**{k: v for k, v in vars(args).items() if k in AutoencoderTrainConfig.__dataclass_fields__})
        card = train(model_cfg, cfg, args.out, resume=args.resume, command=command)
    except KeyboardInterrupt as err:  # Ctrl-C: the loop saved first
        return after_interrupt(err, getattr(args, "steps", None))
    except (ValueError, OSError, ckpt.CheckpointError, DataUnavailableError) as err:
        return user_error(err)
    if card:
        latent = card.get("latent", {})
        print(f"step {card['step']}, loss {card['final_loss']:.4f}, wall time {card['wall_time_s']:.0f} s"
              + (f", scaling factor {latent['scaling_factor']:.4f}, test MAE {latent['test_mae']:.4f}" if latent else "")
              + f" -> {args.out}")
    return run_status(card, cfg.steps)


if __name__ == "__main__":
    sys.exit(main())
