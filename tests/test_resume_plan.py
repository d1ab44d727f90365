"""--resume continues the run's own plan in every trainer (issue 45): left out, --steps is the run's own total, not the
command's default (the autoencoder, the tabular model and distillation used to train on to 3000, 14000 and 1000)."""
from helpers import checkpoints as ckpt
from helpers import tabular
from helpers.training import distill, vae
from helpers.training.ddpm import main as train_main
from tests.test_train import TINY


def test_the_autoencoder_resumes_to_its_own_total(tmp_path):
    out = tmp_path / "ae"
    argv = ["--dataset", "digits", "--out", str(out), "--steps", "3", "--batch-size", "8", "--block-out-channels", "16,32",
            "--latent-channels", "2", "--log-every", "1"]
    assert vae.main(argv) == 0
    assert vae.main(["--out", str(out), "--resume"]) == 0
    assert ckpt.read_card(out)["step"] == 3 and ckpt.read_card(out)["resumed_with"] == []
    assert vae.main(["--out", str(out), "--resume", "--steps", "4"]) == 0  # given: the new total
    assert ckpt.read_card(out)["step"] == 4


def test_the_tabular_model_resumes_to_its_own_total(tmp_path):
    out = tmp_path / "tab"
    assert tabular.main(["train", "--data", "diamonds", "--out", str(out), "--steps", "2", "--batch-size", "64",
                         "--hidden", "16", "--layers", "1", "--no-progress"]) == 0
    assert tabular.main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    card = ckpt.read_card(out)
    assert card["step"] == 2 and card["train"]["steps"] == 2 and card["model"]["hidden"] == 16


def test_a_distillation_round_resumes_to_its_own_total(tmp_path):
    teacher, out = tmp_path / "teacher", tmp_path / "student"
    assert train_main(TINY + ["--out", str(teacher), "--steps", "2"]) == 0
    assert distill.main(["--teacher", str(teacher), "--teacher-steps", "8", "--out", str(out), "--steps", "2",
                         "--dataset", "digits", "--batch-size", "4"]) == 0
    assert distill.main(["--out", str(out), "--resume"]) == 0
    assert ckpt.read_card(out)["step"] == 2
