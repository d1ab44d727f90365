"""Every registered architecture (helpers.models.ARCHITECTURES) is built from a model card and gets the same checks,
in the manner of diffusers' ModelTesterMixin: output shape, determinism, and a save/load round trip through
helpers.checkpoints that gives the same outputs. A new family adds its case to CASES (the first test demands it)."""
import json

import pytest
import torch

from helpers import checkpoints as ckpt
from helpers.models import ARCHITECTURES, architecture_of, build_model, config_from_card

# architecture -> (the model card of a small instance, a function making its inputs, the expected output shape)
CASES = {
    "unet": ({"kind": "ddpm", "model": {"in_channels": 1, "image_size": 8, "base_channels": 16,
                                         "channel_mults": [1, 2], "attention_resolutions": [4], "num_classes": 10}},
             lambda g: (torch.randn(3, 1, 8, 8, generator=g), torch.tensor([0, 500, 999]), torch.tensor([1, 2, 10])),
             (3, 1, 8, 8)),
    "dit": ({"kind": "ddpm", "architecture": "dit", "model": {"in_channels": 4, "image_size": 4, "patch_size": 2,
                                                              "hidden_size": 32, "depth": 2, "num_heads": 2, "num_classes": 10}},
            lambda g: (torch.randn(3, 4, 4, 4, generator=g), torch.tensor([0, 500, 999]), torch.tensor([1, 2, 10])),
            (3, 4, 4, 4)),
    "autoencoder-kl": ({"kind": "autoencoder", "architecture": "autoencoder-kl",
                        "model": {"in_channels": 1, "image_size": 8, "latent_channels": 2, "block_out_channels": [8, 16],
                                  "norm_num_groups": 4}},
                       lambda g: (torch.randn(2, 1, 8, 8, generator=g), torch.Generator().manual_seed(0)),
                       (2, 1, 8, 8)),
    "video-unet": ({"kind": "ddpm", "architecture": "video-unet",
                    "model": {"in_channels": 1, "image_size": 8, "num_frames": 3, "max_frames": 4, "base_channels": 8,
                              "channel_mults": [1, 2], "attention_resolutions": [4], "num_heads": 2, "groups": 4}},
                   lambda g: (torch.randn(2, 3, 1, 8, 8, generator=g), torch.tensor([0, 999])),
                   (2, 3, 1, 8, 8)),
    "mlp": ({"kind": "tabddpm", "model": {"num_numerical": 3, "cat_sizes": [2, 4], "hidden": 32, "layers": 2,
                                          "emb_dim": 16}},
            lambda g: (torch.randn(5, 9, generator=g), torch.tensor([0, 1, 2, 3, 999])),
            (5, 9)),
    "digit-cnn": ({"kind": "mnist-classifier", "feature_dim": 32},
                  lambda g: (torch.randn(2, 1, 28, 28, generator=g),),
                  (2, 10)),
    "noisy-classifier": ({"kind": "noisy-classifier", "config": {"in_channels": 1, "image_size": 8, "base_channels": 16,
                                                                 "num_classes": 10}},
                         lambda g: (torch.randn(4, 1, 8, 8, generator=g), torch.tensor([0, 10, 100, 999])),
                         (4, 10)),
    "feature-net": ({"kind": "feature-net", "architecture": "feature-net",
                     "model": {"in_channels": 1, "image_size": 8, "video": True, "channels": [4, 8], "feature_dim": 16,
                               "heads": {"digit": 10, "direction": 8}}},
                    lambda g: (torch.randn(2, 3, 1, 8, 8, generator=g),),
                    (2, 18)),  # one logit per class of each head, concatenated
    "text-encoder": ({"kind": "text-encoder", "architecture": "text-encoder",
                      "model": {"vocab_size": 12, "max_length": 6, "width": 16, "depth": 1, "num_heads": 2, "embed_dim": 8,
                                "latent_shape": [2, 3, 3]}},
                     lambda g: (torch.tensor([[1, 5, 7, 2, 0, 0], [1, 9, 2, 0, 0, 0]]),),
                     (2, 6 * 16 + 8)),  # every token's vector and the pooled embedding, concatenated
}


def test_every_registered_architecture_has_a_case():
    assert set(CASES) == set(ARCHITECTURES)


def build(name, seed=0, perturb=True):
    """The model of CASES[name], initialised with `seed`; every tensor then moved by a fixed small noise, so that
    zero-initialised output layers (the U-Net's) give non-zero outputs to compare."""
    torch.manual_seed(seed)
    model = build_model(CASES[name][0]).eval()
    if perturb:
        with torch.no_grad():
            for i, p in enumerate(model.parameters()):
                p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
    return model


def outputs(model, name, seed=1):
    with torch.no_grad():
        out = model(*CASES[name][1](torch.Generator().manual_seed(seed)))
    if isinstance(out, dict):  # a feature net's heads
        return torch.cat(list(out.values()), 1)
    if isinstance(out, tuple):  # a text encoder's tokens and pooled embedding
        return torch.cat([o.flatten(1) for o in out], 1)
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_built_from_its_card_with_the_right_output_shape(name):
    card = CASES[name][0]
    assert architecture_of(card) == name  # old cards: found by their kind
    assert architecture_of({**card, "architecture": name}) == name
    model = build(name, perturb=False)
    assert isinstance(model, ARCHITECTURES[name].network)
    assert isinstance(config_from_card(card), ARCHITECTURES[name].config)
    assert tuple(outputs(model, name).shape) == CASES[name][2]


@pytest.mark.parametrize("name", sorted(CASES))
def test_deterministic(name):
    assert torch.equal(outputs(build(name), name), outputs(build(name), name))
    assert not torch.equal(outputs(build(name), name), outputs(build(name, seed=5), name))


@pytest.mark.parametrize("name", sorted(CASES))
def test_save_and_load_round_trip(name, tmp_path):
    model = build(name, seed=3)
    ckpt.save_tensors(model.state_dict(), tmp_path / ckpt.MODEL)
    (tmp_path / ckpt.CARD).write_text(json.dumps(CASES[name][0]))
    loaded, card = ckpt.load_model(tmp_path)
    assert card == CASES[name][0] and not loaded.training
    assert torch.equal(outputs(loaded, name), outputs(model.eval(), name))


def test_unknown_architecture_and_bad_config_are_checkpoint_errors(tmp_path):
    (tmp_path / ckpt.CARD).write_text(json.dumps({"kind": "ddpm", "architecture": "transformer-xl", "model": {}}))
    with pytest.raises(ckpt.CheckpointError, match="unknown architecture 'transformer-xl'.*known architectures: unet"):
        ckpt.load_model(tmp_path)
    (tmp_path / ckpt.CARD).write_text(json.dumps({"kind": "ddpm", "model": {"image_sizes": 8}}))
    with pytest.raises(ckpt.CheckpointError, match="has no valid model config: TypeError"):
        ckpt.load_model(tmp_path)
