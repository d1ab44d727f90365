"""The diffusion transformer (helpers/models/dit.py): patches, adaLN-Zero's identity at initialisation, the four
conditionings, and the same outputs as diffusers' DiTTransformer2DModel on the same weights."""
import pytest
import torch

from helpers.models.dit import CONDITIONINGS, DiT, DiTConfig, patchify, pos_embed_2d, to_diffusers, unpatchify

SMALL = dict(in_channels=3, image_size=8, patch_size=2, hidden_size=32, depth=2, num_heads=4, num_classes=10)


def perturbed(cfg, seed=0):
    """A DiT whose every weight is moved by noise, so that zero-initialised layers take part in the comparison."""
    torch.manual_seed(seed)
    model = DiT(cfg).eval()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(100 + i)))
    return model


def inputs(cfg, n=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, *cfg.sample_shape, generator=g), torch.tensor([0, 17, 250, 998, 999][:n]),
            torch.tensor([0, 3, 9, 10, 5][:n]))  # 10: the null label


def test_patchify_round_trip_and_layout():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 16, 12)
    assert torch.equal(unpatchify(tokens, 2, 3), x)
    # token 5 is the patch in row 1, column 1 (row-major), flattened as (p, p, C)
    assert torch.equal(tokens[0, 5].reshape(2, 2, 3), x[0, :, 2:4, 2:4].permute(1, 2, 0))
    assert torch.equal(unpatchify(patchify(x, 1), 1, 3), x) and torch.equal(unpatchify(patchify(x, 8), 8, 3), x)


def test_the_patch_embedding_equals_a_linear_map_of_patchify():
    """The strided convolution is the paper's "linear embedding of each patch"."""
    model = DiT(DiTConfig(**SMALL))
    x = torch.randn(2, 3, 8, 8)
    conv = model.patch(x).flatten(2).transpose(1, 2)
    w = model.patch.weight.permute(0, 2, 3, 1).reshape(model.config.hidden_size, -1)  # (d, p, p, C) as patchify
    torch.testing.assert_close(conv, patchify(x, 2) @ w.T + model.patch.bias, rtol=1e-5, atol=1e-5)


def test_adaln_zero_blocks_start_as_the_identity_and_every_variant_starts_at_zero():
    cfg = DiTConfig(**SMALL)
    model = DiT(cfg).eval()
    h, emb = torch.randn(5, cfg.num_patches, cfg.hidden_size), torch.randn(5, cfg.hidden_size)
    for block in model.blocks:
        assert torch.equal(block(h, emb, emb[:, None]), h)
    for kind in CONDITIONINGS:
        out = DiT(DiTConfig(**SMALL, conditioning=kind))(*inputs(cfg))
        assert out.shape == (5, *cfg.sample_shape) and torch.count_nonzero(out) == 0, kind
    adaln = DiT(DiTConfig(**SMALL, conditioning="adaln"))  # no zero init: its blocks change their input at once
    assert not torch.allclose(adaln.blocks[0](h, emb, emb[:, None]), h)


@pytest.mark.parametrize("kind", CONDITIONINGS)
def test_every_conditioning_uses_t_and_y(kind):
    cfg = DiTConfig(**SMALL, conditioning=kind)
    model = perturbed(cfg)
    x, t, y = inputs(cfg)
    with torch.no_grad():
        base = model(x, t, y)
        assert not torch.allclose(base, model(x, t.flip(0), y))
        assert not torch.allclose(base, model(x, t, (y + 1) % 10))
        assert torch.equal(model(x, t), model(x, t, torch.full_like(y, 10)))  # no labels: the null label


def test_position_embedding_is_the_papers():
    """Rows of the 2-D embedding: the first half depends on the column only, the second on the row only, each
    [sin, cos] of the position times 10000^(-2i/(d/2))."""
    e = pos_embed_2d(8, 3)  # 3 x 3 tokens
    assert torch.equal(e[0, :4], e[3, :4]) and not torch.equal(e[0, :4], e[1, :4])  # column 0 in rows 0 and 1
    assert torch.equal(e[0, 4:], e[1, 4:]) and not torch.equal(e[0, 4:], e[3, 4:])  # row 0 in columns 0 and 1
    omega = 1 / 10000 ** (torch.arange(2) / 2)
    torch.testing.assert_close(e[5, :4], torch.cat([torch.sin(2 * omega), torch.cos(2 * omega)]).float())  # column 2


@pytest.mark.parametrize("size,patch", [(8, 2), (7, 1)])
def test_same_outputs_as_diffusers_dit_on_the_same_weights(size, patch):
    cfg = DiTConfig(**{**SMALL, "image_size": size, "patch_size": patch})
    ours = perturbed(cfg)
    twin = to_diffusers(ours)
    x, t, y = inputs(cfg)
    with torch.no_grad():
        expected = twin(x, timestep=t, class_labels=y).sample
        torch.testing.assert_close(ours(x, t, y), expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().mean() > 1e-2  # the comparison is not between two zeros


def test_bad_configs_and_inputs_are_refused():
    with pytest.raises(ValueError, match="conditioning must be one of"):
        DiTConfig(conditioning="film")
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        DiTConfig(image_size=7, patch_size=2)
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        DiTConfig(hidden_size=36, num_heads=5)
    model = DiT(DiTConfig(**SMALL))
    with pytest.raises(ValueError, match=r"expected input of shape \[N, 3, 8, 8\]"):
        model(torch.randn(2, 3, 7, 7), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 10\]"):
        model(torch.randn(2, 3, 8, 8), torch.tensor([1, 2]), torch.tensor([0, 11]))
    with pytest.raises(ValueError, match="only a class-conditional adaln-zero DiT"):
        to_diffusers(DiT(DiTConfig(**SMALL, conditioning="in-context")))


TEXT = dict(vocab_size=46, max_length=16, width=16, depth=1, num_heads=2, embed_dim=8, latent_shape=[3, 8, 8])


def test_a_text_conditioned_dit_starts_as_the_identity_reads_its_caption_and_guides_with_the_empty_one():
    from helpers.datasets.captions import Tokenizer
    from helpers.denoisers import Denoiser
    from helpers.samplers.guidance import CFGDenoiser
    from helpers.models.layers import timestep_embedding
    from helpers.samplers import generate
    from helpers.schedules import Schedule

    cfg = DiTConfig(**{**SMALL, "num_classes": None}, text=TEXT)
    tok = Tokenizer()
    ids = tok.batch(["a thick seven", "a thin one", "", "seven"])
    x, t = torch.randn(4, *cfg.sample_shape), torch.tensor([0, 100, 500, 999])
    fresh = DiT(cfg).eval()
    with torch.no_grad():
        assert fresh(x, t, ids).abs().max() == 0  # adaLN-Zero's identity and the zero cross-attention output
        emb, context, mask = fresh.embed_text(fresh.time_mlp(timestep_embedding(t, 256)), ids)
        h = fresh.patch(x).flatten(2).transpose(1, 2) + fresh.pos
        assert all(torch.equal(block(h, emb, context, mask), h) for block in fresh.blocks)
    assert mask[2].tolist() == [True, True] + [False] * 14  # the empty caption: <bos> <eos>
    assert not any(p.requires_grad for p in fresh.text.parameters())  # the text encoder is frozen
    model = perturbed(cfg)
    with torch.no_grad():
        a, b = model(x, t, ids), model(x, t, tok.batch(["a thin one"] * 4))
        assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])  # the caption matters, per sample
        assert torch.equal(model.null_condition(ids), tok.batch([""] * 4))
        torch.testing.assert_close(model(x, t, None), model(x, t, tok.batch([""] * 4)))  # no caption = the empty one
    denoiser = Denoiser(model, Schedule.from_name("linear", 1000))
    images = generate(CFGDenoiser(denoiser, 3.0), 4, 0, sampler="ddim", steps=3, y=ids, batch_size=4)
    assert images.shape == (4, 3, 8, 8) and torch.isfinite(images).all()
    with pytest.raises(ValueError, match=r"give token ids \[N, L\]"):
        CFGDenoiser(denoiser, 3.0)(x, t, torch.tensor([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="a text-conditioned DiT has no classes"):
        DiTConfig(**SMALL, text=TEXT)
