"""A small CNN classifier of MNIST digits, trained separately from the diffusion models, to judge their samples
(class shares, confident fraction) and, later, to provide offline features for FID.

    python -m helpers.classifier --out checkpoints/mnist-cnn --epochs 4 --seed 0
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from helpers import checkpoints as ckpt
from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser, check_new_checkpoint
from helpers.datasets.images import load_images
from helpers.models.classifier import DigitCNN
from helpers.paths import ROOT


@torch.no_grad()
def predict(model: DigitCNN, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Class probabilities [N x 10] of [-1, 1] images [N x 1 x 28 x 28]."""
    model.eval()
    device = next(model.parameters()).device
    out = [F.softmax(model(images[i : i + batch_size].to(device)), dim=1).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def digit_report(probs: torch.Tensor, threshold: float = 0.9) -> dict:
    """How digit-like a set of samples is: the share classified with confidence >= threshold, and class shares."""
    conf, label = probs.max(1)
    shares = torch.bincount(label, minlength=probs.shape[1]).float() / len(label)
    return {
        "num": len(label),
        "confident_fraction": round(float((conf >= threshold).double().mean()), 4),
        "threshold": threshold,
        "mean_confidence": round(float(conf.mean()), 4),
        "class_shares": [round(float(s), 4) for s in shares],
        "min_share": round(float(shares.min()), 4),
        "max_share": round(float(shares.max()), 4),
    }


def load_classifier(folder: str | Path | None = None, device="cpu") -> DigitCNN:
    folder = Path(folder) if folder else ROOT / "checkpoints" / "mnist-cnn"
    return ckpt.load_model(folder, device=device)[0]


def train_classifier(epochs: int, seed: int, batch_size: int = 128, lr: float = 1e-3) -> tuple[DigitCNN, dict]:
    """Adam on the 50k training digits with random shifts of up to 2 pixels; accuracy on the 10k test digits."""
    torch.manual_seed(seed)
    train, test = load_images("mnist:train"), load_images("mnist:test")
    model = DigitCNN()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(train), generator=g).split(batch_size):
            dx, dy = torch.randint(-2, 3, (2,), generator=g).tolist()
            x = torch.roll(train.images[idx], shifts=(dx, dy), dims=(2, 3))
            loss = F.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    probs = predict(model, test.images)
    acc = float((probs.argmax(1) == test.labels).float().mean())
    return model, {"test_accuracy": acc, "epochs": epochs, "seed": seed, "wall_time_s": round(time.time() - start, 1)}


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.classifier", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("checkpoints/mnist-cnn"))
    p.add_argument("--overwrite", action="store_true", help="replace a checkpoint already in --out")
    p.add_argument("--epochs", type=positive_int, default=4)
    p.add_argument("--seed", type=non_negative_int, default=0)
    args = p.parse_args(argv)
    try:
        check_new_checkpoint(args.out, args.overwrite)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    model, info = train_classifier(args.epochs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt.save_tensors(model.state_dict(), args.out / ckpt.MODEL)
    card = {"kind": "mnist-classifier", "feature_dim": model.head.in_features, "data": "mnist:train (50k), tested on mnist:test (10k)",
            **info, "command": "python -m helpers.classifier " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))}
    ckpt.save_json(card, args.out / ckpt.CARD)
    print(f"test accuracy {info['test_accuracy']:.4f} after {args.epochs} epochs ({info['wall_time_s']:.0f} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
