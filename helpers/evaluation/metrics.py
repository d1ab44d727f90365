"""FID and KID through clean-fid, on images in memory or in folders, with a named feature network.

- ``mnist-cnn``: the penultimate layer (128-d) of the project's MNIST classifier (checkpoints/mnist-cnn), offline.
  Scores with it are *not* comparable to published Inception FIDs; every label says which features were used.
- ``pixels``: the raw pixel values (C*H*W dimensions), for tiny images such as the 8 x 8 digits.
- ``feature-net:FOLDER``: the feature layer of a feature network trained here on data with known factors
  (helpers.evaluation.features; e.g. the coloured shapes' attribute classifier), offline; labelled with its folder's name.
- ``inception``: clean-fid's Inception-V3 in "clean" mode (Parmar et al. 2022), for users whose machine can download
  its weights; offline it fails with a message that names the offline alternative.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)) (Heusel et al. 2017), computed by clean-fid's
`frechet_distance`; KID is clean-fid's `kernel_distance` (Binkowski et al. 2018), with a seeded generator.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from helpers.checks import check_features

FEATURES = ("mnist-cnn", "inception", "pixels")
# The number of generated images behind every score in the notebooks: at N = 1000 real against real gives
# 12.7 +- 2.8 (python -m helpers.fid --sanity), and 1000 images cost about an hour of CPU at 1000 sampling steps.
EVAL_N = 1000


class FeaturesUnavailableError(RuntimeError):
    """A feature network that cannot be loaded here; the message says what to use instead."""


def label(metric: str, features: str, n: int) -> str:
    """The name every printed score carries, e.g. 'FID (MNIST-CNN features, N=2000)'."""
    names = {"mnist-cnn": "MNIST-CNN features", "inception": "Inception-V3 clean-fid features",
             "pixels": "raw-pixel features"}
    if features.startswith("feature-net:"):
        from pathlib import Path

        return f"{metric} (our {Path(features.split(':', 1)[1]).name} features, N={n})"
    return f"{metric} ({names[features]}, N={n})"


def feature_net_weights(features: str):
    """The weights file of a `feature-net:FOLDER` (a path relative to the repository root, or absolute)."""
    from pathlib import Path

    from helpers.paths import ROOT

    folder = Path(features.split(":", 1)[1])
    return (folder if folder.is_absolute() else ROOT / folder) / "model.safetensors"


@torch.no_grad()
def net_features(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 250) -> np.ndarray:
    """[N, D] float64 features (`model.features`) of images or clips in [-1, 1], in batches."""
    return torch.cat([model.features(part) for part in x.split(batch_size)]).double().cpu().numpy()


def feature_net_features(images: torch.Tensor, features: str) -> np.ndarray:
    from helpers.checkpoints import load_model

    return net_features(load_model(feature_net_weights(features).parent)[0], images)


@torch.no_grad()
def mnist_cnn_features(images: torch.Tensor, batch_size: int = 1000, device="cpu") -> np.ndarray:
    """[N x 1 x 28 x 28] images in [-1, 1] to [N x 128] float64 features of the shipped MNIST classifier."""
    from helpers.evaluation.digits import load_classifier

    model = load_classifier(device=device)
    feats = [model.features(images[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(feats).numpy()


def consistency(clips: torch.Tensor, classifier) -> dict:
    """Temporal consistency of moving-MNIST clips: the share of clips whose frames (moving_mnist.frame_digits) the
    MNIST classifier gives one label, with its 95% Wilson interval, and the share of frames it reads with confidence
    >= 0.9."""
    from scipy.stats import binomtest

    from helpers.evaluation.digits import predict
    from helpers.datasets.moving_mnist import frame_digits

    probs = predict(classifier, frame_digits(clips))
    labels = probs.argmax(1).reshape(len(clips), -1)
    same = int((labels == labels[:, :1]).all(1).sum())
    ci = binomtest(same, len(clips)).proportion_ci(0.95, method="wilson")
    return {"consistency": same / len(clips), "consistency_lo": float(ci.low), "consistency_hi": float(ci.high),
            "frame_accuracy_confident": float((probs.max(1).values >= 0.9).double().mean())}


def lit_pixels(images: torch.Tensor, level: float = -0.6) -> float:
    """The share of pixels brighter than `level` (images on [-1, 1]): in real moving-MNIST clips only the digit's
    pixels; noise a model leaves in the background lights many more."""
    return float((images > level).double().mean())


def inception_model(device="cpu"):
    from cleanfid.features import build_feature_extractor

    try:
        return build_feature_extractor("clean", device=torch.device(device), use_dataparallel=False)
    except Exception as err:  # clean-fid downloads its weights on first use; offline that fails in several ways
        raise FeaturesUnavailableError(
            f"clean-fid's Inception weights are not available ({type(err).__name__}: {err}). They are downloaded on "
            "first use, which needs the internet; offline, use the project's feature network: --features mnist-cnn "
            "(helpers.evaluation.metrics.compute_features(images, 'mnist-cnn'))"
        ) from err


@torch.no_grad()
def inception_features(images: torch.Tensor, batch_size: int = 64, device="cpu") -> np.ndarray:
    """clean-fid "clean" features: uint8 images resized to 299 x 299 with PIL bicubic, grey repeated to RGB."""
    from cleanfid.resize import make_resizer

    model = inception_model(device)
    resize = make_resizer("PIL", False, "bicubic", (299, 299))
    from helpers.datasets.images import to_uint8

    arrays = to_uint8(images)
    if arrays.shape[-1] == 1:
        arrays = np.repeat(arrays, 3, axis=-1)
    feats = []
    for i in range(0, len(arrays), batch_size):
        batch = np.stack([resize(a) for a in arrays[i : i + batch_size]]).transpose(0, 3, 1, 2)
        feats.append(model(torch.from_numpy(batch).float().to(device)).double().cpu().numpy())
    return np.concatenate(feats)


def compute_features(images: torch.Tensor, features: str = "mnist-cnn", device="cpu") -> np.ndarray:
    if features == "mnist-cnn":
        if images.shape[1:] != (1, 28, 28):
            raise ValueError(f"mnist-cnn features need [N, 1, 28, 28] images, got {list(images.shape)}")
        return mnist_cnn_features(images, device=device)
    if features == "inception":
        return inception_features(images, device=device)
    if features == "pixels":  # for images too small for a feature network (the 8 x 8 digits): C*H*W raw values
        return images.flatten(1).double().cpu().numpy()
    if features.startswith("feature-net:"):
        return feature_net_features(images, features)
    raise ValueError(f"unknown feature network {features!r}; known: {', '.join(FEATURES)}, feature-net:FOLDER")


def frechet_distance(feats1: np.ndarray, feats2: np.ndarray) -> float:
    """FID between two feature sets [N x D] (clean-fid's fid_from_feats: means, covariances, frechet_distance).
    Some of the MNIST-CNN's ReLU features are always 0, so the covariances are singular; scipy's sqrtm warns, and
    clean-fid retries with a small diagonal offset when the result is not finite. The warning is silenced here."""
    import warnings

    from cleanfid.fid import fid_from_feats

    check_features(feats1, feats2)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Matrix is singular")
        return float(fid_from_feats(feats1, feats2))


def kernel_distance(feats1: np.ndarray, feats2: np.ndarray, seed: int = 0, num_subsets: int = 100,
                    subset_size: int = 1000) -> tuple[float, float]:
    """KID (mean, std over `num_subsets` random subsets), each subset by clean-fid's kernel_distance (cubic
    polynomial kernel, unbiased MMD^2). clean-fid draws from numpy's global generator: seeded here, then restored."""
    from cleanfid.fid import kernel_distance as cleanfid_kid

    check_features(feats1, feats2, at_least=KID_MIN_IMAGES)  # fewer images: noise around 0, often below it
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        values = [cleanfid_kid(feats1, feats2, num_subsets=1, max_subset_size=subset_size) for _ in range(num_subsets)]
    finally:
        np.random.set_state(state)
    return float(np.mean(values)), float(np.std(values))


@dataclass
class Scores:
    fid: float
    kid: float
    kid_std: float
    features: str
    num_fake: int
    num_real: int

    def row(self) -> dict:
        return {label("FID", self.features, self.num_fake): self.fid,
                label("KID", self.features, self.num_fake): self.kid, "KID std": self.kid_std}

    def __str__(self) -> str:
        return (f"{label('FID', self.features, self.num_fake)}: {self.fid:.3f}   "
                f"{label('KID', self.features, self.num_fake)}: {self.kid:.5f} ± {self.kid_std:.5f}   "
                f"(against {self.num_real} real images)")


KID_MIN_IMAGES = 10  # kernel_distance refuses fewer: the unbiased MMD^2 of a handful of images is noise around 0


def scores(fake_feats: np.ndarray, real_feats: np.ndarray, features: str, seed: int = 0) -> Scores:
    """FID and KID of a set; with fewer than KID_MIN_IMAGES images KID is NaN (not measured), FID still given."""
    few = len(fake_feats) < KID_MIN_IMAGES
    kid, kid_std = (math.nan, math.nan) if few else kernel_distance(fake_feats, real_feats, seed=seed)
    return Scores(frechet_distance(fake_feats, real_feats), kid, kid_std, features, len(fake_feats), len(real_feats))


def reference_features(real: str, features: str = "mnist-cnn", num: int | None = None, device="cpu") -> np.ndarray:
    """Features of a real data set (a spec such as 'mnist:test', or a folder of PNGs), cached under
    data/cache/fid/ with the command that made them; the cache is keyed by the feature network's weights."""
    import hashlib
    import json
    from pathlib import Path

    from helpers.datasets.images import load_images, load_pngs
    from helpers.paths import ROOT, data_cache, write_atomic

    is_folder = Path(real).is_dir()
    weights = (feature_net_weights(features) if features.startswith("feature-net:")
               else ROOT / "checkpoints" / "mnist-cnn" / "model.safetensors" if features == "mnist-cnn" else None)
    key_src = f"{real}|{features}|{num}|" + (hashlib.sha256(weights.read_bytes()).hexdigest() if weights else "")
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    cache = data_cache() / "fid" / f"{features.split(':')[0]}-{key}.npz"
    if not is_folder and cache.exists():
        return np.load(cache)["features"].astype(np.float64)
    images = load_pngs(real, limit=num) if is_folder else load_images(real).images[:num]
    feats = compute_features(images, features, device=device)
    if not is_folder:
        meta = {"real": real, "features": features, "num": len(feats),
                "command": f"helpers.evaluation.metrics.reference_features({real!r}, {features!r}, num={num})"}
        def save(tmp):
            with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
                np.savez(f, features=feats.astype(np.float32), meta=json.dumps(meta))
        write_atomic(cache, save)
    return feats


def frechet_to(real_feats: np.ndarray):
    """fid(fake_feats) against a fixed real set whose mean and covariance are computed once (the same numbers as
    frechet_distance, which recomputes them on every call)."""
    import warnings

    from cleanfid.fid import frechet_distance as frechet

    mu_r, sigma_r = real_feats.mean(0), np.cov(real_feats, rowvar=False)

    def fid(fake_feats: np.ndarray) -> float:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Matrix is singular")
            return float(frechet(fake_feats.mean(0), np.cov(fake_feats, rowvar=False), mu_r, sigma_r))

    return fid


def fid_interval(fake_feats: np.ndarray, real_feats: np.ndarray, num_boot: int = 200, seed: int = 0,
                 z: float = 1.96, group: int = 1) -> tuple[float, float, float]:
    """FID with a 95% interval: (fid, lo, hi) = fid -/+ z * the standard deviation of FID over `num_boot` bootstrap
    resamples of the generated images (drawn with replacement; the real set is fixed, as it is for every
    configuration compared). The resamples' FIDs are biased upwards (a resample repeats about a third of its images,
    which looks like less diversity), so their spread, not their percentiles, gives the interval; notebook 06 checks
    that spread against the spread over disjoint sets of real images. `group` > 1 resamples blocks of that many
    consecutive rows together (the frames of one clip show one digit, so they are not independent draws)."""
    if num_boot < 2:
        raise ValueError(f"num_boot must be at least 2 for a spread, got {num_boot}")
    if group < 1 or len(fake_feats) % group:
        raise ValueError(f"group must be a positive divisor of the {len(fake_feats)} generated rows, got {group}")
    rng = np.random.default_rng(seed)
    fid = frechet_to(real_feats)
    value = fid(fake_feats)
    units, offsets = len(fake_feats) // group, np.arange(group)
    boots = [fid(fake_feats[(rng.integers(0, units, units)[:, None] * group + offsets).ravel()]) for _ in range(num_boot)]
    sd = float(np.std(boots, ddof=1))
    return value, value - z * sd, value + z * sd


def fid_difference(a_feats: np.ndarray, b_feats: np.ndarray, real_feats: np.ndarray, num_boot: int = 200,
                   seed: int = 0, z: float = 1.96) -> tuple[float, float, float]:
    """FID(A) - FID(B) with a 95% interval from a paired bootstrap: image i of A and image i of B started from the
    same noise (the benchmarks draw image i of every configuration from generator seed + i), so each resample takes
    the same indices from both and the shared noise cancels out of the difference. Returns (d, d - z sd, d + z sd)
    with sd the spread of the resampled differences (as fid_interval); an interval that excludes 0 resolves the
    comparison even where the two FIDs' own intervals overlap."""
    if len(a_feats) != len(b_feats):
        raise ValueError(f"a paired comparison needs the same images on both sides; got {len(a_feats)} and {len(b_feats)}")
    if num_boot < 2:
        raise ValueError(f"num_boot must be at least 2 for a spread, got {num_boot}")
    rng = np.random.default_rng(seed)
    fid = frechet_to(real_feats)
    value = fid(a_feats) - fid(b_feats)
    boots = []
    for _ in range(num_boot):
        idx = rng.integers(0, len(a_feats), len(a_feats))
        boots.append(fid(a_feats[idx]) - fid(b_feats[idx]))
    sd = float(np.std(boots, ddof=1))
    return value, value - z * sd, value + z * sd


def fid_blocks(fake_feats: np.ndarray, real_feats: np.ndarray, n: int, level: float = 0.95) -> dict:
    """FID at N = n over the disjoint blocks of n rows of `fake_feats` (e.g. images 0..Kn-1 of one seed, each image
    from its own generator, so the blocks are independent draws): the mean over the K blocks and its `level`
    t-interval, mean -/+ t_{K-1} sd / sqrt(K) (stats.t_interval), and the K values themselves ("sets": a paired
    comparison of two configurations drawn from the same seeds reads them, stats.paired_sets). With one block, the
    interval is fid_interval's bootstrap."""
    from scipy import stats

    k = len(fake_feats) // n
    if k < 1:
        raise ValueError(f"need at least n = {n} rows for one block, got {len(fake_feats)}")
    if k == 1:
        value, lo, hi = fid_interval(fake_feats[:n], real_feats)
        return {"fid": value, "lo": lo, "hi": hi, "blocks": 1, "sd": (hi - value) / 1.96, "interval": "bootstrap",
                "sets": [value]}
    fid = frechet_to(real_feats)
    values = np.array([fid(fake_feats[i * n:(i + 1) * n]) for i in range(k)])
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * sd / k**0.5
    return {"fid": mean, "lo": mean - half, "hi": mean + half, "blocks": k, "sd": sd, "interval": f"t over {k} blocks",
            "sets": [float(v) for v in values]}


def fid_by_sample_size(fake_pool: np.ndarray, real: np.ndarray, ns, num_boot: int = 10, seed: int = 0):
    """FID's dependence on the number of fake samples N: for each N, `num_boot` draws of N rows (without
    replacement) from `fake_pool`, each scored against all of `real`. With real images as the pool this is the floor
    a perfect model would get at that N (FID is biased upwards at small N) and its spread. Returns a DataFrame with
    columns N, fid_mean, fid_std, fid_min, fid_max."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    fid = frechet_to(real)
    rows = []
    for n in ns:
        if n > len(fake_pool):
            raise ValueError(f"N = {n} is more than the {len(fake_pool)} rows of the pool")
        values = [fid(fake_pool[rng.choice(len(fake_pool), n, replace=False)]) for _ in range(num_boot)]
        rows.append({"N": n, "fid_mean": np.mean(values), "fid_std": np.std(values, ddof=1) if num_boot > 1 else 0.0,
                     "fid_min": np.min(values), "fid_max": np.max(values)})
    return pd.DataFrame(rows)


def degrade(images: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Reference corruptions for sanity checks of a metric, on [-1, 1] images [N x C x H x W]:
    "noise" (uniform noise of the same shape), "blur" (Gaussian blur, sigma = 1 pixel), "shuffle" (each image's
    7 x 7 patches permuted at random: local statistics kept, global structure lost)."""
    import torchvision.transforms.functional as TF

    if kind == "noise":
        return torch.rand(images.shape, generator=generator) * 2 - 1
    if kind == "blur":
        return TF.gaussian_blur(images, kernel_size=5, sigma=1.0)
    if kind == "shuffle":
        n, c, h, w = images.shape
        p = 7
        if h % p or w % p:
            raise ValueError(f"shuffle needs sizes divisible by {p}, got {h} x {w}")
        patches = images.unfold(2, p, p).unfold(3, p, p).reshape(n, c, -1, p, p)  # (N, C, P, p, p)
        order = torch.stack([torch.randperm(patches.shape[2], generator=generator) for _ in range(n)])
        patches = patches[torch.arange(n)[:, None], :, order].transpose(1, 2)  # (N, C, P, p, p)
        return patches.reshape(n, c, h // p, w // p, p, p).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)
    raise ValueError(f"unknown degradation {kind!r}; known: noise, blur, shuffle")
