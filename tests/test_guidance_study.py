"""The measurements of notebook 04: balanced labels, the EMA warm-up against diffusers, snapshots, the choice of w,
matching accuracies, and one evaluation row on a tiny model."""
import numpy as np
import pandas as pd
import pytest
import torch
from diffusers.training_utils import EMAModel

from helpers import checkpoints as ckpt
from helpers.studies import cfg_ema as gs
from helpers.denoisers import Denoiser
from helpers.samplers.guidance import CFGDenoiser
from helpers.samplers import generate
from helpers.schedules import Schedule
from helpers.training.ddpm import main as train_main
from tests.test_train import TINY


def test_balanced_labels():
    assert gs.balanced_labels(23).tolist() == [i % 10 for i in range(23)]
    assert torch.bincount(gs.balanced_labels(500)).tolist() == [50] * 10
    assert gs.balanced_labels(7, 3).dtype == torch.long
    with pytest.raises(ValueError):
        gs.balanced_labels(0)


@pytest.mark.parametrize("power,cap", [(0.75, 0.9999), (2 / 3, 0.999), (0.75, 0.99)])
def test_ema_decay_equals_diffusers(power, cap):
    """Cross-check against diffusers' EMAModel.get_decay with warm-up, as helpers.training.ddpm builds it."""
    ema = EMAModel([torch.nn.Parameter(torch.zeros(1))], decay=cap, use_ema_warmup=True, power=power)
    steps = [1, 2, 3, 10, 400, 800, 1200, 10_000, 300_000]
    assert np.allclose(gs.ema_decay_curve(steps, power, cap), [ema.get_decay(k) for k in steps], rtol=0, atol=1e-12)


def test_ema_decay_golden_values():
    # By hand, power 0.75: step 1 copies (0); step 2: 1 - 2^-0.75 = 0.405396; step 10_000: 1 - 10^-3 = 0.999;
    # the cap 0.9999 is reached at k = 10^(4 / 0.75) = 215,443.
    d = gs.ema_decay_curve([1, 2, 10_000, 215_444, 10**7])
    assert d[0] == 0.0 and d[1] == pytest.approx(0.405396, abs=1e-6) and d[2] == pytest.approx(0.999, abs=1e-12)
    assert d[3] == d[4] == 0.9999


def test_ema_iterate_weights_reproduce_the_update():
    """sum_j w_j theta_j equals running diffusers' EMAModel over the same sequence of scalar 'weights' theta_j."""
    k = 50
    theta = torch.linspace(-1, 3, k) ** 2
    p = torch.nn.Parameter(theta[:1].clone())
    ema = EMAModel([p], decay=0.9999, use_ema_warmup=True, power=0.75)
    for j in range(k):
        with torch.no_grad():
            p.copy_(theta[j : j + 1])
        ema.step([p])
    w = gs.ema_iterate_weights(k)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(ema.shadow_params[0]) == pytest.approx(float((torch.from_numpy(w) * theta.double()).sum()), abs=1e-5)


@pytest.fixture(scope="module")
def snapshotted(tmp_path_factory):
    out = tmp_path_factory.mktemp("cond") / "run"
    assert train_main(TINY + ["--out", str(out), "--steps", "4", "--conditional", "--keep-every", "2"]) == 0
    return out


def test_snapshot_listing_and_loading(snapshotted):
    assert ckpt.snapshot_steps(snapshotted) == [2, 4]
    snaps = gs.snapshot_denoisers(snapshotted)
    assert [s for s, _, _ in snaps] == [2, 4]
    _, raw, ema = snaps[-1]
    # The last snapshot is the final checkpoint: same raw and EMA weights as the folder's own files.
    final_raw = ckpt.read_tensors(snapshotted / ckpt.MODEL)
    final_ema = ckpt.read_tensors(snapshotted / ckpt.EMA)
    assert all(torch.equal(raw.net.state_dict()[k], final_raw[k]) for k in final_raw)
    assert all(torch.equal(ema.net.state_dict()[k], final_ema[k]) for k in final_ema)
    assert raw.net.config.num_classes == 10 and isinstance(raw, Denoiser)
    assert not torch.equal(raw.net.state_dict()["conv_in.weight"], ema.net.state_dict()["conv_in.weight"])


def test_no_snapshots_is_a_clear_error(snapshotted, tmp_path):
    (tmp_path / ckpt.CARD).write_text((snapshotted / ckpt.CARD).read_text())
    with pytest.raises(ckpt.CheckpointError, match="no snapshots.*--keep-every"):
        gs.snapshot_denoisers(tmp_path)


def test_choose_w_and_matched_w():
    fid = "FID (MNIST-CNN features, N=500)"
    table = pd.DataFrame({"w": [0, 1, 2, 3, 5], gs.ACCURACY: [0.1, 0.8, 0.96, 0.99, 1.0], fid: [5, 3, 4, 6, 9]})
    w, reason = gs.choose_w(table)
    assert w == 2.0 and "3 scales" in reason
    assert gs.choose_w(table, min_accuracy=1.01)[0] == 5.0
    # By hand: 0.88 lies between w = 1 (0.8) and w = 2 (0.96): 1 + 0.08 / 0.16 = 1.5.
    assert gs.matched_w([2, 0, 1], [0.96, 0.1, 0.8], 0.88) == pytest.approx(1.5)
    assert gs.matched_w([0, 1], [0.1, 0.8], 0.9) is None
    assert gs.fid_column(table.columns) == fid


def test_within_class_spread():
    # Class 0 at (0, 0) and (2, 0): distance 1 to its mean; class 1 at (0, 0), (0, 4): 2. Mean 1.5.
    feats = np.array([[0, 0], [2, 0], [0, 0], [0, 4]], float)
    assert gs.within_class_spread(feats, [0, 0, 1, 1]) == pytest.approx(1.5)


class Net8(torch.nn.Module):
    """A conditional toy eps-network on 8 x 8 images: eps = 0.5 x_t + 0.05 (y - 5)."""

    def forward(self, x, t, y=None):
        y = torch.full((len(x),), 10) if y is None else y
        return 0.5 * x + 0.05 * (y - 5).float().reshape(-1, 1, 1, 1)


def test_evaluate_guided_row_and_passes():
    """One row on a toy model with the 'pixels' features (8 x 8 images; the evaluation classifier is stubbed)."""
    schedule = Schedule.from_name("linear", 1000)
    base = Denoiser(Net8(), schedule)
    cfg = CFGDenoiser(base, 3.0, num_classes=10)
    labels = gs.balanced_labels(20)
    real = generate(CFGDenoiser(base, 1.0, num_classes=10), 20, 7, (1, 8, 8), sampler="ddim", steps=3, y=labels)
    ref = gs.Reference("toy", "pixels", real.flatten(1).double().numpy(), labels.numpy(),
                       gs.within_class_spread(real.flatten(1).double().numpy(), labels.numpy()))

    class Oracle(torch.nn.Module):  # 'classifies' every image as its index's label
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))  # predict() reads the device from the parameters

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.arange(len(x)) % 10, 10).float() * 10

    row, images = gs.evaluate_guided(cfg, labels, 0, ref, steps=3, shape=(1, 8, 8), batch_size=8, classifier=Oracle())
    assert images.shape == (20, 1, 8, 8)
    assert set(row) == {"FID (raw-pixel features, N=20)", "KID (raw-pixel features, N=20)", "KID std", gs.ACCURACY,
                        gs.WORST_CLASS, gs.DIVERSITY, gs.SECONDS, gs.PASSES}
    assert row[gs.ACCURACY] == row[gs.WORST_CLASS] == 1.0
    assert row[gs.PASSES] == 6.0  # 3 steps, each one call on the doubled batch: 2 rows per image per step
    row1, _ = gs.evaluate_guided(CFGDenoiser(base, 1.0, num_classes=10), labels, 0, ref, steps=3, shape=(1, 8, 8),
                                 classifier=Oracle())
    assert row1[gs.PASSES] == 3.0


def test_unbatched_cfg_equals_batched():
    base = Denoiser(Net8(), Schedule.from_name("linear", 1000))
    cfg = CFGDenoiser(base, 2.5, num_classes=10)
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([3, 300, 600, 999]), torch.tensor([0, 3, 9, 5])
    assert torch.allclose(gs.UnbatchedCFGDenoiser(cfg)(x, t, y), cfg(x, t, y), atol=1e-6)
    rows = gs.sampling_cost({"cfg": cfg, "two calls": gs.UnbatchedCFGDenoiser(cfg)}, gs.balanced_labels(6), 0,
                            steps=2, shape=(1, 8, 8))
    assert [r["network calls"] for r in rows] == [2, 4] and [r[gs.PASSES] for r in rows] == [4.0, 4.0]


def test_noisy_classifier_accuracy_reads_t():
    class Stub(torch.nn.Module):  # predicts class (index % 10) at t = 0, class 0 otherwise; records t
        def __init__(self):
            super().__init__()
            self.unused, self.seen = torch.nn.Parameter(torch.zeros(1)), None

        def forward(self, x, t):
            self.seen = t
            pred = torch.arange(len(x)) % 10 if int(t[0]) == 0 else torch.zeros(len(x), dtype=torch.long)
            return torch.nn.functional.one_hot(pred, 10).float()

    stub, labels = Stub(), gs.balanced_labels(20)
    assert gs.noisy_classifier_accuracy(stub, torch.zeros(20, 1, 8, 8), labels) == 1.0
    assert stub.seen.tolist() == [0] * 20
    assert gs.noisy_classifier_accuracy(stub, torch.zeros(20, 1, 8, 8), labels, t=500) == 0.1  # only the two 0s


def test_match_accuracy_refines_the_interpolation_until_within_one_point():
    """A sweep interpolated linearly misses a curved accuracy(w); measuring and re-interpolating closes the gap."""
    import math

    from helpers.studies.cfg_ema import match_accuracy

    curve = lambda w: 1 - 0.9 * math.exp(-2 * w)  # accuracy rising steeply, then saturating
    ws = [0.0, 1.0, 3.0]
    calls = []
    w, acc, tried = match_accuracy(lambda v: calls.append(v) or curve(v), 0.95, ws, [curve(v) for v in ws], tol=0.01)
    assert abs(acc - 0.95) <= 0.01 and abs(curve(w) - acc) < 1e-12 and len(tried) == len(calls) >= 2
    assert match_accuracy(curve, 0.05, ws, [curve(v) for v in ws]) == (None, None, [])  # below the sweep's range


def test_run_cache_keeps_each_configuration_and_refuses_another_stamp(tmp_path, capsys):
    path = tmp_path / "runs.pt"
    stamp = {"checkpoint_step": 1200, "num": 500, "seed": 0}
    runs = gs.RunCache(path, stamp)
    assert runs.loaded == 0 and not path.exists()
    runs[("ema", "cfg", 3.0)] = ({"FID": 1.0}, torch.ones(2, 1, 4, 4))
    again = gs.RunCache(path, stamp)
    assert again.loaded == 1 and again[("ema", "cfg", 3.0)][0] == {"FID": 1.0}
    assert torch.equal(again[("ema", "cfg", 3.0)][1], torch.ones(2, 1, 4, 4))
    other = gs.RunCache(path, {**stamp, "num": 50})  # e.g. quick mode, or a retrained checkpoint
    assert other.loaded == 0 and len(other) == 0
    assert "set aside as runs.pt.stale" in capsys.readouterr().out
    assert (tmp_path / "runs.pt.stale").exists() and not path.exists()
    assert len(gs.RunCache(None, stamp)) == 0  # no file: nothing kept
