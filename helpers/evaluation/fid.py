"""FID and KID of a folder of generated PNGs against real images, with the feature network named in the output.

    python -m helpers.fid --fake samples/ddpm-1000 --real mnist:test --features mnist-cnn --num 2000
    python -m helpers.fid --sanity      # the metric's floor by N (real vs real) and its ordering on corruptions

The workbook scores samples at N = 1000 (metrics.EVAL_N): there the floor is about 13 and its spread about 3 (see
--sanity), and 1000 images cost about an hour of CPU at 1000 sampling steps.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser
from helpers.datasets.images import DataUnavailableError, load_pngs
from helpers.evaluation.metrics import EVAL_N, FEATURES, FeaturesUnavailableError, compute_features, reference_features, scores


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.fid", description=__doc__.split("\n")[0])
    p.add_argument("--fake", type=Path, help="folder of generated PNGs")
    p.add_argument("--sanity", action="store_true", help="print the real-vs-real floor by N and corruption scores")
    p.add_argument("--boot", type=positive_int, default=10, help="bootstrap draws per N for --sanity")
    p.add_argument("--real", default="mnist:test", help="a data set spec (mnist:test, digits:test) or a folder of PNGs")
    p.add_argument("--features", choices=FEATURES, default="mnist-cnn")
    p.add_argument("--num", type=positive_int, default=None, help="use the first N fake images (default: all)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of KID's random subsets")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)
    if args.sanity:
        floor, corruptions = sanity(args.features, args.seed, args.boot)
        print(f"FID floor with {args.features} features: N random training digits against the 10000 test digits, "
              f"{args.boot} draws per N (seed {args.seed})")
        print(floor.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(corruptions.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        return 0
    if args.fake is None:
        p.error("--fake is required (or --sanity)")
    try:
        real = reference_features(args.real, args.features)  # a wrong --real is said before any count of --fake
        fake = compute_features(load_pngs(args.fake, limit=args.num), args.features)
        if len(fake) <= fake.shape[1]:
            raise ValueError(f"FID needs more images than feature dimensions (the covariance of N <= {fake.shape[1]} "
                             f"{args.features} features is singular, and FID's bias grows as 1/N); got N = {len(fake)}. "
                             f"Use at least {fake.shape[1] + 1} images; notebook 03 shows the floor by N")
        result = scores(fake, real, args.features, seed=args.seed)
    except (ValueError, OSError, FileNotFoundError, FeaturesUnavailableError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({**result.__dict__, "fake": str(args.fake), "real": args.real}) if args.json else result)
    return 0


def sanity(features: str = "mnist-cnn", seed: int = 0, boot: int = 10, n: int = EVAL_N,
           ns=(500, 1000, 2000, 5000, 10000), pool_size: int | None = None):
    """Real training digits (all 50,000, or the first `pool_size`) against the test set: FID by N with its spread
    over `boot` draws (the floor a perfect model would get at that N), and FID/KID of uniform noise, patch-shuffled,
    blurred and real digits at N = n (they should rank worst to best). Returns the two tables (pandas DataFrames)."""
    import pandas as pd
    import torch

    from helpers.datasets.images import load_images
    from helpers.evaluation.metrics import degrade, fid_by_sample_size, label

    real = reference_features("mnist:test", features)
    train = load_images("mnist:train").images[:pool_size]  # the pool of "perfect samples"
    pool = compute_features(train, features)
    floor = fid_by_sample_size(pool, real, list(ns), num_boot=boot, seed=seed)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=g)[:n]
    rows = []
    for kind in ("noise", "shuffle", "blur", "real"):
        feats = pool[idx.numpy()] if kind == "real" else compute_features(degrade(train[idx], kind, g), features)
        s = scores(feats, real, features, seed)
        rows.append({"images": kind, label("FID", features, n): s.fid, label("KID", features, n): s.kid,
                     "KID std": s.kid_std})
    return floor, pd.DataFrame(rows)


if __name__ == "__main__":
    sys.exit(main())
