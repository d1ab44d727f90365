"""Notebook 03's sweep runner: the grid, one tiny run trained, evaluated and tabulated, and its errors."""
import pytest

from helpers import checkpoints as ckpt
from helpers.studies import sweep


def test_the_grid_covers_4_schedules_x_3_losses_plus_vlb_and_a_replicate():
    names = [r.name for r in sweep.RUNS]
    assert len(names) == len(set(names)) == 14
    assert {(r.schedule, r.loss) for r in sweep.RUNS if r.weighting == "none" and r.seed == 0} == {
        (s, l) for s in ("linear", "cosine", "quadratic", "sigmoid") for l in ("l2", "l1", "huber")}
    assert "linear-l2-vlb" in names and "linear-l2-seed1" in names
    args = sweep.get_run("sigmoid-huber").train_args(sweep.SWEEP_DIR / "x")
    assert args[args.index("--schedule") + 1] == "sigmoid" and args[args.index("--loss") + 1] == "huber"
    assert args[args.index("--seed") + 1] == "0" and args[args.index("--steps") + 1] == str(sweep.BUDGET["steps"])


def test_replicates_with_another_seed_and_the_long_budget():
    run = sweep.get_run("sigmoid-l1-seed2")
    assert (run.schedule, run.loss, run.weighting, run.seed, run.name) == ("sigmoid", "l1", "none", 2, "sigmoid-l1-seed2")
    assert sweep.get_run("linear-l2-seed1") in sweep.RUNS  # the grid's own replicate
    for bad in ("sigmoid-l1-seed0", "sigmoid-l1-seedx", "linear-l2-vlb-seed1-seed2"):
        with pytest.raises(ValueError, match="unknown run"):
            sweep.get_run(bad)
    long = sweep.BUDGETS["long"]
    assert long["steps"] == 4 * sweep.BUDGET["steps"] and {k: v for k, v in long.items() if k != "steps"} == {
        k: v for k, v in sweep.BUDGET.items() if k != "steps"}  # only the number of steps differs
    assert sweep.FOLDERS["long"].name == "sweep-long"


def test_unknown_run_is_refused(capsys):
    with pytest.raises(ValueError, match="unknown run 'linear-l3'; known runs: linear-l2"):
        sweep.get_run("linear-l3")
    assert sweep.main(["train", "--only", "linear-l3"]) == 2
    assert "unknown run" in capsys.readouterr().err


def test_evaluating_an_untrained_run_says_how_to_train_it(tmp_path, capsys):
    assert sweep.main(["evaluate", "--only", "cosine-l1", "--folder", str(tmp_path)]) == 2
    assert "python -m helpers.sweep train --only cosine-l1" in capsys.readouterr().err


def test_one_tiny_run_trains_evaluates_and_tabulates(tmp_path):
    run = sweep.get_run("cosine-huber")
    budget = {**sweep.BUDGET, "steps": 2, "batch-size": 8, "checkpoint-every": 2}
    card = sweep.train_run(run, tmp_path, budget)
    assert card["step"] == 2 and card["schedule"]["name"] == "cosine" and card["train"]["loss"] == "huber"
    assert sweep.train_run(run, tmp_path, budget)["wall_time_s"] == card["wall_time_s"]  # finished: left alone
    result = sweep.evaluate_run(tmp_path / run.name, num=8, steps=2)
    assert result["N"] == 8 and result["features"] == "mnist-cnn" and result["fid"] > 0
    assert result["fid_lo"] < result["fid"] < result["fid_hi"] and 0 <= result["confident_fraction"] <= 1
    assert result["command"].endswith("--num 8 --folder " + tmp_path.as_posix())
    card = ckpt.read_card(tmp_path / run.name)
    card["evaluation"] = result
    ckpt.save_json(card, tmp_path / run.name / ckpt.CARD)
    table = sweep.results_table(tmp_path)
    assert list(table.run) == ["cosine-huber"]
    assert table["FID (MNIST-CNN features, N=8)"].iloc[0] == result["fid"]
    assert table["confident >= 0.9"].iloc[0] == result["confident_fraction"]
    sweep.train_run(sweep.get_run("cosine-huber-seed1"), tmp_path, budget)  # a replicate joins the table
    assert list(sweep.results_table(tmp_path).run) == ["cosine-huber", "cosine-huber-seed1"]
    assert sweep.runs_in(tmp_path)[-1].name == "cosine-huber-seed1"  # `evaluate` with no --only scores it too


def test_a_run_stopped_by_sigterm_says_so_and_exits_143(tmp_path, monkeypatch, capsys):
    """A sweep that SIGTERM stops (its training saved, exit status 143) reports one line and the status, no traceback."""
    from helpers.training import ddpm as train
    from helpers.cli import INTERRUPTED

    run = sweep.get_run("linear-l2")
    sweep.train_run(run, tmp_path, {**sweep.BUDGET, "steps": 1, "batch-size": 8, "checkpoint-every": 1})
    monkeypatch.setattr(train, "main", lambda argv: INTERRUPTED)  # what the training returns when SIGTERM stops it
    with pytest.raises(sweep.Stopped, match="linear-l2 stopped by SIGTERM at step 1, saved"):
        sweep.train_run(run, tmp_path, {**sweep.BUDGET, "steps": 2, "batch-size": 8, "checkpoint-every": 1})
    monkeypatch.setattr(train, "main", lambda argv: 1)  # a real failure still raises
    with pytest.raises(RuntimeError, match="training linear-l2 failed"):
        sweep.train_run(run, tmp_path, {**sweep.BUDGET, "steps": 2, "batch-size": 8, "checkpoint-every": 1})

    def stopped(*_):
        raise sweep.Stopped("linear-l2 stopped by SIGTERM at step 1, saved; the same command continues it")
    monkeypatch.setattr(sweep, "train_run", stopped)
    capsys.readouterr()  # the tiny training's progress bar
    assert sweep.main(["train", "--only", "linear-l2", "--folder", str(tmp_path)]) == INTERRUPTED
    assert capsys.readouterr().err.strip().splitlines() == [
        "linear-l2 stopped by SIGTERM at step 1, saved; the same command continues it"]
