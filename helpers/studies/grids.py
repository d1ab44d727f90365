"""The benchmark's grids of sampler configurations (helpers.studies.sampler_fid --grid NAME), one per question: each
entry is (sampler, steps, eta[, spacing[, clip]]), or (chain, steps) for a distilled student whose card gives its
sampler and grid."""
from __future__ import annotations

# (sampler, steps, eta[, spacing]), most informative first so that a partial run is already useful; the spacing is
# linspace unless given.
GRIDS = {
    "full": [("ddim", 10, 0.0), ("dpmpp-2m", 10, None), ("ddim", 50, 0.0), ("ddpm", 1000, None),
             ("ddim", 20, 0.0), ("dpmpp-2m", 20, None), ("heun", 5, None), ("heun", 10, None),
             ("ddpm", 10, None), ("ddpm", 20, None), ("ddpm", 50, None), ("ddpm", 100, None),
             ("ddim", 100, 0.0), ("dpmpp-2m", 50, None), ("heun", 25, None),
             ("ddim", 10, 0.2), ("ddim", 10, 0.5), ("ddim", 10, 1.0), ("ddim", 20, 0.2), ("ddim", 20, 0.5),
             ("ddim", 20, 1.0), ("ddim", 50, 0.2), ("ddim", 50, 0.5), ("ddim", 50, 1.0),
             ("ddim", 1000, 0.0), ("dpmpp-2m", 100, None), ("heun", 50, None),
             # Karras et al.'s sigma spacing (dense at low noise) for the ODE solvers at low NFE.
             ("heun", 5, None, "karras"), ("heun", 10, None, "karras"), ("dpmpp-2m", 10, None, "karras"),
             ("dpmpp-2m", 20, None, "karras"), ("ddim", 10, 0.0, "karras"),
             # Clipping x0_hat to [-1, 1], each sampler the other way from its default (issue 13).
             ("ddim", 50, 0.0, "linspace", False), ("dpmpp-2m", 20, None, "linspace", True),
             ("heun", 10, None, "linspace", True), ("ddim", 10, 0.0, "linspace", False),
             ("dpmpp-2m", 10, None, "linspace", True), ("ddpm", 1000, None, "linspace", False)],
    "quick": [("ddim", 10, 0.0), ("dpmpp-2m", 10, None), ("heun", 3, None), ("ddpm", 10, None)],
    # Notebook 06 (`make bench-distill`): the students against the teacher's samplers at the same NFE (on the students'
    # "trailing" grids, which start at t = 999; linspace's one-step grid would be t = 0) and DDIM-50 as in notebook 05.
    # DDPM-1000 (a million calls per set) is copied from notebook 05's CSV with --copy-from.
    "distill": [("student", 4), ("student", 8), ("student", 2), ("student", 1), ("ddim", 50, 0.0),
                *[("ddim", k, 0.0, "trailing") for k in (1, 2, 4, 8)],
                *[("dpmpp-2m", k, None, "trailing") for k in (2, 4, 8)],
                *[("ddpm", k, None, "trailing") for k in (1, 2, 4, 8)],
                ("student", 16), ("student", 32), ("student", 64)],
    "distill-quick": [("student", 4), ("ddim", 4, 0.0, "trailing")],
    # Issue 40, round 0: the first chain's conversion (v-128) against the teacher's own DDIM on the same grid, spacing
    # and clipping (trailing, no clipping), and the new round 0 (128 teacher steps to a 32-step student) against the
    # teacher's DDIM-32 and DDIM-128; then the new chain's students at their NFE (rows appear as rounds finish).
    "distill-round0": [("ddim", 128, 0.0, "trailing", False), ("student", 128), ("ddim", 32, 0.0, "trailing", False),
                       ("pd", 32)],
    "pd": [("pd", 16), ("pd", 8), ("pd", 4), ("pd", 2), ("ddim", 50, 0.0), ("ddim", 16, 0.0, "trailing", False),
           ("ddim", 8, 0.0, "trailing", False), ("ddim", 4, 0.0, "trailing", False), ("ddim", 2, 0.0, "trailing", False)],
    # Notebook 07 (`make bench-fast`): our samplers (lsq-ms, cn-2m; calibrations in the checkpoint's calibration.json)
    # against DPM-Solver++(2M), all on trailing grids; run with --blocks 5 --blocks-max-nfe 10 (five sets of N = 1000 up
    # to 10 NFE, one set with a bootstrap interval at 15 and 20).
    "fast": [(name, k, None, "trailing") for k in (4, 5, 6, 8, 10, 15, 20) for name in ("lsq-ms", "cn-2m", "dpmpp-2m")],
    # ... and the other baselines and the all-stochastic ablation, one set each (run with --blocks 1); the rows at 4 and
    # 8 NFE and the students come from notebook 06's CSV (--copy-from). Heun's K steps cost 2K - 1 calls: K = 3, 5, 8,
    # 10 give NFE 5, 9, 15, 19.
    "fast-baselines": [*[(name, k, eta, "trailing") for k in (5, 6, 10, 15, 20) for name, eta in (("ddim", 0.0), ("ddpm", None))],
                       *[("heun", k, None, "trailing") for k in (3, 5, 8, 10)],
                       *[("dpmpp-2m-sde", k, 1.0, "trailing") for k in (6, 10)]],
    "fast-quick": [("lsq-ms", 4, None, "trailing"), ("dpmpp-2m", 4, None, "trailing")],
    # Issue 39 (`make bench-samplers`): the strongest established samplers at each NFE against ours, every row five
    # sets of N = 1000 from the same seeds (per-set FIDs kept: paired_sets gives each difference its t-interval); all
    # on trailing grids, each sampler with its own default clipping; the reference is ancestral DDPM on 250 steps.
    "samplers": [*[(name, k, eta, "trailing") for k in (4, 5, 6, 8, 10, 15, 20)
                   for name, eta in (("ddim", 0.0), ("ddpm", None), ("dpmpp-2m", None), ("dpmpp-3m", None),
                                     ("sde-dpmpp-2m", None), ("sde-dpmpp-3m", None), ("unipc", None), ("unipc-3", None),
                                     ("deis", None), ("sa-solver", None), ("lsq-ms", None), ("cn-2m", None))],
                 # lsq-sde at 6 NFE only: FID 262 against SDE-DPM-Solver++(2M)'s 40 there (its least-squares fit to a
                 # stochastic teacher returns a conditional mean: blurred samples); kept as the measured negative result
                 ("lsq-sde", 6, None, "trailing"),
                 # gn-2m: its grid and per-step noise searched per step count (make calibrate-gn-2m), and its
                 # ablations at 6 and 10 NFE: the noise alone on the trailing grid, the grid alone with one eta
                 *[("gn-2m", k, None, "calibrated") for k in (4, 5, 6, 8, 10)],
                 *[(name, k, None, spacing) for k in (6, 10)
                   for name, spacing in (("gn-2m-noise", "trailing"), ("gn-2m-grid", "calibrated"))],
                 ("ddpm", 250, None, "trailing")],
    # Notebook 10 (`make bench-dit`): the latent DiT's steps question, DDIM and DPM-Solver++(2M) at 5 to 250 steps.
    # Ancestral DDPM at 50 and 100 steps too: is the ODE samplers' plateau the ODE's, as for the pixel U-Net (notebook 05)?
    "dit": [*[(name, k, eta) for k in (5, 10, 20, 50) for name, eta in (("ddim", 0.0), ("dpmpp-2m", None))],
            *[(name, k, eta) for k in (100, 250) for name, eta in (("ddim", 0.0), ("dpmpp-2m", None))],
            ("ddpm", 50, None), ("ddpm", 100, None)],
    "dit-quick": [("ddim", 5, 0.0), ("dpmpp-2m", 5, None)],
    # Notebook 09 (`make bench-shapes`): the colour models at each size, DDIM and ancestral DDPM at several step counts,
    # scored on the shapes' attribute classifier of that size (--features feature-net:FOLDER --reference shapes:S:test).
    "shapes": [("ddim", 10, 0.0), ("ddim", 25, 0.0), ("ddim", 50, 0.0), ("ddpm", 50, None), ("ddim", 100, 0.0),
               ("ddpm", 100, None), ("ddpm", 250, None)],
    "shapes-quick": [("ddim", 5, 0.0), ("ddpm", 5, None)],
}
STUDENTS = "checkpoints/distill/v-{}"  # ("student", K) rows: the first chain (600-1000 steps a round)
# ("pd", K) rows: the chain trained to convergence by the held-out rule (make distill-mnist, issue 40)
CHAINS = {"student": ("student", STUDENTS), "pd": ("pd", "checkpoints/pd-mnist/eps-{}")}
