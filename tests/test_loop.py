"""The shared training loop (helpers.training.loop) with a toy objective (tests/toy_loop.py): the card it writes, exact
resume after a stop, after SIGKILL and after SIGTERM, snapshots, and refusing to overwrite a run."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from helpers import checkpoints as ckpt
from helpers.training.loop import BatchOrder, RunState, lr_at, step_generator
from helpers.paths import ROOT
from tests.toy_loop import ToyConfig, train

FILES = ("model", "ema", "optimizer")


def tensors(folder):
    return {name: load_file(str(folder / f"{name}.safetensors")) for name in FILES}


def assert_identical(a, b):
    for name in FILES:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), f"{name}/{key}"


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "straight"
    card = train(out, 30)
    return out, card


def test_card_of_the_toy_run(straight):
    out, card = straight
    assert card["kind"] == "toy" and card["step"] == 30 and card["command"] == "toy --steps 30"
    assert [row[0] for row in card["loss_history"]] == [5, 10, 15, 20, 25, 30]
    assert all(len(row) == 3 for row in card["loss_history"])  # step, loss, the logged part
    assert card["loss_window"] == [] and card["resumed_with"] == []
    assert card["ema"]["optimization_step"] == 30
    assert card["final_loss"] == pytest.approx((card["loss_history"][-1][1] + card["loss_history"][-2][1]) / 2)
    first, last = card["loss_history"][0][1], card["loss_history"][-1][1]
    assert last < 0.5 * first  # it learns


def test_stop_and_resume_is_bit_identical(straight, tmp_path):
    out = tmp_path / "resumed"
    train(out, 12)  # stops between two checkpoints and two log entries
    assert ckpt.read_card(out)["loss_window"]  # two steps since the last log entry are carried over
    card = train(out, 30, resume=True)
    assert_identical(tensors(straight[0]), tensors(out))
    assert card["loss_history"] == straight[1]["loss_history"]
    assert card["resumed_with"] == ["toy --steps 30"]


def run_until_checkpoint(out, sig):
    """Start the toy run in a subprocess, send `sig` once it has written a checkpoint at step >= 10."""
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-m", "tests.toy_loop", "--out", str(out), "--steps", "1000000"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (ckpt.has_checkpoint(out) and ckpt.read_card(out)["step"] >= 10):
            time.sleep(0.05)
        proc.send_signal(sig)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_bit_identical(straight, tmp_path, sig):
    out = tmp_path / "killed"
    returncode = run_until_checkpoint(out, sig)
    # SIGKILL ends the process at once; on SIGTERM the loop saves the step it reached and returns normally.
    assert returncode == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
    step = ckpt.read_card(out)["step"]
    if step > 30:
        pytest.skip(f"the run had passed step 30 ({step}) before the signal arrived")
    assert step >= 10
    train(out, 30, resume=True)
    assert_identical(tensors(straight[0]), tensors(out))


def test_resuming_a_finished_run_changes_nothing(straight, tmp_path):
    """`make train-...` runs the command again with --resume on a finished run: no step, no new card line."""
    import shutil

    out = tmp_path / "finished"
    shutil.copytree(straight[0], out)
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    card = train(out, 30, resume=True)
    assert card["step"] == 30 and card["resumed_with"] == []
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before


def test_existing_run_needs_resume(straight):
    with pytest.raises(ValueError, match="already holds a checkpoint; pass --resume"):
        train(straight[0], 40)


def test_snapshots_every_keep_every_steps(tmp_path):
    from tests.toy_loop import toy_objective
    from helpers.training.loop import fit

    cfg = ToyConfig(steps=6, keep_every=3, checkpoint_every=100)
    torch.manual_seed(cfg.seed)
    fit(torch.nn.Linear(4, 3), toy_objective(cfg), cfg, tmp_path / "run", lambda: {"kind": "toy"}, progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == ["step-000003", "step-000006"]


def test_batches_depend_on_seed_and_step_only():
    order = BatchOrder(10, 4, seed=1)
    # Batches run across epoch boundaries: positions 8..11 are the last two of epoch 0 and the first two of epoch 1.
    assert torch.equal(BatchOrder(10, 4, seed=1)(2), order(2))
    epoch0 = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    epoch1 = torch.randperm(10, generator=torch.Generator().manual_seed(2))
    assert order(2).tolist() == [*epoch0[8:].tolist(), *epoch1[:2].tolist()]
    assert torch.equal(torch.randn(3, generator=step_generator(0, 5)), torch.randn(3, generator=step_generator(0, 5)))
    assert not torch.equal(torch.randn(3, generator=step_generator(0, 5)), torch.randn(3, generator=step_generator(0, 6)))


def test_warmup_and_final_loss():
    cfg = ToyConfig(lr=1.0, warmup=4)
    assert [lr_at(k, cfg) for k in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert RunState(losses=[[5, 1.0], [10, 3.0]]).final_loss() == 2.0
    assert RunState(window=[[1.0, 9.0], [3.0, 9.0]]).final_loss() == 2.0  # no log entry yet: the window's losses
    assert RunState().final_loss() is None


def test_a_save_killed_midway_is_completed_or_discarded(straight, tmp_path):
    """save_checkpoint is a transaction: a kill after its commit record is rolled forward on resume, a kill before it
    leaves the previous checkpoint; either way the resumed run ends bit-identical."""
    import shutil

    for stage in ("before commit", "after commit"):
        out = tmp_path / stage.replace(" ", "-")
        train(out, 10)
        later = tmp_path / f"{out.name}-20"
        shutil.copytree(out, later)
        train(later, 20, resume=True)  # the files a save at step 20 would write
        for name in ("model.safetensors", "ema.safetensors", "optimizer.safetensors", "model_card.json"):
            shutil.copy(later / name, out / (name + ckpt.NEXT))
        if stage == "after commit":  # the commit record was written and one file already moved into place
            (out / ckpt.COMMIT).write_text('{"files": ["model.safetensors", "ema.safetensors", '
                                           '"optimizer.safetensors", "model_card.json"]}')
            (out / "model.safetensors.next").replace(out / "model.safetensors")
        card = train(out, 30, resume=True)
        assert_identical(tensors(straight[0]), tensors(out))
        assert not list(out.glob("*.next")) and not (out / ckpt.COMMIT).exists()
        assert card["loss_history"] == straight[1]["loss_history"]


def test_the_cool_down_decays_below_the_rate_from_its_first_update_to_its_last():
    """With the stopping rule the cool-down's D updates run at lr (D - j) / (D + 1), j = 0 .. D - 1: below the
    constant rate from the first, never 0, the last at lr / (D + 1)."""
    from dataclasses import dataclass

    from helpers.training.loop import LoopConfig, cooldown_steps

    cfg = LoopConfig(lr=1.0, warmup=0, cooldown=0.25)
    D = cooldown_steps(40, cfg)
    assert D == 10
    rates = [lr_at(s, cfg, decay_start=40) for s in range(40, 40 + D)]
    assert rates[0] == pytest.approx(10 / 11) and rates[-1] == pytest.approx(1 / 11)
    assert all(a > b for a, b in zip(rates, rates[1:])) and lr_at(39, cfg, decay_start=None) == 1.0
    assert lr_at(40, LoopConfig(lr=1.0, warmup=0, cooldown=0.01), decay_start=40) == pytest.approx(0.5)  # D = 1
