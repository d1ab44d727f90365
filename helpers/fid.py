"""FID and KID of a folder of generated PNGs against real images, with the feature network named in the output.

    python -m helpers.fid --fake samples/ddpm-1000 --real mnist:test --features mnist-cnn --num 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .data import DataUnavailableError, load_pngs
from .metrics import FEATURES, FeaturesUnavailableError, compute_features, reference_features, scores


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.fid", description=__doc__.split("\n")[0])
    p.add_argument("--fake", type=Path, required=True, help="folder of generated PNGs")
    p.add_argument("--real", default="mnist:test", help="a data set spec (mnist:test, digits:test) or a folder of PNGs")
    p.add_argument("--features", choices=FEATURES, default="mnist-cnn")
    p.add_argument("--num", type=int, default=None, help="use the first N fake images (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of KID's random subsets")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)
    try:
        fake = compute_features(load_pngs(args.fake, limit=args.num), args.features)
        real = reference_features(args.real, args.features)
        result = scores(fake, real, args.features, seed=args.seed)
    except (ValueError, FileNotFoundError, FeaturesUnavailableError, DataUnavailableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps({**result.__dict__, "fake": str(args.fake), "real": args.real}) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
