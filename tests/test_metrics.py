"""FID and KID: clean-fid against a direct computation, and known answers."""
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

from helpers.evaluation.metrics import (FeaturesUnavailableError, compute_features, frechet_distance, kernel_distance, label,
                             scores)
from helpers.paths import ROOT


def direct_fid(a, b):
    """FID written out with numpy/scipy: |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a^1/2 S_b S_a^1/2)^1/2)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = scipy.linalg.sqrtm(s_a).real
    cross = scipy.linalg.sqrtm(root_a @ s_b @ root_a).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(cross))


def test_fid_matches_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 16)) @ rng.normal(size=(16, 16))
    b = rng.normal(size=(1500, 16)) * 1.5 + 0.3
    assert frechet_distance(a, b) == pytest.approx(direct_fid(a, b), rel=1e-6)


def test_identical_sets_and_shifted_gaussian():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5000, 8))
    assert abs(frechet_distance(a, a)) < 1e-6
    # Same covariance, mean shifted by d: FID = |d|^2 exactly (the trace terms cancel).
    shift = np.array([1.0, -2.0, 0.5, 0, 0, 0, 0, 3.0])
    assert frechet_distance(a, a + shift) == pytest.approx((shift ** 2).sum(), rel=1e-6)
    # Two independent draws of N(0, I) and N(mu, 4I) in 8-d: FID -> |mu|^2 + 8 (1 + 4 - 2*2) = |mu|^2 + 8.
    b = rng.normal(size=(200000, 8)) * 2 + shift
    c = rng.normal(size=(200000, 8))
    assert frechet_distance(c, b) == pytest.approx((shift ** 2).sum() + 8, rel=0.02)


def test_kid_seeded_and_near_zero_for_same_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3000, 16)), rng.normal(size=(3000, 16))
    k1, k2 = kernel_distance(a, b, seed=5), kernel_distance(a, b, seed=5)
    assert k1 == k2
    assert abs(k1[0]) < 3 * k1[1] + 1e-3  # unbiased: zero within its spread
    far = kernel_distance(a, b + 1.0, seed=5)
    assert far[0] > 10 * k1[1]
    state = np.random.get_state()[1].copy()
    kernel_distance(a, b, seed=0, num_subsets=3)
    assert np.array_equal(np.random.get_state()[1], state)  # the global generator is restored


def test_mnist_cnn_features_and_labels():
    x = torch.zeros(4, 1, 28, 28) - 1
    f = compute_features(x, "mnist-cnn")
    assert f.shape == (4, 128) and f.dtype == np.float64
    with pytest.raises(ValueError, match=r"mnist-cnn features need \[N, 1, 28, 28\] images"):
        compute_features(torch.zeros(2, 3, 32, 32), "mnist-cnn")
    with pytest.raises(ValueError, match="unknown feature network 'vgg'"):
        compute_features(x, "vgg")
    assert label("FID", "mnist-cnn", 2000) == "FID (MNIST-CNN features, N=2000)"
    s = scores(f, f, "mnist-cnn")
    assert "FID (MNIST-CNN features, N=4)" in str(s)


def test_inception_offline_names_the_alternative(monkeypatch):
    import cleanfid.features

    def offline(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(cleanfid.features, "build_feature_extractor", offline)
    with pytest.raises(FeaturesUnavailableError, match="--features mnist-cnn"):
        compute_features(torch.zeros(2, 1, 28, 28), "inception")


def test_fid_cli_on_real_folders(tmp_path):
    from helpers.datasets.images import load_images, save_pngs
    test = load_images("mnist:test")
    save_pngs(test.images[:300], tmp_path / "real")
    save_pngs(torch.rand(300, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1, tmp_path / "noise")

    def fid_of(folder):
        res = subprocess.run([sys.executable, "-m", "helpers.fid", "--fake", str(folder), "--real", "mnist:test"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("FID (MNIST-CNN features, N=300): ")
        return float(res.stdout.split(": ")[1].split()[0])

    # 300 real digits still score far from 0 (FID's small-N bias), but far below uniform noise.
    assert fid_of(tmp_path / "real") < fid_of(tmp_path / "noise") / 10
    res = subprocess.run([sys.executable, "-m", "helpers.fid", "--fake", str(tmp_path / "none")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "is not a folder of PNG images" in res.stderr
    (tmp_path / "empty").mkdir()
    res = subprocess.run([sys.executable, "-m", "helpers.fid", "--fake", str(tmp_path / "empty")], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.startswith("error: no PNG images in")


def test_cost_row_and_flops():
    from helpers.evaluation.cost import gflop_per_call, measure
    from helpers.samplers import generate
    from tests.conftest import tiny_unet
    from helpers.denoisers import Denoiser
    from helpers.schedules import Schedule

    net = tiny_unet()
    den = Denoiser(net, Schedule.from_name("linear"))
    row = measure(lambda: generate(den, 4, 0, (1, 8, 8), steps=10, batch_size=2), den, 4)
    assert row["NFE (calls)"] == 20 and row["seconds"] > 0 and row["peak memory (MB)"] > 10
    # FLOPs scale with the batch only through the batch size: per image they are the same at 1 and 4.
    one = gflop_per_call(net, torch.zeros(1, 1, 8, 8), torch.tensor([5]))
    four = gflop_per_call(net, torch.zeros(4, 1, 8, 8), torch.tensor([5] * 4))
    assert one == pytest.approx(four) and one > 0
    # The first conv alone: 1 -> 16 channels, 3x3, 8x8 output: 2 * 16 * 9 * 64 = 18,432 FLOP (multiply-adds x 2).
    conv = torch.nn.Conv2d(1, 16, 3, padding=1, bias=False)
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as c:
        conv(torch.zeros(1, 1, 8, 8))
    assert c.get_total_flops() == 18432


def test_call_memory_counts_the_weights_input_and_activations():
    """A linear layer 256 -> 1024: its weights and bias (1 MiB + 4 KiB), the input (1 KiB per row) and the output
    (4 KiB per row) are alive together at the end of the call, and nothing else is allocated. A U-Net's peak is above
    its weights and grows linearly with the batch (the activations of one image times the batch)."""
    from helpers.evaluation.cost import call_memory_mb
    from tests.conftest import tiny_unet

    class Linear(torch.nn.Linear):
        def forward(self, x, t):
            return super().forward(x)

    lin = Linear(256, 1024)
    for b in (1, 64):
        assert call_memory_mb(lin, torch.zeros(b, 256), torch.zeros(b)) == pytest.approx((1024 * 257 + b * 1280) * 4 / 2**20, rel=1e-4)
    unet = tiny_unet()
    weights = sum(p.numel() * 4 for p in unet.parameters()) / 2**20
    peaks = [call_memory_mb(unet, torch.zeros(b, 1, 8, 8), torch.full((b,), 5)) for b in (2, 4, 8)]
    assert peaks[0] > weights and peaks[2] - peaks[1] == pytest.approx(2 * (peaks[1] - peaks[0]), rel=0.05)


def test_fid_by_sample_size_shrinks_with_n():
    rng = np.random.default_rng(3)
    pool, real = rng.normal(size=(6000, 8)), rng.normal(size=(6000, 8))
    table = helpers_metrics().fid_by_sample_size(pool, real, [100, 1000, 5000], num_boot=5, seed=0)
    assert list(table["N"]) == [100, 1000, 5000]
    assert table["fid_mean"].is_monotonic_decreasing  # the small-N bias falls with N
    # Expected FID of two samples of N(0, I_d), sizes N and M, to first order: the means give d (1/N + 1/M); with
    # S = I + E, Var(E_ij) ~ 1/N, the trace term is ~ ||E_1 - E_2||_F^2 / 4 ~ d (d + 1) / 4 (1/N + 1/M).
    # d = 8, N = 100, M = 6000: 0.0813 + 0.1830 = 0.264.
    expected = (8 + 8 * 9 / 4) * (1 / 100 + 1 / 6000)
    assert table["fid_mean"].iloc[0] == pytest.approx(expected, rel=0.25)
    with pytest.raises(ValueError, match="N = 7000 is more than the 6000 rows"):
        helpers_metrics().fid_by_sample_size(pool, real, [7000])


def test_degradations():
    from helpers.evaluation.metrics import degrade
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28) / 1568 * 2 - 1
    s = degrade(x, "shuffle", g)
    assert s.shape == x.shape and not torch.equal(s, x)
    assert torch.equal(s.flatten(1).sort(1).values, x.flatten(1).sort(1).values)  # the same pixels, moved
    # A 7x7 patch of the output is a 7x7 patch of the input.
    patch = s[0, 0, :7, :7]
    assert any(torch.equal(patch, x[0, 0, i:i + 7, j:j + 7]) for i in range(0, 28, 7) for j in range(0, 28, 7))
    b = degrade(x, "blur", g)
    assert b.shape == x.shape and (b - x).abs().max() > 0
    n = degrade(x, "noise", g)
    assert n.min() >= -1 and n.max() <= 1
    with pytest.raises(ValueError, match="unknown degradation 'jpeg'"):
        degrade(x, "jpeg", g)


def helpers_metrics():
    import helpers.evaluation.metrics
    return helpers.evaluation.metrics


def test_sanity_tables_rank_the_corruptions():
    """fid.sanity on a small pool: real digits score far below blurred, shuffled and noise images, in that order."""
    from helpers.evaluation.fid import sanity

    floor, corruptions = sanity(boot=2, n=500, ns=(500,), pool_size=2000)
    assert list(floor.N) == [500] and floor.fid_mean.iloc[0] > 0
    fids = corruptions.set_index("images")["FID (MNIST-CNN features, N=500)"]
    assert fids["noise"] > fids["shuffle"] > fids["blur"] > fids["real"]


def test_pixel_features_are_the_raw_values():
    import torch

    from helpers.evaluation.metrics import compute_features, label

    x = torch.rand(3, 1, 8, 8)
    assert (compute_features(x, "pixels") == x.flatten(1).double().numpy()).all()
    assert label("FID", "pixels", 3) == "FID (raw-pixel features, N=3)"


def test_hub_architecture_cost_matches_the_published_model_size():
    """google/ddpm-cifar10-32 has 35.7M parameters (Ho et al. 2020, sec. 4: 35.7M for CIFAR-10)."""
    from helpers.evaluation.cost import architecture_cost

    row = architecture_cost("google/ddpm-cifar10-32", calls=1)
    assert round(row["parameters (M)"], 1) == 35.7 and row["GFLOP per image per call"] > 1
    with pytest.raises(ValueError, match="unknown architecture 'cifar'; known: google/ddpm-cifar10-32"):
        architecture_cost("cifar")
