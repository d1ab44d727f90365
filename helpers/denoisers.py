"""One denoiser interface for every sampler: `denoiser(x_t, t, y=None) -> eps_hat`, plus `denoiser.alpha_bar` and
`denoiser.sample_shape`.

Adapters turn a network that predicts eps, v or x0 into that form, and count network evaluations (NFE) exactly;
wrappers (`DenoiserWrapper`, e.g. the guided denoisers of helpers.samplers.guidance) pass these through. Loading: our
checkpoints (`from_checkpoint`) and diffusers' UNet2DModel, from a folder or the hub (`from_diffusers`).
"""
from __future__ import annotations

import warnings

from pathlib import Path

import torch
from torch import nn

from helpers.diffusion import eps_from_v, eps_from_x0
from helpers.paths import hub_reachable
from helpers.schedules import Schedule


class Denoiser(nn.Module):
    """Wraps a network `net(x_t, t[, y])` trained with `prediction` in {eps, v, x0} on `schedule`. `sample_shape` is
    the shape of one sample (from the network's config when it has one, e.g. (C, H, W))."""

    def __init__(self, net: nn.Module, schedule: Schedule, prediction: str = "eps", channels_last: bool = False,
                 sample_shape: tuple[int, ...] | None = None):
        super().__init__()
        if prediction not in ("eps", "v", "x0"):
            raise ValueError(f"unknown prediction type {prediction!r}; known types: eps, v, x0")
        self.net, self.schedule, self.prediction = net, schedule, prediction
        self.alpha_bar = schedule.alpha_bar
        self.channels_last = channels_last
        config_shape = getattr(getattr(net, "config", None), "sample_shape", None)
        self.sample_shape = tuple(sample_shape or config_shape or ()) or None
        self.nfe = 0  # network evaluations, counted per call (a batch counts once)
        self.decoder = None  # latent -> image, for a model of an autoencoder's latents (see from_checkpoint)
        self.clip_x0 = None  # the model's own clip_x0 for every sampler (False for latents); None: each sampler's default

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_inputs(self.net, x_t, y)
        self.nfe += 1
        # channels_last is a layout of 4-D tensors only (images); a video or a row passes as it is.
        inp = x_t.contiguous(memory_format=torch.channels_last) if self.channels_last and x_t.ndim == 4 else x_t
        out = (self.net(inp, t) if y is None else self.net(inp, t, y)).float()
        if self.prediction == "eps":
            return out
        if self.prediction == "v":
            return eps_from_v(self.schedule, x_t, t, out)
        return eps_from_x0(self.schedule, x_t, t, out)


class DenoiserWrapper(nn.Module):
    """A denoiser around another one (`self.denoiser`): alpha_bar, sample_shape and the NFE count are the wrapped
    one's. The guided denoisers (helpers.samplers.guidance) are wrappers."""

    @property
    def alpha_bar(self) -> torch.Tensor:
        return self.denoiser.alpha_bar

    @property
    def sample_shape(self):
        return getattr(self.denoiser, "sample_shape", None)

    @property
    def nfe(self) -> int:
        return self.denoiser.nfe

    @property
    def decoder(self):
        return getattr(self.denoiser, "decoder", None)

    @property
    def clip_x0(self):
        return getattr(self.denoiser, "clip_x0", None)

    @nfe.setter
    def nfe(self, value: int) -> None:
        self.denoiser.nfe = value


def model_num_classes(denoiser) -> int | None:
    """The number of classes of a conditional denoiser (its null label is this number), None if unconditional."""
    if getattr(denoiser, "num_classes", None) is not None:
        return denoiser.num_classes
    config = getattr(getattr(denoiser, "net", None), "config", None)
    return getattr(config, "num_classes", None)


def base_net(denoiser) -> nn.Module | None:
    """The network under any wrappers (guidance) of a denoiser."""
    while hasattr(denoiser, "denoiser"):
        denoiser = denoiser.denoiser
    return getattr(denoiser, "net", None)


def text_conditioned(denoiser) -> bool:
    """Whether the denoiser's network takes token ids [N, L] (a caption) as its condition instead of class labels."""
    return getattr(getattr(base_net(denoiser), "config", None), "text", None) is not None


def check_inputs(net: nn.Module, x_t: torch.Tensor, y: torch.Tensor | None) -> None:
    """x_t of the network's floating-point dtype; labels (if any) integers, one per sample (or, for a
    text-conditioned network, token ids [N, L])."""
    param = next(net.parameters(), None)
    if param is not None and x_t.dtype != param.dtype:
        raise ValueError(f"x_t has dtype {x_t.dtype} but the network's weights are {param.dtype}; convert it with "
                         f".to({param.dtype})")
    if y is not None:
        if y.is_floating_point() or y.dtype == torch.bool:
            raise ValueError(f"class labels must be integers (an [N] LongTensor), got dtype {y.dtype}")
        if getattr(getattr(net, "config", None), "text", None) is not None:
            if y.ndim != 2 or y.shape[0] != x_t.shape[0]:
                raise ValueError(f"got captions of shape {list(y.shape)} for {x_t.shape[0]} samples; give token ids [N, L], "
                                 "one caption per sample")
        elif y.shape != (x_t.shape[0],):
            raise ValueError(f"got labels of shape {list(y.shape)} for {x_t.shape[0]} samples; give one label per sample")


def check_labels(y: torch.Tensor, num_classes: int, owner: str = "the model's") -> None:
    """Raise ValueError unless every label is an integer in [0, num_classes) (the null label num_classes is not a
    class)."""
    if y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"class labels must be integers (an [N] LongTensor), got dtype {y.dtype}")
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise ValueError(f"class label {int(bad[0])} is outside {owner} classes 0..{num_classes - 1}")


def from_checkpoint(folder, ema: bool = True, device="cpu", channels_last: bool | None = None):
    """The Denoiser of one of our checkpoints (any registered architecture, see helpers.models), and its model card.
    channels_last (default: on the CPU) applies to networks of 4-D images only."""
    from helpers.checkpoints import card_schedule, load_model, read_calibration

    net, card = load_model(folder, ema=ema, device=device)
    schedule = card_schedule(card, folder)
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    channels_last = channels_last and len(getattr(getattr(net, "config", None), "sample_shape", ())) == 3
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    denoiser = Denoiser(net, schedule, card.get("prediction"), channels_last=channels_last)
    if "autoencoder" in card:  # a latent diffusion model: generate() decodes its samples with this autoencoder
        denoiser.decoder = LatentDecoder.from_checkpoint(card["autoencoder"], device=device)
        denoiser.clip_x0 = card.get("sampling", {}).get("clip_x0", False)  # latents are not bounded to [-1, 1]
    denoiser.calibration = read_calibration(folder)  # fitted settings of our samplers, if any
    return denoiser, card


def from_snapshot(folder, step: int, ema: bool = True, device="cpu") -> "Denoiser":
    """The Denoiser of the raw (ema=False) or EMA weights of one snapshot of a checkpoint, built with its card."""
    from helpers.checkpoints import card_schedule, load_model, snapshot_path

    net, card = load_model(folder, device=device, weights=snapshot_path(folder, step, ema))
    return Denoiser(net, card_schedule(card, folder), card["prediction"])


class LatentDecoder(nn.Module):
    """z (scaled latents, as the diffusion model saw them) -> images: the autoencoder's decoder of z / scaling_factor."""

    def __init__(self, autoencoder: nn.Module, scaling_factor: float):
        super().__init__()
        self.autoencoder, self.scaling_factor = autoencoder, scaling_factor

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(z / self.scaling_factor)

    @classmethod
    def from_checkpoint(cls, folder: str, device="cpu") -> "LatentDecoder":
        """The autoencoder a latent model's card names (a path relative to the repository root, or absolute)."""
        from helpers.checkpoints import CheckpointError, load_model
        from helpers.paths import ROOT

        path = Path(folder) if Path(folder).is_absolute() else ROOT / folder
        ae, card = load_model(path, device=device)
        if "latent" not in card:
            raise CheckpointError(f"{path}: the autoencoder's card has no latent scaling factor (its training did not finish)")
        return cls(ae, card["latent"]["scaling_factor"])


class DiffusersModelError(RuntimeError):
    """A diffusers model that cannot be loaded; the message says how to get it."""


class DiffusersUNet(nn.Module):
    """diffusers' UNet2DModel behind our network signature net(x_t, t[, y])."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x_t, t, y=None):
        return self.unet(x_t, t, class_labels=y).sample


DIFFUSERS_PREDICTION = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}


def load_unet_and_scheduler(name_or_path: str, sub: tuple, opts: dict):
    """diffusers' UNet2DModel and DDPMScheduler from a pipeline layout (unet/, scheduler/) or a model folder."""
    from diffusers import DDPMScheduler, UNet2DModel

    try:
        return (UNet2DModel.from_pretrained(name_or_path, subfolder=sub[0], **opts),
                DDPMScheduler.from_pretrained(name_or_path, subfolder=sub[1], **opts))
    except (OSError, EnvironmentError):
        if sub[0] is None:
            raise
        # a hub model repo with files at its root
        return UNet2DModel.from_pretrained(name_or_path, **opts), DDPMScheduler.from_pretrained(name_or_path, **opts)


def from_diffusers(name_or_path: str, device="cpu") -> tuple[Denoiser, dict]:
    """A Denoiser around a diffusers UNet2DModel and its DDPMScheduler's betas: a local folder in save_pretrained
    layout (a pipeline with unet/ and scheduler/, or a model folder with its scheduler_config.json) or a hub id such
    as google/ddpm-cifar10-32 (needs the internet the first time)."""
    local = Path(name_or_path)
    sub = ("unet", "scheduler") if (local / "unet").is_dir() or is_hub_id(name_or_path) else (None, None)
    # Without a network, only the local Hugging Face cache can serve a hub id; say so at once instead of retrying.
    opts = {"local_files_only": True} if is_hub_id(name_or_path) and not hub_reachable() else {}
    try:
        with warnings.catch_warnings():  # diffusers passes huggingface_hub a deprecated argument; not the user's doing
            warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*")
            unet, sched = load_unet_and_scheduler(name_or_path, sub, opts)
    except Exception as err:
        where = (f"the folder {local}" if local.exists() else "the local Hugging Face cache (huggingface.co is not "
                 "reachable from here)" if opts else f"the Hugging Face hub (there is no folder {local} here)")
        raise DiffusersModelError(
            f"could not load a diffusers UNet2DModel and DDPMScheduler from {name_or_path!r} via {where}: "
            f"{type(err).__name__}: {str(err).splitlines()[0][:200]}. On a machine with internet, download it with "
            f"`huggingface-cli download {name_or_path} --local-dir DIR` and pass DIR."
        ) from err
    prediction = DIFFUSERS_PREDICTION.get(sched.config.prediction_type)
    if prediction is None:
        raise DiffusersModelError(f"unsupported prediction type {sched.config.prediction_type!r} in {name_or_path}")
    schedule = Schedule(f"diffusers:{sched.config.beta_schedule}", sched.betas.double())
    info = {"shape": (unet.config.in_channels, unet.config.sample_size, unet.config.sample_size),
            "T": schedule.T, "source": name_or_path}
    return Denoiser(DiffusersUNet(unet.to(device).eval()), schedule, prediction, sample_shape=info["shape"]), info


def is_hub_id(name: str) -> bool:
    """'owner/name' that is no path here: not existing, and its first part not a local folder (so a mistyped
    'checkpoints/ddpm-mnst' is a missing local checkpoint, not a model on the hub)."""
    return (not Path(name).exists() and name.count("/") == 1 and not name.startswith((".", "/", "~"))
            and not Path(name).parent.is_dir())


def load_denoiser(checkpoint: str, ema: bool = True, device="cpu") -> tuple[Denoiser, dict]:
    """Our checkpoint folder (with a model_card.json) or a diffusers model (a save_pretrained folder or a hub id);
    returns the Denoiser and {"shape": (C, H, W), "T": T, "source": ...}."""
    from helpers.checkpoints import CARD

    path = Path(checkpoint)
    diffusers_folder = path.is_dir() and not (path / CARD).exists() and (
        (path / "config.json").exists() or (path / "unet").is_dir())
    if diffusers_folder or is_hub_id(str(checkpoint)):
        return from_diffusers(str(checkpoint), device=device)
    denoiser, card = from_checkpoint(checkpoint, ema=ema, device=device)
    return denoiser, {"shape": denoiser.sample_shape, "T": card["schedule"]["T"], "source": str(checkpoint),
                      "sampling": card.get("sampling", {})}
