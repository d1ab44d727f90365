"""Feature networks trained here on data with known factors, for Fréchet distances where Inception and I3D cannot be
downloaded (helpers/models/feature_net.py): the video feature network behind "FVD (our video features)" (notebook
12) and the coloured shapes' attribute classifier (notebook 09). Never call their distances Inception FID or I3D FVD.

    python -m helpers.feature_net --dataset moving-mnist:16 --out checkpoints/video-features --steps 1500
    python -m helpers.feature_net --dataset shapes:32 --out checkpoints/shapes-features-32 --steps 6000

Attributes learnt: a video's digit class and the direction of its first move (so the features see identity and
motion); a shape image's shape and colour. A video network trains on prefixes of its clips of a random length per
batch (`PREFIXES` up to the clips' length), so that one network scores clips of 4, 8 or 16 frames.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import checkpoints as ckpt
from helpers.cli import ArgumentParser, check_new_checkpoint, training_options
from helpers.datasets.images import DataUnavailableError, load_images
from helpers.evaluation.metrics import frechet_distance
from helpers.evaluation.metrics import net_features as features  # [N, feature_dim] features of images or clips
from helpers.models.feature_net import FeatureNet, FeatureNetConfig

PREFIXES = (4, 8, 16)  # clip lengths a video feature network trains on (those up to the data's length)
LABEL = "FVD (our video features)"


def attributes(data) -> dict[str, tuple[int, torch.Tensor]]:
    """attribute -> (number of classes, [N] targets) of a labelled data set with known factors."""
    if data.name.startswith("moving-mnist"):
        from helpers.datasets.moving_mnist import DIRECTIONS

        return {"digit": (10, data.labels), "direction": (len(DIRECTIONS), data.directions)}
    if data.name.startswith("shapes"):
        from helpers.datasets.shapes import COLOURS, SHAPES

        return {"shape": (len(SHAPES), data.labels // len(COLOURS)), "colour": (len(COLOURS), data.labels % len(COLOURS))}
    raise ValueError(f"a feature network needs a data set with known factors (moving-mnist:F or shapes:SIZE), got {data.name}")


def valid_share(judge, images: torch.Tensor, threshold: float = 0.9) -> float:
    """The share of images whose every attribute the feature network reads with probability >= threshold."""
    with torch.no_grad():
        outs = [judge(part) for part in images.split(250)]
    ok = torch.ones(len(images), dtype=torch.bool)
    for name in outs[0]:
        ok &= torch.cat([o[name] for o in outs]).softmax(1).max(1).values >= threshold
    return float(ok.double().mean())


def train_feature_net(spec: str, steps: int, seed: int = 0, batch_size: int = 64, lr: float = 1e-3) -> tuple[FeatureNet, dict]:
    """Adam on the training split, cross-entropy summed over the attributes; accuracy per attribute on the test split
    (for a video network, at every prefix length)."""
    train, test = load_images(spec), load_images(f"{spec}:test")
    video = len(train.shape) == 4
    targets = attributes(train)
    cfg = FeatureNetConfig(in_channels=train.shape[-3], image_size=train.shape[-1], video=video,
                           heads={name: k for name, (k, _) in targets.items()})
    torch.manual_seed(seed)
    model = FeatureNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    prefixes = [p for p in PREFIXES if p <= train.shape[0]] if video else [None]
    start, history = time.time(), []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(train), (batch_size,), generator=g)
        x = train.images[idx]
        if video:
            x = x[:, : prefixes[int(torch.randint(0, len(prefixes), (1,), generator=g))]]
        out = model(x)
        loss = sum(F.cross_entropy(out[name], t[idx]) for name, (_, t) in targets.items())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 50 == 0:
            history.append([step + 1, float(loss.detach())])
    model.eval()
    test_targets = attributes(test)
    accuracy = {}
    for p in prefixes:
        with torch.no_grad():
            outs = [model(part if p is None else part[:, :p]) for part in test.images.split(250)]
        for name, (_, t) in test_targets.items():
            pred = torch.cat([o[name] for o in outs]).argmax(1)
            accuracy[name if p is None else f"{name}, {p} frames"] = round(float((pred == t).double().mean()), 4)
    return model, {"test_accuracy": accuracy, "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr,
                   "wall_time_s": round(time.time() - start, 1), "final_loss": final_loss(history), "loss_history": history,
                   "prefixes": prefixes if video else None}


def final_loss(history: list) -> float | None:
    """The card's final loss: the mean of the last two logged losses (each the loss of one batch)."""
    last = [loss for _, loss in history[-2:]]
    return sum(last) / len(last) if last else None


def fvd(model: FeatureNet, clips_a: torch.Tensor, clips_b: torch.Tensor) -> float:
    """The Fréchet distance between two sets of clips on this network's features ("FVD (our video features)")."""
    return frechet_distance(features(model, clips_a), features(model, clips_b))


def degrade(clips: torch.Tensor, kind: str, generator: torch.Generator, sigma: float = 0.2) -> torch.Tensor:
    """The sanity checks of a video metric: "shuffle" (each clip's frames in a random order), "freeze" (every frame
    the first one), "noise" (Gaussian noise of std sigma, clipped to [-1, 1])."""
    if kind == "shuffle":
        order = torch.stack([torch.randperm(clips.shape[1], generator=generator) for _ in range(len(clips))])
        return torch.stack([c[o] for c, o in zip(clips, order)])
    if kind == "freeze":
        return clips[:, :1].expand_as(clips).clone()
    if kind == "noise":
        return (clips + sigma * torch.randn(clips.shape, generator=generator)).clamp(-1, 1)
    raise ValueError(f"unknown degradation {kind!r}; known: shuffle, freeze, noise")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = ArgumentParser(prog="python -m helpers.feature_net", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", required=True, help="moving-mnist:FRAMES or shapes:SIZE (data with known factors)")
    training_options(p, steps=1500, batch_size=64, lr=1e-3)
    args = p.parse_args(argv)
    try:
        check_new_checkpoint(args.out, args.overwrite)
        if ":" in args.dataset.partition(":")[2]:
            raise ValueError(f"--dataset takes the training data without a split (the test split is used for accuracy), "
                             f"got {args.dataset!r}")
        model, info = train_feature_net(args.dataset, args.steps, args.seed, args.batch_size, args.lr)
    except (ValueError, OSError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt.save_tensors(model.state_dict(), args.out / ckpt.MODEL)
    card = {"kind": "feature-net", "architecture": "feature-net", "model": model.config.to_dict(),
            "data": {"spec": args.dataset, "test": f"{args.dataset}:test"}, **info,
            "command": "python -m helpers.feature_net " + " ".join(shlex.quote(a) for a in argv)}
    ckpt.save_json(card, args.out / ckpt.CARD)
    print(f"test accuracy {info['test_accuracy']} after {args.steps} steps ({info['wall_time_s']:.0f} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
