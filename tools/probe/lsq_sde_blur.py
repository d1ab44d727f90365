"""Where lsq-sde loses its quality (issue 39): the shipped 6-step calibration against two changes of it and two
baselines, on images 0..N-1 of seed 0 (the same x_T for every row), FID on MNIST-CNN features against the test digits
(one set, no interval: a diagnostic, not a benchmark row) and the pixels' spread.

    OMP_NUM_THREADS=1 python tools/probe/lsq_sde_blur.py [N]     # N = 500: about 8 minutes of one core

Rows: the calibration as shipped; its last step replaced by the network's own clean-image estimate (x_0 = D_newest,
as ancestral DDPM's last step; the fit averages the last three estimates instead); its noise replaced by the
respaced posterior's (Brownian); SDE-DPM-Solver++(2M) (diffusers); respaced ancestral DDPM.
"""
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, so that `helpers` imports
from helpers.denoisers import from_checkpoint
from helpers.evaluation.metrics import compute_features, frechet_distance, reference_features
from helpers.paths import ROOT
from helpers.samplers import generate


def main(n: int = 500, steps: int = 6) -> None:
    den, _ = from_checkpoint(str(ROOT / "checkpoints" / "ddpm-mnist"), ema=True)
    ref = reference_features("mnist:test", "mnist-cnn")
    shipped = json.loads((ROOT / "checkpoints" / "ddpm-mnist" / "calibration.json").read_text())
    coefficients = shipped["lsq-sde"]["fits"][str(steps)]["coefficients"]
    last_is_x0_hat = copy.deepcopy(coefficients)
    last_is_x0_hat[-1] = [0.0, 1.0] + [0.0] * (len(coefficients[-1]) - 2)
    rows = {"lsq-sde (shipped)": dict(sampler="lsq-sde"),
            "lsq-sde, last step = x0_hat": dict(sampler="lsq-sde", coefficients=last_is_x0_hat),
            "lsq-sde, Brownian noise": dict(sampler="lsq-sde", noise="brownian"),
            "sde-dpmpp-2m": dict(sampler="sde-dpmpp-2m"), f"ddpm-{steps}": dict(sampler="ddpm")}
    for name, kw in rows.items():
        start = time.time()
        x = generate(den, n, 0, steps=steps, spacing="trailing", batch_size=250, **kw)
        fid = frechet_distance(compute_features(x, "mnist-cnn"), ref)
        print(f"{name}: FID at N={n} {fid:.1f}, pixel std {x.std():.3f} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
