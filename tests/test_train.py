"""Training: exact resume, several processes under Accelerate, checkpoints and their errors."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from helpers import checkpoints as ckpt
from helpers.paths import ROOT
from helpers.schedules import Schedule
from helpers.training.ddpm import main as train_main

TINY = ["--dataset", "digits", "--batch-size", "32", "--base-channels", "16", "--channel-mults", "1,2",
        "--attention-resolutions", "4", "--log-every", "10", "--checkpoint-every", "10", "--seed", "3"]


def weights(folder, name="model"):
    return load_file(str(folder / f"{name}.safetensors"))


def max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """30 steps in one go: the reference for the resume and multi-process tests."""
    out = tmp_path_factory.mktemp("straight")
    assert train_main(TINY + ["--out", str(out), "--steps", "30"]) == 0
    return out


def test_card_records_the_run(straight):
    card = ckpt.read_card(straight)
    assert card["step"] == 30 and card["train"]["seed"] == 3
    assert card["schedule"] == {"name": "linear", "T": 1000, "fingerprint": Schedule.from_name("linear", 1000).fingerprint()}
    assert [s for s, _ in card["loss_history"]] == [10, 20, 30]
    assert card["command"].startswith("python -m helpers.train --dataset digits")
    assert card["data"]["num_images"] == 1437 and card["data"]["shape"] == [1, 8, 8]
    assert card["final_loss"] == pytest.approx((card["loss_history"][-1][1] + card["loss_history"][-2][1]) / 2)


def test_resume_after_stop_gives_identical_weights(straight, tmp_path):
    out = tmp_path / "resumed"
    assert train_main(TINY + ["--out", str(out), "--steps", "12"]) == 0  # stops between two checkpoints
    assert train_main(["--out", str(out), "--steps", "30", "--resume"]) == 0
    for name in ("model", "ema", "optimizer"):
        assert max_diff(weights(straight, name), weights(out, name)) == 0.0, name
    assert ckpt.read_card(out)["loss_history"] == ckpt.read_card(straight)["loss_history"]


def test_resume_without_steps_keeps_the_runs_total(straight, tmp_path):
    """--resume alone continues to the run's own --steps, not to the option's default (8000)."""
    out = tmp_path / "copy"
    shutil.copytree(straight, out)
    assert train_main(["--out", str(out), "--resume"]) == 0
    card = ckpt.read_card(out)
    assert card["train"]["steps"] == 30 and card["step"] == 30
    assert max_diff(weights(straight), weights(out)) == 0.0


def test_killed_run_resumes_exactly(straight, tmp_path):
    """SIGKILL in the middle of training, then --resume: the result equals the uninterrupted run."""
    out = tmp_path / "killed"
    # The same number of threads as this process, so that float reductions are done in the same order.
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, "-m", "helpers.train", *TINY, "--out", str(out), "--steps", "100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if ckpt.has_checkpoint(out) and ckpt.read_card(out)["step"] >= 10:
                break
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
    finally:
        proc.kill()
        proc.wait()
    step = ckpt.read_card(out)["step"]
    assert 10 <= step < 100000
    if step > 30:
        pytest.skip(f"the killed run had already passed step 30 ({step})")
    assert train_main(["--out", str(out), "--steps", "30", "--resume"]) == 0
    assert max_diff(weights(straight), weights(out)) == 0.0


@pytest.mark.slow
def test_two_processes_under_accelerate_match_one(straight, tmp_path):
    """`accelerate launch` with two CPU processes (gloo): each takes half of every global batch, the gradients are
    averaged, and the weights equal the one-process run up to float rounding."""
    out = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "helpers.training.ddpm", *TINY, "--out", str(out), "--steps", "30"]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "2 process(es)" in res.stdout
    assert max_diff(weights(straight), weights(out)) < 1e-6


def test_existing_checkpoint_needs_resume(straight, capsys):
    assert train_main(TINY + ["--out", str(straight), "--steps", "40"]) == 2
    assert "already holds a checkpoint; pass --resume" in capsys.readouterr().err


def test_corrupt_and_missing_checkpoints(straight, tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.load_model(tmp_path / "nothing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_card.json").write_text((straight / "model_card.json").read_text())
    with pytest.raises(ckpt.CheckpointError, match="ema.safetensors is missing"):
        ckpt.load_model(bad)
    (bad / "ema.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ckpt.CheckpointError, match="ema.safetensors is corrupt"):
        ckpt.load_model(bad)
    (bad / "model_card.json").write_text("{broken")
    with pytest.raises(ckpt.CheckpointError, match="model_card.json is corrupt"):
        ckpt.read_card(bad)


def test_load_model_round_trip(straight):
    model, card = ckpt.load_model(straight, ema=False)
    saved = weights(straight)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    assert not model.training and card["step"] == 30
    ema_model, _ = ckpt.load_model(straight, ema=True)
    assert max_diff(ema_model.state_dict(), saved) > 0  # EMA weights differ from the raw ones
    assert json.loads((straight / "model_card.json").read_text())["ema"]["optimization_step"] == 30


def test_warm_start_of_a_conditional_model_keeps_the_function(straight, tmp_path):
    """--init-from an unconditional checkpoint: the null label's embedding row starts at zero, so before any step
    the conditional model with the null label predicts exactly what the source's EMA weights predict; the class
    rows start random, so class labels change the prediction from the first step."""
    from helpers.training.ddpm import init_from_checkpoint
    from helpers.models.unet import UNet, UNetConfig

    source, card = ckpt.load_model(straight)
    model = UNet(UNetConfig(**{**card["model"], "num_classes": 10})).eval()
    new = init_from_checkpoint(model, straight)
    assert new == ["label_emb.weight"]
    x, t = torch.randn(11, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(11) * 90
    with torch.no_grad():
        assert (model(x, t, torch.full((11,), 10)) - source(x, t)).abs().max().item() == 0.0
        assert (model(x, t, torch.arange(11) % 10) - source(x, t)).abs().max().item() > 1e-3
    # And training it runs, with the warm start recorded in the card and snapshots kept.
    out = tmp_path / "cond"
    assert train_main(TINY + ["--out", str(out), "--steps", "4", "--conditional", "--init-from", str(straight),
                              "--keep-every", "2"]) == 0
    assert ckpt.read_card(out)["train"]["init_from"] == str(straight)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step-000002", "step-000004"]
    # each with when it was taken, for quality-against-CPU-hours curves (issue 42)
    first, second = ckpt.snapshot_info(out, 2), ckpt.snapshot_info(out, 4)
    assert first["step"] == 2 and second["step"] == 4 and 0 <= first["wall_time_s"] <= second["wall_time_s"]
    assert first["threads"] == torch.get_num_threads()
    assert second["cpu_hours"] == round(second["wall_time_s"] * second["threads"] / 3600, 4)


def test_warm_start_from_another_architecture_is_refused(straight):
    from helpers.training.ddpm import init_from_checkpoint
    from helpers.models.unet import UNet, UNetConfig

    card = ckpt.read_card(straight)
    model = UNet(UNetConfig(**{**card["model"], "base_channels": 32}))
    with pytest.raises(ValueError, match="architectures differ"):
        init_from_checkpoint(model, straight)


@pytest.mark.parametrize("signame,said", [("SIGTERM", "SIGTERM"), ("SIGINT", "Ctrl-C")])
def test_sigterm_saves_and_exits_143(straight, tmp_path, signame, said):
    """SIGTERM (or Ctrl-C, SIGINT): the run saves the step it reached and exits with 143 (128 + 15), so that a
    scheduler can tell it was interrupted; --resume then continues to the same weights as an uninterrupted run."""
    import signal
    import time

    out = tmp_path / "term"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    proc = subprocess.Popen([sys.executable, "-m", "helpers.training.ddpm", *TINY, "--out", str(out), "--steps", "100000"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpt.has_checkpoint(out) and ckpt.read_card(out)["step"] >= 10):
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    step = ckpt.read_card(out)["step"]
    assert step >= 10 and f"stopped by {said} at step {step} of 100000" in err and "Traceback" not in err
    if step > 30:
        pytest.skip(f"the run had passed step 30 ({step}) before {signame} arrived")
    assert train_main(["--out", str(out), "--steps", "30", "--resume"]) == 0
    assert max_diff(weights(straight), weights(out)) == 0.0


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """--lr 1e30 blows the weights up at the first update: the run stops at the first non-finite loss with one line
    and exit status 2, and the folder keeps no NaN weights (issue 45: it used to log 'loss nan', exit 0 and save)."""
    out = tmp_path / "nan"
    code = train_main(TINY + ["--out", str(out), "--steps", "20", "--lr", "1e30", "--warmup", "0"])
    err = [line for line in capsys.readouterr().err.splitlines() if line and not line.startswith("train:")]  # (bar)
    assert code == 2 and err == ["error: the loss is inf at step 2; stopped, nothing was saved; lower --lr or check "
                                 "the data"], err
    assert not (out / "model.safetensors").exists()  # no NaN weights written


def test_a_run_that_diverges_later_keeps_its_last_good_checkpoint(tmp_path):
    """The toy objective made non-finite from step 13 on: the loop stops there, and the checkpoint of step 10 stays."""
    from helpers import checkpoints as ckpt
    from helpers.training.loop import NonFiniteLoss, fit
    from tests.toy_loop import ToyConfig, toy_objective

    cfg = ToyConfig(steps=30)
    toy = toy_objective(cfg)
    objective = lambda model, step, ctx: (lambda out: (out[0] * float("nan"), out[1]) if step >= 12 else out)(
        toy(model, step, ctx))
    with pytest.raises(NonFiniteLoss, match=r"the loss is nan at step 13; stopped, keeping the last good checkpoint "
                                            r"in .* \(step 10\)"):
        fit(torch.nn.Linear(4, 3), objective, cfg, tmp_path / "run", describe=lambda: {"kind": "toy"}, progress=False)
    assert ckpt.read_card(tmp_path / "run")["step"] == 10
