"""The networks, one module per family, and the registry that builds any of them from its model card.

    layers.py      the shared blocks: time embedding, residual, attention, down- and upsampling
    unet.py        the image U-Net (eps, v or x0 prediction; optional class labels with a null label)
    dit.py         the diffusion transformer (DiT): patches, adaLN-Zero or the paper's other conditionings
    autoencoder.py the latent-diffusion autoencoder (diffusers' AutoencoderKL, small)
    video_unet.py  the factorised space-time U-Net of video diffusion (clips [N x F x C x H x W])
    mlp.py         TabDDPM's MLP denoiser for tables
    classifier.py  the MNIST classifier that judges samples, and the noise-aware classifier for guidance
    text_encoder.py a small CLIP-like text encoder (tokens -> vectors to cross-attend to, and a pooled embedding)
    feature_net.py the attribute classifiers of images or clips whose features give our FID and FVD (shapes, video)

A new family is one module (a config dataclass and an nn.Module that takes it) and one line in ARCHITECTURES.
A model card names its architecture in "architecture"; cards written before that field existed are read by their
"kind" (KIND_ARCHITECTURE).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from helpers.models.autoencoder import Autoencoder, AutoencoderConfig
from helpers.models.classifier import DigitCNN, DigitCNNConfig, NoisyClassifier, NoisyClassifierConfig
from helpers.models.dit import DiT, DiTConfig
from helpers.models.feature_net import FeatureNet, FeatureNetConfig
from helpers.models.text_encoder import TextEncoder, TextEncoderConfig
from helpers.models.layers import count_parameters
from helpers.models.mlp import MLPConfig, MLPDenoiser
from helpers.models.unet import UNet, UNetConfig
from helpers.models.video_unet import VideoUNet, VideoUNetConfig

__all__ = ["ARCHITECTURES", "Architecture", "architecture_of", "build_model", "config_from_card", "count_parameters"]


@dataclass(frozen=True)
class Architecture:
    config: type  # the config dataclass
    network: type  # the nn.Module, built as network(config)
    card_key: str | None  # the card's entry holding the config; None: config.from_card(card)


ARCHITECTURES: dict[str, Architecture] = {
    "unet": Architecture(UNetConfig, UNet, "model"),
    "dit": Architecture(DiTConfig, DiT, "model"),
    "autoencoder-kl": Architecture(AutoencoderConfig, Autoencoder, "model"),
    "video-unet": Architecture(VideoUNetConfig, VideoUNet, "model"),
    "mlp": Architecture(MLPConfig, MLPDenoiser, "model"),
    "digit-cnn": Architecture(DigitCNNConfig, DigitCNN, None),
    "noisy-classifier": Architecture(NoisyClassifierConfig, NoisyClassifier, "config"),
    "feature-net": Architecture(FeatureNetConfig, FeatureNet, "model"),
    "text-encoder": Architecture(TextEncoderConfig, TextEncoder, "model"),
}
KIND_ARCHITECTURE = {"ddpm": "unet", "tabddpm": "mlp", "mnist-classifier": "digit-cnn",
                     "noisy-classifier": "noisy-classifier"}


def architecture_of(card: dict) -> str:
    """The registry name of the network a model card describes."""
    name = card.get("architecture") or KIND_ARCHITECTURE.get(card.get("kind"))
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r} (card kind {card.get('kind')!r}); "
                         f"known architectures: {', '.join(ARCHITECTURES)}")
    return name


def config_from_card(card: dict):
    """The config dataclass instance of a model card (TypeError or KeyError if the card does not fit it)."""
    arch = ARCHITECTURES[architecture_of(card)]
    if arch.card_key is None:
        return arch.config.from_card(card)
    return arch.config(**card[arch.card_key])


def build_model(card: dict) -> nn.Module:
    """A freshly initialised network of the architecture and config that a model card describes."""
    return ARCHITECTURES[architecture_of(card)].network(config_from_card(card))
