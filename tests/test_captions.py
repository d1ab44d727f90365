"""Captions from measured attributes, and the word-level tokenizer (notebook 11)."""
import numpy as np
import pytest
import torch

from helpers.datasets.captions import HELD_OUT, LEVELS, TEMPLATES, Tokenizer, Vocabulary, caption, measure


def stroke(width: int, shear: float = 0.0) -> torch.Tensor:
    """A vertical bar of `width` pixels and 16 rows in a 28 x 28 image, its row r shifted by shear * (13.5 - r)."""
    img = -torch.ones(1, 1, 28, 28)
    for r in range(6, 22):
        c = int(round(12 + shear * (13.5 - r)))
        img[0, 0, r, c:c + width] = 1
    return img


def test_thickness_is_the_stroke_width_and_slant_the_lean():
    for w in (1, 2, 4):
        got = measure(stroke(w))["thickness"][0]
        assert got == pytest.approx(16 * w / (16 + w), rel=1e-9)  # area / half the boundary: 16w / ((2*16 + 2w) / 2)
    slants = [measure(stroke(2, s))["slant"][0] for s in (-0.4, 0.0, 0.4)]
    assert slants[0] < -0.3 and abs(slants[1]) < 1e-9 and slants[2] > 0.3  # the top leaning right is positive
    with pytest.raises(ValueError, match=r"measure takes grey images \[N, 1, H, W\], got \[1, 3, 8, 8\]"):
        measure(torch.zeros(1, 3, 8, 8))


def test_words_follow_the_fitted_terciles_and_captions_read_well():
    attrs = {"thickness": np.array([1.0, 2.0, 3.0, 1.5, 2.5, 3.5]), "slant": np.array([-0.5, 0.0, 0.5, -0.4, 0.1, 0.6])}
    vocab = Vocabulary.fit(attrs)
    words = vocab.words(attrs)
    assert [w["thickness"] for w in words] == ["thin", "regular", "thick", "thin", "regular", "thick"]
    assert [w["slant"] for w in words] == ["slanted left", "upright", "slanted right", "slanted left", "upright", "slanted right"]
    assert caption(words[1], 8, "a {slant} {d}") == "an upright eight"
    assert caption(words[0], 7, "an {slant} {d} in {thickness} lines") == "a slanted left seven in thin lines"
    assert caption(words[2], 3, TEMPLATES[1]) == "the digit 3, thick and slanted right"
    assert caption(words[1], 1, "a {d} written {thickness}") == "a one written regular"
    assert caption(words[1], 8, "a {d} written {thickness}") == "an eight written regular"
    assert not set(TEMPLATES) & set(HELD_OUT)


def test_tokenizer_round_trip_unknown_words_and_length():
    tok = Tokenizer(max_length=8)
    words = {"thickness": "thick", "slant": "upright"}
    for template in TEMPLATES + HELD_OUT:  # every phrasing of every digit is in the vocabulary
        for d in range(10):
            text = caption(words, d, template)
            assert tok.unknown(text) == []
    ids = tok.encode("A thick, upright 7!")
    assert ids[0] == tok.bos and ids[5] == tok.eos and ids[6:] == [tok.pad] * 2 and tok.decode(ids) == "a thick upright 7"
    assert tok.unknown("a red cat") == ["red", "cat"] and tok.encode("a red cat")[2:4] == [tok.unk, tok.unk]
    long = tok.encode(" ".join(["seven"] * 20))
    assert len(long) == 8 and long[-1] == tok.eos
    assert tok.encode("") == [tok.bos, tok.eos] + [tok.pad] * 6
    assert tok.batch(["seven", "a thin one"]).shape == (2, 8)


def test_a_caption_fits_every_image_with_the_attributes_it_names():
    """The contrastive loss's positives: caption i fits image j when j has the digit and every attribute i names."""
    from types import SimpleNamespace

    from helpers.training.clip import compatible, contrastive_loss

    data = SimpleNamespace(digits=torch.tensor([7, 7, 7, 3]),
                           levels={"thickness": np.array([0, 2, 0, 0]), "slant": np.array([1, 1, 2, 1])})
    idx = torch.arange(4)
    used = ["{d}", "a {thickness} {d}", "a {thickness} {slant} {d}", "a {slant} {n}"]
    expected = torch.tensor([[1, 1, 1, 0],    # "seven": every seven
                             [0, 1, 0, 0],    # "a thick seven": only the thick one
                             [0, 0, 1, 0],    # "a thin slanted right seven": itself
                             [0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(compatible(data, idx, used), expected)
    aligned = torch.eye(4)
    temperature = torch.tensor(3.0)
    good = contrastive_loss(aligned, aligned, expected, temperature)
    bad = contrastive_loss(aligned, aligned.roll(1, 0), expected, temperature)
    assert 0 <= good < bad
