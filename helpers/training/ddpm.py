"""Train a DDPM (Ho et al. 2020, Algorithm 1) with Hugging Face Accelerate.

    python -m helpers.train --dataset mnist --out checkpoints/ddpm-mnist --steps 8000 --checkpoint-every 250 --seed 0
    python -m helpers.train --architecture dit --dataset latents:checkpoints/autoencoder-mnist --conditional ...
    python -m helpers.train --architecture video-unet --dataset moving-mnist:8 --joint-images 4 ...   # video (VDM)
    python -m helpers.train --out checkpoints/ddpm-mnist --resume            # continue where it stopped
    accelerate launch --cpu --num_processes 2 -m helpers.training.ddpm ...            # several processes, same result

Resuming is exact: the batch of step k (which images, which t, which eps) is a function of (seed, k) alone, and the
checkpoint holds weights, EMA and optimiser state, so a run killed and resumed ends with the weights of an
uninterrupted run. With several processes each takes its slice of the same global batch.
"""
from __future__ import annotations

import argparse
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
from helpers.models import ARCHITECTURES, count_parameters
from helpers.models.dit import CONDITIONINGS, DiTConfig
from helpers.models.unet import UNet, UNetConfig
from helpers.models.video_unet import VideoUNetConfig
from helpers.objectives import LOSSES, PREDICTIONS, WEIGHTINGS, diffusion_loss
from helpers.schedules import SCHEDULES, Schedule


@dataclass
class TrainConfig(LoopConfig):
    dataset: str = "mnist"
    steps: int = 8000
    batch_size: int = 128
    warmup: int = 200
    schedule: str = "linear"
    T: int = 1000
    loss: str = "l2"
    prediction: str = "eps"
    weighting: str = "none"
    label_dropout: float = 0.1  # used by conditional models only: probability of the null label
    ema_decay: float = 0.9999  # the cap; with warm-up the k-th update (k = 1, 2, ...) uses min(cap, 1 - k^-ema_power)
    init_from: str | None = None  # warm start from this checkpoint's EMA weights (see init_from_checkpoint)
    channels_last: bool = True
    joint_images: int = 0  # video: clips of independent frames added to each batch (VDM's joint training on images)
    text_encoder: str | None = None  # a text encoder checkpoint: condition a DiT on captions (label_dropout: empty ones)


def global_batch(data, order: "BatchOrder", step: int, cfg: TrainConfig, num_classes: int | None, captions=None):
    """x_0, t, eps (and labels, some dropped to the null label, or the token ids of captions in random training
    phrasings, some dropped to the empty caption) of global batch `step`, drawn from a generator seeded by
    (seed, step) alone: the same on every process, whatever the number of processes or where a run resumed."""
    idx = order(step)
    g = step_generator(cfg.seed, step)
    x0 = data.images[idx]
    t = torch.randint(0, cfg.T, (len(idx),), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    y = None
    if num_classes:  # label dropout to the null label, for classifier-free guidance
        drop = torch.rand(len(idx), generator=g) < cfg.label_dropout
        y = torch.where(drop, num_classes, data.labels[idx])
    elif captions is not None:  # (captioned latents, tokenizer): helpers.training.clip.CaptionedLatents
        from helpers.datasets.captions import TEMPLATES

        texts, _ = captions[0].captions(idx, list(TEMPLATES), g)
        drop = (torch.rand(len(idx), generator=g) < cfg.label_dropout).tolist()
        y = captions[1].batch(["" if d else text for text, d in zip(texts, drop)])
    return x0, t, eps, y


def image_clips(data, step: int, cfg: TrainConfig):
    """VDM's joint training on images (Ho et al. 2022, sec. 3.2): cfg.joint_images clips whose F frames are single
    frames of F different random training clips, to be denoised with the temporal attention masked (each frame an
    independent image); x_0, t, eps. Drawn from their own generator of (seed, step), so the video part of the batch
    is the same with and without them."""
    g = step_generator(cfg.seed + 1_000_003, step)
    n, frames = cfg.joint_images, data.shape[0]
    clip = torch.randint(0, len(data), (n * frames,), generator=g)
    frame = torch.randint(0, frames, (n * frames,), generator=g)
    x0 = data.images[clip, frame].reshape(n, *data.shape)
    return x0, torch.randint(0, cfg.T, (n,), generator=g), torch.randn(x0.shape, generator=g)


NETWORKS = {"unet": UNetConfig, "dit": DiTConfig, "video-unet": VideoUNetConfig}  # what helpers.training.ddpm builds
UNET_OPTIONS = ("base_channels", "channel_mults", "num_res_blocks", "attention_resolutions", "dropout")
DIT_OPTIONS = ("patch_size", "hidden_size", "depth", "num_heads", "conditioning")
OPTIONS = {"unet": UNET_OPTIONS, "dit": DIT_OPTIONS, "video-unet": UNET_OPTIONS}  # each architecture's own options
LABELS = {"unet": "U-Net", "dit": "DiT", "video-unet": "video U-Net"}


def architecture_name(model_cfg) -> str:
    return next(name for name, config in NETWORKS.items() if isinstance(model_cfg, config))


def build_model(model_cfg, cfg: TrainConfig):
    torch.manual_seed(cfg.seed)
    return ARCHITECTURES[architecture_name(model_cfg)].network(model_cfg)


def init_from_checkpoint(model: UNet, folder: str) -> list[str]:
    """Warm start: copy the EMA weights of the checkpoint in `folder` into `model`. Tensors the source lacks keep
    their fresh initialisation; for a conditional model started from an unconditional one that is the label
    embedding, whose class rows stay random (nn.Embedding's N(0, 1), as in a model trained from scratch: zero rows
    would get gradients too small to be learnt in a short fine-tune) while the null label's row is zeroed, so that
    with the null label the new model computes exactly what the source computed. Returns the new tensors' names."""
    source = ckpt.read_tensors(Path(folder) / ckpt.EMA)
    own = model.state_dict()
    unknown = sorted(set(source) - set(own))
    wrong = [f"{n}: {tuple(source[n].shape)} vs {tuple(own[n].shape)}" for n in source if n in own and source[n].shape != own[n].shape]
    if unknown or wrong:
        raise ValueError(f"cannot warm start from {folder}: the architectures differ "
                         f"(tensors only in the source: {unknown[:3]}; shapes differ: {wrong[:3]})")
    with torch.no_grad():
        for name, tensor in source.items():
            own[name].copy_(tensor)
        if model.label_emb is not None and "label_emb.weight" not in source:
            model.label_emb.weight[model.config.null_label].zero_()
    return sorted(set(own) - set(source))


def ddpm_objective(data, schedule: Schedule, cfg: TrainConfig, num_classes: int | None, captions=None):
    """Ho et al. (2020) Algorithm 1 as an objective of helpers.training.loop: the per-sample loss (helpers.objectives) of this
    process's slice of global batch `step`, averaged."""
    order = BatchOrder(len(data), cfg.batch_size, cfg.seed)

    def objective(model, step: int, ctx):
        x0, t, eps, y = global_batch(data, order, step, cfg, num_classes, captions)
        x0, t, eps = (ctx.local(v) for v in (x0, t, eps))
        y = None if y is None else ctx.local(y)
        if ctx.channels_last:
            x0, eps = x0.contiguous(memory_format=torch.channels_last), eps.contiguous(memory_format=torch.channels_last)
        with ctx.accelerator.autocast():
            loss = diffusion_loss(model, schedule, x0, t, eps, y, cfg.loss, cfg.prediction, cfg.weighting)
            if not cfg.joint_images:
                return loss.mean()
            xi, ti, ei = (ctx.local(v) for v in image_clips(data, step, cfg))
            independent = lambda x, tt: model(x, tt, frames_independent=True)
            images = diffusion_loss(independent, schedule, xi, ti, ei, None, cfg.loss, cfg.prediction, cfg.weighting)
            return torch.cat([loss, images]).mean()  # every clip, video or independent frames, weighs the same

    return objective


def describe(model_cfg, cfg: TrainConfig, data, n_params: int) -> dict:
    """The static part of a DDPM's model card (helpers.training.loop adds step, losses, EMA and the command). A model of an
    autoencoder's latents names the autoencoder (to decode its samples) and samples without clipping x0_hat (latents
    are not bounded to [-1, 1])."""
    latent = cfg.dataset.startswith("latents:")
    return {
        "kind": "ddpm",
        "architecture": architecture_name(model_cfg),
        **({"autoencoder": cfg.dataset.split(":")[1], "sampling": {"clip_x0": False}} if latent else {}),
        **({"text_encoder": cfg.text_encoder} if cfg.text_encoder else {}),
        "model": model_cfg.to_dict(),
        "parameters": n_params,
        "schedule": {"name": cfg.schedule, "T": cfg.T,
                     "fingerprint": Schedule.from_name(cfg.schedule, cfg.T).fingerprint()},
        "prediction": cfg.prediction,
        "train": vars(cfg),
        "data": {"spec": cfg.dataset, "num_images": len(data), "shape": list(data.shape), "num_classes": data.num_classes},
    }


def train(model_cfg, cfg: TrainConfig, out: Path, resume: bool = False, command: str = "") -> dict:
    """Train with helpers.training.loop.fit, checkpointing to `out` every cfg.checkpoint_every steps and at the end; returns
    the final card."""
    accelerator = make_accelerator(cfg)
    data = load_images(cfg.dataset)
    if model_cfg.num_classes and data.labels is None:
        raise ValueError(f"a conditional model needs labels, but {cfg.dataset} has none")
    if cfg.joint_images and (len(data.shape) != 4 or not isinstance(model_cfg, VideoUNetConfig)):
        raise ValueError(f"--joint-images trains a video model on still frames too; it needs --architecture video-unet "
                         f"and clips (e.g. --dataset moving-mnist:8), got {cfg.dataset} with shape {list(data.shape)}")
    if cfg.joint_images and model_cfg.num_classes:
        raise ValueError("--joint-images needs an unconditional model: the frames of an image clip come from different "
                         "clips, so no one class label describes them")
    schedule = Schedule.from_name(cfg.schedule, cfg.T)
    model = build_model(model_cfg, cfg)
    resuming = check_out(out, resume)
    captions = None
    if cfg.text_encoder:
        from helpers.datasets.captions import Tokenizer
        from helpers.training.clip import CaptionedLatents

        if not cfg.dataset.startswith("latents:"):
            raise ValueError(f"--text-encoder trains on captioned latents: give --dataset latents:AUTOENCODER, got {cfg.dataset}")
        captions = (CaptionedLatents(cfg.dataset.split(":")[1]), Tokenizer(model_cfg.text["max_length"]))
        if not resuming:  # the frozen text encoder's trained weights (a resumed run has them in its checkpoint)
            model.text.load_state_dict(ckpt.load_model(cfg.text_encoder)[0].state_dict())
    if cfg.init_from and not resuming:
        new = init_from_checkpoint(model, cfg.init_from)
        if accelerator.is_main_process:
            print(f"warm start from {cfg.init_from}; new tensors: {', '.join(new) or 'none'}", flush=True)
    if resuming:
        card = ckpt.read_card(out)
        if card["model"] != json.loads(json.dumps(model_cfg.to_dict())):
            raise ValueError(f"the model options differ from the checkpoint in {out}: {card['model']}")
    if cfg.batch_size % accelerator.num_processes:
        raise ValueError(f"batch size {cfg.batch_size} is not divisible by the {accelerator.num_processes} processes")
    channels_last = cfg.channels_last and len(data.shape) == 3  # a layout of 4-D image batches only
    info = describe(model_cfg, cfg, data, count_parameters(model))
    return fit(model, ddpm_objective(data, schedule, cfg, model_cfg.num_classes, captions), cfg, out, lambda: info,
               resume=resume, command=command, channels_last=channels_last, accelerator=accelerator)


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers, e.g. 1,2,4."""
    try:
        values = tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 1,2,4, got {text!r}"
                                         ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 1,2,4, got {text!r}")
    return values


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m helpers.train", description=__doc__.split("\n")[0])
    d = TrainConfig()
    p.add_argument("--out", required=True, type=Path, help="checkpoint folder")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (its options are reused)")
    p.add_argument("--dataset", default=d.dataset,
                   help="mnist, digits, imagefolder:PATH, latents:AUTOENCODER_FOLDER or hf:ID[:split] (online)")
    p.add_argument("--architecture", choices=NETWORKS, default="unet", help="the denoiser: U-Net, DiT or the video U-Net")
    p.add_argument("--steps", type=positive_int, default=d.steps,
                   help="total optimiser steps (with --resume: the new total; left out, the run's own)")
    p.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every)
    p.add_argument("--seed", type=non_negative_int, default=d.seed)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size)
    p.add_argument("--lr", type=positive_float, default=d.lr)
    p.add_argument("--warmup", type=non_negative_int, default=d.warmup)
    p.add_argument("--grad-clip", type=non_negative_float, default=d.grad_clip)
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--T", type=positive_int, default=d.T, help="number of diffusion steps")
    p.add_argument("--loss", choices=LOSSES, default=d.loss)
    p.add_argument("--prediction", choices=PREDICTIONS, default=d.prediction)
    p.add_argument("--weighting", choices=WEIGHTINGS, default=d.weighting)
    p.add_argument("--ema-decay", type=unit_float, default=d.ema_decay)
    p.add_argument("--ema-power", type=positive_float, default=d.ema_power)
    p.add_argument("--keep-every", type=non_negative_int, default=d.keep_every,
                   help="keep the raw and EMA weights of every K-th step in OUT/snapshots/ (for EMA studies)")
    p.add_argument("--init-from", default=None, help="warm start from this checkpoint's EMA weights (a conditional "
                   "model from an unconditional one: random class embeddings, the null label's at zero)")
    p.add_argument("--log-every", type=positive_int, default=d.log_every)
    p.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default=d.mixed_precision)
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--base-channels", type=positive_int, default=32)
    p.add_argument("--channel-mults", type=ints, default=(1, 2, 4), help="comma-separated, e.g. 1,2,4")
    p.add_argument("--num-res-blocks", type=positive_int, default=1)
    p.add_argument("--attention-resolutions", type=ints, default=(7,), help="comma-separated feature-map sizes")
    p.add_argument("--dropout", type=unit_float, default=0.0)
    p.add_argument("--patch-size", type=positive_int, default=DiTConfig.patch_size, help="DiT: patch size")
    p.add_argument("--hidden-size", type=positive_int, default=DiTConfig.hidden_size, help="DiT: token width")
    p.add_argument("--depth", type=positive_int, default=DiTConfig.depth, help="DiT: transformer blocks")
    p.add_argument("--num-heads", type=positive_int, default=DiTConfig.num_heads, help="DiT: attention heads")
    p.add_argument("--conditioning", choices=CONDITIONINGS, default=DiTConfig.conditioning,
                   help="DiT: how t and the label enter the blocks")
    p.add_argument("--conditional", action="store_true", help="class-conditional, with a null label for CFG")
    p.add_argument("--label-dropout", type=unit_float, default=d.label_dropout)
    p.add_argument("--text-encoder", default=None, help="DiT: condition on captions, encoded by this text encoder "
                   "checkpoint (python -m helpers.text_encoder); --label-dropout is then the share of empty captions")
    p.add_argument("--joint-images", type=non_negative_int, default=d.joint_images,
                   help="video: clips of independent still frames added to each batch (VDM's joint training); 0: off")
    return p


def saved_options(card: dict) -> dict:
    """A run's options by their command-line names, from its model card (for --resume)."""
    model, arch = card["model"], card.get("architecture", "unet")
    keys = OPTIONS[arch]
    return {**card["train"], **{k: model[k] for k in keys}, "architecture": arch,
            "conditional": model.get("num_classes") is not None}


def configs_from_args(args, given: dict | None = None) -> tuple[UNetConfig | DiTConfig | VideoUNetConfig, TrainConfig]:
    if args.resume:
        check_resume(args.out, args.resume, given or {}, saved_options(ckpt.read_card(args.out))
                     if ckpt.has_checkpoint(args.out) else {})
        card = ckpt.read_card(args.out)  # --steps given: the new total; not given: the run's own total
        steps = args.steps if "steps" in (given or {}) else card["train"]["steps"]
        cfg = TrainConfig(**{**card["train"], "steps": steps})
        return NETWORKS[card.get("architecture", "unet")](**card["model"]), cfg
    wrong = sorted(name for name in (given or {}) if name not in OPTIONS[args.architecture]
                   and any(name in keys for keys in OPTIONS.values()))
    if wrong:
        owner = next(LABELS[a] for a, keys in OPTIONS.items() if wrong[0] in keys)
        raise ValueError(f"--{wrong[0].replace('_', '-')} is an option of the {owner}, not of --architecture {args.architecture}")
    if args.text_encoder and args.architecture != "dit":
        raise ValueError(f"--text-encoder conditions a DiT on captions; it needs --architecture dit, not {args.architecture}")
    data = load_images(args.dataset)
    video = args.architecture == "video-unet"
    if len(data.shape) != (4 if video else 3):
        raise ValueError(f"--architecture {args.architecture} needs {'clips [F x C x H x W]' if video else 'images [C x H x W]'}"
                         f", but {args.dataset} holds items of shape {list(data.shape)}"
                         + ("" if video else "; for clips use --architecture video-unet"))
    c, h, _ = data.shape[-3:]
    num_classes = data.num_classes if args.conditional else None
    if video:
        model_cfg = VideoUNetConfig(
            in_channels=c, image_size=h, num_frames=data.shape[0], base_channels=args.base_channels,
            channel_mults=args.channel_mults, num_res_blocks=args.num_res_blocks,
            attention_resolutions=args.attention_resolutions, dropout=args.dropout, num_classes=num_classes)
    elif args.architecture == "dit":
        text = None
        if args.text_encoder:
            if args.conditional:
                raise ValueError("--text-encoder conditions on captions instead of class labels; drop --conditional")
            text = ckpt.read_card(Path(args.text_encoder))["model"]
        model_cfg = DiTConfig(in_channels=c, image_size=h, patch_size=args.patch_size, hidden_size=args.hidden_size,
                              depth=args.depth, num_heads=args.num_heads, num_classes=num_classes,
                              conditioning=args.conditioning, text=text)
    else:
        model_cfg = UNetConfig(
            in_channels=c, image_size=h, base_channels=args.base_channels, channel_mults=args.channel_mults,
            num_res_blocks=args.num_res_blocks, attention_resolutions=args.attention_resolutions, dropout=args.dropout,
            num_classes=num_classes,
        )
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    return model_cfg, cfg


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        model_cfg, cfg = configs_from_args(args, given_options(build_parser(), argv))
        command = "python -m helpers.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        card = train(model_cfg, cfg, args.out, resume=args.resume, command=command)
    except (ValueError, OSError, ckpt.CheckpointError, DataUnavailableError) as err:
        return user_error(err)
    except KeyboardInterrupt as err:
        return after_interrupt(err, getattr(args, "steps", None))
    if card:
        print(f"step {card['step']}, loss {card['final_loss']:.4f}, wall time {card['wall_time_s']:.0f} s -> {args.out}")
    return run_status(card, cfg.steps)


if __name__ == "__main__":
    sys.exit(main())
