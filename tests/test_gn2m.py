"""gn-2m (helpers.samplers.gn2m): the calibrated grid found by default, the sampler's determinism, per-image noise and
exact NFE, its equality with SDE-DPM-Solver++(2M) at the same settings, the grid moves and the coordinate search."""
import pytest
import torch

from helpers.samplers import generate
from helpers.samplers.gn2m import ETAS, log_snr, moved, search
from helpers.samplers.registry import image_generators, initial_noise
from helpers.samplers.solvers import sample_dpmpp_2m_sde
from helpers.schedules import Schedule

GRID = [999, 500, 120]
ETA = [1.0, 0.25, 0.0]


@pytest.fixture
def calibrated(tiny_denoiser):
    tiny_denoiser.calibration = {"gn-2m": {"fits": {"3": {"timesteps": GRID, "eta": ETA}}, "spacing": "calibrated"}}
    yield tiny_denoiser
    tiny_denoiser.calibration = None


def test_the_sampler_is_sde_dpmpp_2m_on_its_calibrated_grid_with_exact_nfe_and_per_image_noise(calibrated):
    den = calibrated
    den.nfe = 0
    a = generate(den, 4, 7, (1, 8, 8), sampler="gn-2m", steps=3, batch_size=4)  # spacing: the sampler's, calibrated
    assert den.nfe == 3
    gens = image_generators(7, range(4))
    ref = sample_dpmpp_2m_sde(den, initial_noise(gens, (1, 8, 8)), torch.tensor(GRID), gens, eta=ETA)
    assert torch.equal(a, ref)  # SDE-DPM-Solver++(2M) on the calibrated grid with its etas, exactly
    assert torch.equal(a, generate(den, 4, 7, (1, 8, 8), sampler="gn-2m", steps=3, batch_size=4))
    assert (a - generate(den, 4, 7, (1, 8, 8), sampler="gn-2m", steps=3, batch_size=2)).abs().max().item() < 1e-5
    assert (a - generate(den, 4, 8, (1, 8, 8), sampler="gn-2m", steps=3, batch_size=4)).abs().max().item() > 0.1


def test_missing_or_mismatched_calibrations_are_refused_in_one_line(calibrated, tiny_denoiser):
    with pytest.raises(ValueError, match=r"--spacing calibrated: the gn-2m sampler has no calibrated grid of 4 steps "
                                         r"for this model \(calibrated: \[3\]\): run `python -m helpers.samplers.gn2m "
                                         r"--checkpoint <its folder> --steps 4`"):
        generate(calibrated, 1, 0, (1, 8, 8), sampler="gn-2m", steps=4)
    with pytest.raises(ValueError, match=r"--spacing calibrated: ddim has no calibrated grid \(the samplers that have "
                                         r"one: gn-2m, gn-2m-grid\)"):
        generate(calibrated, 1, 0, (1, 8, 8), sampler="ddim", steps=3, spacing="calibrated")
    with pytest.raises(ValueError, match="calibrated on the grid .* use --spacing calibrated"):
        generate(calibrated, 1, 0, (1, 8, 8), sampler="gn-2m", steps=3, spacing="trailing")
    # an explicit eta per step runs on any grid, the calibration unused
    generate(calibrated, 1, 0, (1, 8, 8), sampler="gn-2m", steps=3, spacing="trailing", eta=[0.5, 0.5, 0.0])


def test_a_move_goes_the_share_of_the_log_snr_gap_and_never_onto_a_neighbour():
    lam = log_snr(Schedule.from_name("linear", 1000).alpha_bar)
    grid = [999, 666, 333]
    up = moved(grid, 1, 1 / 3, lam)  # towards 333 (higher log-SNR)
    assert 333 < up[1] < 666 and up[0] == 999 and up[2] == 333
    target = lam[666] + (lam[333] - lam[666]) / 3
    assert (lam[up[1]] - target).abs() <= (lam[up[1] - 1] - lam[up[1]]).abs()  # the nearest integer timestep
    down = moved(grid, 2, -1 / 3, lam)  # the last inner timestep towards 666
    assert 333 < down[2] < 666
    last_up = moved(grid, 2, 1 / 3, lam)  # towards t = 0
    assert 0 <= last_up[2] < 333
    assert moved([999, 2, 1], 2, 1 / 3, lam) is None  # a third of the gap to t = 0 rounds back to t = 1
    assert moved([999, 998, 1], 1, -1 / 3, lam) is None


def test_the_search_starts_from_the_better_end_and_scores_each_setting_once():
    """With a criterion that prefers eta 1 and never rewards a move, the search keeps the eta-1 start, scores no
    setting twice, and tries the finer moves before it stops."""
    lam = log_snr(Schedule.from_name("linear", 1000).alpha_bar)
    calls = []

    def score(grid, etas):
        calls.append((tuple(grid), tuple(etas)))
        return 10.0 - sum(etas) + (grid != [999, 749, 499, 249])
    found = search(score, 1000, 4, lam, sweeps=2, log=lambda *_: None)
    assert found["eta"] == [1.0, 1.0, 1.0, 0.0] and found["timesteps"] == [999, 749, 499, 249]
    assert found["starts"]["eta 1"]["distance"] < found["starts"]["eta 0"]["distance"]
    assert len(calls) == len(set(calls)) == len(found["history"])
    moved_t1 = {c[0][1] for c in calls} - {749}
    assert len(moved_t1) == 4  # t_1 moved up and down by a third of the gap, then by a sixth


def test_the_search_keeps_only_improvements_and_starts_from_the_better_end():
    """On a made-up criterion with its minimum at eta = 0.5 everywhere and t_1 near 400 (4 steps), coordinate search
    from the trailing grid finds eta 0.5 on every noisy step, moves t_1 down, and never reports a candidate worse
    than the best before it."""
    lam = log_snr(Schedule.from_name("linear", 1000).alpha_bar)
    score = lambda grid, etas: sum((e - 0.5) ** 2 for e in etas[:-1]) + abs(grid[1] - 400) / 1000  # noqa: E731
    found = search(score, 1000, 4, lam, sweeps=2, log=lambda *_: None)
    assert found["eta"][:-1] == [0.5] * 3 and found["eta"][-1] == 0.0
    assert found["timesteps"][0] == 999 and found["timesteps"][1] < 749
    assert found["distance"] == min(h["distance"] for h in found["history"])
    assert set(found["starts"]) == {"eta 0", "eta 1"} and all(e in ETAS for e in found["eta"])


def test_the_ablations_read_their_own_calibrations_and_search_one_thing_each(tiny_denoiser):
    """gn-2m-noise samples the trailing grid with its own etas, gn-2m-grid its own grid; `moves` restricts the search:
    "noise" never moves the grid, "grid" keeps one eta on every step."""
    from helpers.schedules import get_timesteps

    trailing = get_timesteps(1000, 3, "trailing").tolist()
    tiny_denoiser.calibration = {"gn-2m-noise": {"fits": {"3": {"timesteps": trailing, "eta": ETA}}},
                                 "gn-2m-grid": {"fits": {"3": {"timesteps": GRID, "eta": [1.0, 1.0, 0.0]}}}}
    try:
        for sampler, grid, eta in (("gn-2m-noise", trailing, ETA), ("gn-2m-grid", GRID, [1.0, 1.0, 0.0])):
            gens = image_generators(3, range(2))  # x_T first, then each step's noise, from each image's own stream
            ref = sample_dpmpp_2m_sde(tiny_denoiser, initial_noise(gens, (1, 8, 8)), torch.tensor(grid), gens, eta=eta)
            assert torch.equal(generate(tiny_denoiser, 2, 3, (1, 8, 8), sampler=sampler, steps=3), ref), sampler
        with pytest.raises(ValueError, match="gn-2m-noise sampler has no calibration of 4 steps .* --search noise`"):
            generate(tiny_denoiser, 1, 0, (1, 8, 8), sampler="gn-2m-noise", steps=4)
    finally:
        tiny_denoiser.calibration = None
    lam = log_snr(Schedule.from_name("linear", 1000).alpha_bar)
    score = lambda grid, etas: sum((e - 0.5) ** 2 for e in etas[:-1]) + abs(grid[1] - 400) / 1000  # noqa: E731
    noise = search(score, 1000, 4, lam, sweeps=2, log=lambda *_: None, moves="noise")
    assert noise["timesteps"] == get_timesteps(1000, 4, "trailing").tolist() and noise["eta"][:-1] == [0.5] * 3
    grid = search(score, 1000, 4, lam, sweeps=2, log=lambda *_: None, moves="grid")
    assert grid["eta"] in ([0.0] * 3 + [0.0], [1.0] * 3 + [0.0]) and grid["timesteps"][1] < 749  # a start's etas


def test_the_shipped_calibration_serves_the_cli_with_no_other_option(tmp_path):
    """`python -m helpers.sample --checkpoint checkpoints/ddpm-mnist --sampler gn-2m --steps K` finds the shipped
    calibration of K steps and its grid by itself (--spacing calibrated, recorded), with K network calls."""
    import json

    from helpers.paths import ROOT
    from helpers.sample import main as sample_main

    fits = json.loads((ROOT / "checkpoints" / "ddpm-mnist" / "calibration.json").read_text())["gn-2m"]["fits"]
    k = min(int(k) for k in fits)
    assert len(fits[str(k)]["timesteps"]) == len(fits[str(k)]["eta"]) == k and fits[str(k)]["timesteps"][0] == 999
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(ROOT / "checkpoints" / "ddpm-mnist"), "--sampler", "gn-2m", "--steps",
                        str(k), "--num", "2", "--out", str(out)]) == 0
    record = json.loads((out / "sampling.json").read_text())
    assert (record["sampler"], record["steps"], record["spacing"], record["nfe"]) == ("gn-2m", k, "calibrated", k)
    assert len(list(out.glob("*.png"))) == 2


def test_the_cli_refuses_an_uncalibrated_step_count_before_it_writes(tmp_path, capsys):
    from helpers.paths import ROOT
    from helpers.sample import main as sample_main

    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(ROOT / "checkpoints" / "ddpm-mnist"), "--sampler", "gn-2m", "--steps",
                        "7", "--num", "2", "--out", str(out)]) == 2
    assert "no calibrated grid of 7 steps" in capsys.readouterr().err and not out.exists()
    assert sample_main(["--checkpoint", str(ROOT / "checkpoints" / "ddpm-mnist"), "--sampler", "gn-2m", "--steps",
                        "4", "--spacing", "trailing", "--num", "2", "--out", str(out)]) == 2
    assert "use --spacing calibrated" in capsys.readouterr().err and not out.exists()
