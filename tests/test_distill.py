"""Progressive distillation (helpers.training.distill): the target x_tilde, the grids, the objective and a short round."""
import pytest
import torch

from helpers import checkpoints as ckpt
from helpers.denoisers import Denoiser
from helpers.diffusion import ddim_step, eps_from_x0_at
from helpers.training.distill import check_nested, distillation_target, grid, main as distill_main, step_errors, x_tilde
from helpers.paths import ROOT
from helpers.schedules import Schedule
from tests.test_train import TINY


class FixedX0(torch.nn.Module):
    """A 'student' whose x0_hat at timestep t is a given tensor: eps = (z_t - sqrt(alpha_bar_t) x0) / sqrt(1 - alpha_bar_t)."""

    def __init__(self, x0, alpha_bar):
        super().__init__()
        self.x0, self.alpha_bar = x0, alpha_bar

    def forward(self, z, t, y=None):
        return eps_from_x0_at(z, self.x0, float(self.alpha_bar[int(t[0])]))


@pytest.mark.parametrize("t,t_mid,t_next", [(999, 600, 200), (500, 300, 100), (15, 7, -1)])
def test_one_student_step_on_the_target_lands_on_two_teacher_steps(tiny_denoiser, t, t_mid, t_next):
    """Algorithm 2's identity on a toy teacher: one DDIM step whose x0_hat is x_tilde reproduces the teacher's two
    DDIM steps t -> t_mid -> t_next (to float32 rounding; exactly the clean image when t_next = -1)."""
    z_t = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(t))
    z_mid, _, _ = ddim_step(tiny_denoiser, z_t, t, t_mid, clip_x0=False)
    z_next, _, _ = ddim_step(tiny_denoiser, z_mid, t_mid, t_next, clip_x0=False)
    target = distillation_target(tiny_denoiser, z_t, t, t_mid, t_next)
    student = Denoiser(FixedX0(target, tiny_denoiser.alpha_bar), Schedule.from_name("linear", 1000))
    z_student, x0_student, _ = ddim_step(student, z_t, t, t_next, clip_x0=False)
    scale = z_next.abs().max().item()
    assert (z_student - z_next).abs().max().item() <= 1e-5 * max(1.0, scale)
    if t_next == -1:  # the last step: the target is the teacher's clean image itself
        assert torch.equal(target, z_next)
    # A plain (non-distilled) single step of the teacher from t to t_next lands elsewhere.
    assert (ddim_step(tiny_denoiser, z_t, t, t_next, clip_x0=False)[0] - z_next).abs().max().item() > 1e-3


def test_x_tilde_inverts_a_ddim_step():
    ab = Schedule.from_name("linear", 1000).alpha_bar
    x0, eps = torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).chunk(1)[0], torch.randn(3, 5)
    a_t, s_t = ab[700].sqrt().item(), (1 - ab[700]).sqrt().item()
    a_s, s_s = ab[300].sqrt().item(), (1 - ab[300]).sqrt().item()
    z_t = a_t * x0 + s_t * eps
    z_s = a_s * x0 + s_s * (z_t - a_t * x0) / s_t  # DDIM (eta = 0) with x_hat = x0
    assert torch.allclose(x_tilde(z_t, z_s, ab, 700, 300), x0, atol=1e-5)


def test_grids_halve_and_nest():
    assert grid(1000, 4) == [999, 749, 499, 249, -1]
    assert grid(1000, 1) == [999, -1]
    for n in (256, 128, 64, 32, 16, 8, 4, 2):
        check_nested(1000, n)
        assert grid(1000, n)[::2] == grid(1000, n // 2)
    with pytest.raises(ValueError, match="--teacher-steps must be an even number"):
        check_nested(1000, 7)


def test_a_short_round_runs_resumes_and_samples_with_its_own_grid(tmp_path):
    """Train a tiny teacher, convert it to v (round 0), halve 4 -> 2, resume; the student's card names its grid,
    and helpers.sample uses it with no option."""
    from helpers.training.ddpm import main as train_main
    from helpers.sample import main as sample_main

    teacher = tmp_path / "teacher"
    assert train_main(TINY + ["--out", str(teacher), "--steps", "4"]) == 0
    common = ["--dataset", "digits", "--batch-size", "8", "--checkpoint-every", "2", "--log-every", "2"]
    v4 = tmp_path / "v4"
    assert distill_main(["--teacher", str(teacher), "--teacher-steps", "4", "--convert", "--out", str(v4),
                         "--steps", "2", *common]) == 0
    card = ckpt.read_card(v4)
    assert card["prediction"] == "v" and card["sampling"]["steps"] == 4 and card["distillation"]["convert"]
    v2 = tmp_path / "v2"
    assert distill_main(["--teacher", str(v4), "--out", str(v2), "--steps", "2", *common]) == 0  # 4 -> 2 from v4's card
    assert distill_main(["--out", str(v2), "--steps", "3", "--resume"]) == 0
    card = ckpt.read_card(v2)
    assert card["step"] == 3 and card["sampling"] == {"sampler": "ddim", "steps": 2, "spacing": "trailing", "eta": 0.0,
                                                      "clip_x0": False}
    assert card["distillation"]["lineage"] == [str(teacher), str(v4)]
    for name in ("model.safetensors", "optimizer.safetensors"):  # a finished round keeps only its EMA and card
        (v2 / name).unlink()
    assert distill_main(["--out", str(v2), "--resume"]) == 0 and ckpt.read_card(v2)["step"] == 3  # skipped, untouched
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(v2), "--num", "3", "--out", str(out)]) == 0
    import json

    record = json.loads((out / "sampling.json").read_text())
    assert (record["sampler"], record["steps"], record["spacing"], record["clip_x0"], record["nfe"]) == \
        ("ddim", 2, "trailing", False, 2)


def test_batched_target_equals_the_target_of_each_sample(tiny_denoiser):
    """Per-sample timesteps (one batched teacher call per step) give each image the target of its own steps."""
    z_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    t, t_mid, t_next = torch.tensor([999, 500, 15]), torch.tensor([600, 300, 7]), torch.tensor([200, 100, -1])
    batched = distillation_target(tiny_denoiser, z_t, t, t_mid, t_next)
    single = torch.cat([distillation_target(tiny_denoiser, z_t[k : k + 1], int(t[k]), int(t_mid[k]), int(t_next[k]))
                        for k in range(3)])
    assert (batched - single).abs().max().item() < 1e-5


def test_step_errors_vanish_for_a_student_that_lands_on_the_target(tiny_denoiser):
    """step_errors on the FixedX0 student built from the target: 0 (float rounding) for the student, and the teacher's
    own single step misses."""
    z_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    target = distillation_target(tiny_denoiser, z_t, 700, 400, 100)
    student = Denoiser(FixedX0(target, tiny_denoiser.alpha_bar), Schedule.from_name("linear", 1000))
    err_student, err_teacher = step_errors(tiny_denoiser, student, z_t, 700, 400, 100)
    assert err_student.shape == (3,) and err_student.max().item() < 1e-5
    assert err_teacher.min().item() > 1e-3


SHIPPED = sorted((ROOT / "checkpoints" / "distill").glob("v-*/model_card.json"))


@pytest.mark.parametrize("card_path", SHIPPED, ids=lambda p: p.parent.name)
def test_each_shipped_student_samples_on_its_own_grid_with_no_option(card_path, tmp_path):
    """`python -m helpers.sample --checkpoint checkpoints/distill/v-K --out DIR` (plus a small --num) draws with the
    student's own K steps: DDIM, trailing, no clipping, K network calls per batch; the round finished its steps."""
    import json

    from helpers.sample import main as sample_main

    card = json.loads(card_path.read_text())
    k = card["distillation"]["student_steps"]
    assert card_path.parent.name == f"v-{k}" and card["step"] == card["train"]["steps"]
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(card_path.parent), "--num", "2", "--out", str(out)]) == 0
    record = json.loads((out / "sampling.json").read_text())
    assert (record["sampler"], record["steps"], record["spacing"], record["clip_x0"], record["nfe"]) == \
        ("ddim", k, "trailing", False, k)
    assert len(list(out.glob("*.png"))) == 2


def test_a_round_of_ratio_four_lands_on_four_teacher_steps(tiny_denoiser):
    """--ratio 4: the target of one student step t -> t_next is where four teacher DDIM steps land (round 0 of the
    chain goes from the teacher's 128 steps to 32): one DDIM step with x_hat = x_tilde lands there."""
    from helpers.training.distill import teacher_path

    z_t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    path = grid(1000, 128)[8:13]  # five points of the 128-step grid: four teacher steps, one of the 32-step grid
    assert grid(1000, 32)[2:4] == [path[0], path[-1]]
    target = distillation_target(tiny_denoiser, z_t, path[0], path[1:-1], path[-1])
    student = Denoiser(FixedX0(target, tiny_denoiser.alpha_bar), Schedule.from_name("linear", 1000))
    z_four = teacher_path(tiny_denoiser, z_t, path)
    assert (ddim_step(student, z_t, path[0], path[-1], clip_x0=False)[0] - z_four).abs().max() <= 1e-5
    check_nested(1000, 128, 4)
    with pytest.raises(ValueError, match="--teacher-steps must be a multiple of --ratio 4, got 6"):
        check_nested(1000, 6, 4)


@pytest.mark.parametrize("values,stop", [([1.0, 0.5, 0.4, 0.395, 0.399, 0.393], True),  # no 2% gain in 3 checks
                                         ([1.0, 0.5, 0.4, 0.39, 0.385, 0.37], False),  # 0.37 < 0.98 x 0.4
                                         ([1.0, 0.9, 0.95], False)])                    # too few checks to judge
def test_the_stopping_rule(values, stop):
    from helpers.training.loop import plateaued

    assert plateaued(values, patience=3, min_delta=0.02) is stop


def test_a_round_with_the_stopping_rule_cools_down_and_ends(tmp_path):
    """With --eval-every the round stops by the rule (here: patience 1 and a gain of 90% asked for, so the first check
    after step 0 ends the constant phase), cools down over a quarter of its steps, and records the held-out errors."""
    out = tmp_path / "round"
    teacher = tmp_path / "teacher"
    from helpers.training.ddpm import main as train_main

    assert train_main(TINY + ["--out", str(teacher), "--steps", "2"]) == 0
    code = distill_main(["--teacher", str(teacher), "--teacher-steps", "8", "--out", str(out), "--steps", "40",
                         "--dataset", "digits", "--batch-size", "8", "--eval-every", "4", "--patience", "1",
                         "--min-delta", "0.9", "--heldout", "16", "--checkpoint-every", "100"])
    card = ckpt.read_card(out)
    assert code == 0 and card["decay_start"] == 4 and card["planned_steps"] == 5 and card["step"] == 5
    assert [s for s, _ in card["heldout_history"]] == [0, 4, 5]
    assert card["heldout"]["images"] == 16 and len(card["heldout"]["teacher_one_step_rms_by_step"]) == 4


def test_a_student_off_its_grid_is_refused_unless_asked(tmp_path, capsys):
    """A distilled student sampled with another step count, spacing or sampler than its card's is refused with one
    line (issue 45: it used to run off its grid without a word); --off-grid does it on purpose."""
    from helpers.sample import main as sample_main

    student = str(ROOT / "checkpoints" / "distill" / "v-4")
    for extra in (["--steps", "8"], ["--spacing", "linspace"], ["--sampler", "ddpm"]):
        assert sample_main(["--checkpoint", student, "--num", "1", "--out", str(tmp_path / "x"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is a distilled student for ddim with 4 trailing steps" in err[0], err
        assert "pass --off-grid" in err[0]
    assert sample_main(["--checkpoint", student, "--num", "1", "--out", str(tmp_path / "y"), "--steps", "8",
                        "--off-grid"]) == 0


def test_the_step_check_covers_round_zero_and_halving_rounds():
    """studies.distillation.step_check on the shipped students: the conversion round's teacher step is its own
    target (teacher one-step RMS exactly 0), a halving round's is not; every RMS is finite and below the step's size."""
    from helpers.datasets.images import load_images
    from helpers.studies.distillation import step_check

    x0 = load_images("mnist:test").images[:2]
    convert = step_check("checkpoints/distill/v-128", x0, seed=0).iloc[[0, 64, 127]]
    assert (convert["teacher one-step RMS"] == 0).all() and (convert["student RMS"] > 0).all()
    halve = step_check("checkpoints/distill/v-4", x0, seed=0)
    assert list(halve.t) == [999, 749, 499, 249] and (halve["teacher one-step RMS"] > 0).all()
    assert (halve["student RMS"] < halve["step RMS"]).all()


def test_steps_caps_the_constant_phase_exactly_and_the_split_is_the_test_one(tmp_path):
    """--steps 10 with checks every 4 steps: the cool-down starts at step 10 (not at the next check, 12), and lasts a
    quarter of it (round(2.5) = 2 steps); the held-out set of digits is digits:test."""
    from helpers.training.distill import test_split
    from helpers.training.ddpm import main as train_main

    assert [test_split(s) for s in ("mnist", "digits:train", "shapes:32", "moving-mnist:8:train")] == [
        "mnist:test", "digits:test", "shapes:32:test", "moving-mnist:8:test"]
    with pytest.raises(ValueError, match="needs a test split of --dataset latents:x"):
        test_split("latents:x")
    teacher, out = tmp_path / "teacher", tmp_path / "round"
    assert train_main(TINY + ["--out", str(teacher), "--steps", "2"]) == 0
    assert distill_main(["--teacher", str(teacher), "--teacher-steps", "8", "--out", str(out), "--steps", "10",
                         "--dataset", "digits", "--batch-size", "4", "--eval-every", "4", "--patience", "5",
                         "--heldout", "8", "--checkpoint-every", "100"]) == 0
    card = ckpt.read_card(out)
    assert card["decay_start"] == 10 and card["step"] == card["planned_steps"] == 12
    assert distill_main(["--teacher", str(teacher), "--teacher-steps", "8", "--out", str(tmp_path / "r1"),
                         "--ratio", "1", "--steps", "1", "--dataset", "digits"]) == 2


class Output(torch.nn.Module):
    """A 'network' that returns a given output whatever its input."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, z, t, y=None):
        return self.out


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_the_step_weighting_is_the_squared_error_of_the_students_step_in_z(prediction):
    """For any output error, (one DDIM step's z_s error)^2 / (output error)^2 is the same multiple of step_weights[i]
    at every step i of the grid (the step is linear in the output): the "step" loss is the step's z error, up to one
    constant. Checked on the 8-step trailing grid of the linear schedule, to 1e-6 relative."""
    from helpers.training.distill import step_weights

    schedule = Schedule.from_name("linear", 1000)
    steps = torch.tensor(grid(1000, 8))
    w = step_weights(schedule.alpha_bar, steps, prediction)
    assert w.mean().item() == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    z, out, err = (torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    ratios = []
    for i in range(8):
        t, s = int(steps[i]), int(steps[i + 1])
        net = lambda o: Denoiser(Output(o), schedule, prediction)  # noqa: E731
        z_a = ddim_step(net(out), z, t, s, clip_x0=False)[0]
        z_b = ddim_step(net(out + err), z, t, s, clip_x0=False)[0]
        ratios.append(((z_b - z_a).pow(2).mean() / err.pow(2).mean() / w[i]).item())
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-6)


def test_an_eps_student_starts_as_its_teacher_and_says_so_in_its_card(tmp_path):
    """--prediction eps keeps the teacher's output, so before any step the student's held-out one-step error equals
    the teacher's own single step (heldout_history[0] == teacher_one_step_rms); --convert with it is refused."""
    from helpers.training.ddpm import main as train_main

    teacher = tmp_path / "teacher"
    assert train_main(TINY + ["--out", str(teacher), "--steps", "4"]) == 0
    out = tmp_path / "eps-2"
    options = ["--teacher", str(teacher), "--teacher-steps", "4", "--dataset", "digits", "--batch-size", "8",
               "--prediction", "eps"]
    assert distill_main(options + ["--out", str(out), "--steps", "2", "--weighting", "step", "--eval-every", "1",
                                   "--heldout", "8", "--checkpoint-every", "2", "--log-every", "2"]) == 0
    card = ckpt.read_card(out)
    assert card["prediction"] == "eps" and card["train"]["weighting"] == "step"
    assert card["heldout_history"][0][1] == pytest.approx(card["heldout"]["teacher_one_step_rms"], rel=1e-5)
    assert distill_main(options + ["--convert", "--out", str(tmp_path / "c")]) == 2


def test_evaluate_samples_a_student_on_its_own_grid_and_refuses_another(capsys):
    """helpers.evaluate used to draw 1000-step DDPM from every checkpoint; a student's card names its sampler and grid
    (issue 45). Four images of the shipped 4-step student: DDIM on its 4 trailing steps."""
    from helpers.evaluate import evaluate_checkpoint, main as evaluate_main

    student = ROOT / "checkpoints" / "distill" / "v-4"
    result = evaluate_checkpoint(student, num=4, steps=None, seed=0)
    assert (result["sampler"], result["steps"], result["spacing"], result["clip_x0"]) == ("ddim", 4, "trailing", False)
    assert evaluate_main(["--checkpoint", str(student), "--num", "2", "--steps", "10"]) == 2
    assert "samples on its own grid of 4 steps" in capsys.readouterr().err


def test_a_students_prediction_is_its_training_records():
    """The chain of issue 40 trains eps-students (--prediction eps); students from before that option record no
    prediction and are v-students. A card that says otherwise than its record is refused; the eps student of the
    shipped chain loads (this check stopped make distill-mnist between rounds 0 and 1 once)."""
    from pathlib import Path

    from helpers.checkpoints import CheckpointError, check_training_record

    base = {"schedule": {"name": "linear", "T": 1000}, "distillation": {"teacher": "x", "student_steps": 32}}
    check_training_record({**base, "prediction": "eps", "train": {"prediction": "eps"}}, Path("eps-32"))
    check_training_record({**base, "prediction": "v", "train": {}}, Path("v-4"))
    with pytest.raises(CheckpointError, match="says prediction 'v' but its training record"):
        check_training_record({**base, "prediction": "v", "train": {"prediction": "eps"}}, Path("eps-32"))
    with pytest.raises(CheckpointError, match="trained with v-prediction but says prediction 'eps'"):
        check_training_record({**base, "prediction": "eps", "train": {}}, Path("v-4"))
