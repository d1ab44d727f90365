"""The shipped MNIST classifier and the digit report that judges samples."""
import pytest
import torch

from helpers.evaluation.digits import digit_report, load_classifier, predict
from helpers.datasets.images import load_images
from helpers.evaluate import evaluate_checkpoint


def test_shipped_classifier_accuracy_matches_its_card():
    import json
    from helpers.paths import ROOT
    card = json.loads((ROOT / "checkpoints" / "mnist-cnn" / "model_card.json").read_text())
    test = load_images("mnist:test")
    acc = (predict(load_classifier(), test.images).argmax(1) == test.labels).float().mean().item()
    assert acc == pytest.approx(card["test_accuracy"], abs=1e-6) and acc > 0.985


def test_digit_report_golden():
    # Four images: two confident 3s, one unsure 7, one confident 0 (hand-built probabilities).
    probs = torch.zeros(4, 10)
    probs[0, 3], probs[1, 3], probs[2, 7], probs[2, 1], probs[3, 0] = 0.99, 0.95, 0.6, 0.4, 0.9
    r = digit_report(probs)
    assert r["confident_fraction"] == 0.75 and r["num"] == 4
    assert r["class_shares"][3] == 0.5 and r["class_shares"][7] == 0.25 and r["min_share"] == 0.0
    assert r["mean_confidence"] == pytest.approx((0.99 + 0.95 + 0.6 + 0.9) / 4, abs=1e-4)


def test_evaluate_refuses_non_mnist_models(tmp_path):
    from helpers.training.ddpm import main as train_main
    from tests.test_train import TINY
    assert train_main(TINY + ["--out", str(tmp_path), "--steps", "2"]) == 0
    with pytest.raises(ValueError, match="judges 1 x 28 x 28 images"):
        evaluate_checkpoint(tmp_path, num=2, steps=2, seed=0)
