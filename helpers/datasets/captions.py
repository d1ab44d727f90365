"""Captions of MNIST digits from attributes measured on their pixels, and a word-level tokenizer (notebook 11).

Attributes (`measure`, on images in [-1, 1], ink = pixels above 0):
    thickness  the mean stroke width in pixels: ink area / (half the ink's boundary length), exact for a long stroke
    slant      the shear of the ink, -mu11 / mu02 of its second moments (> 0: the top leans right)
(Size and position carry no information on MNIST: its digits were scaled to a 20-pixel box and centred by their
centre of mass.) Each is turned into a word by thresholds at the training set's terciles (`Vocabulary.fit`): thin /
regular / thick, slanted left / upright / slanted right. A caption names the digit (as a word or a numeral)
and some of its attribute words in one of several phrasings; the phrasings in HELD_OUT are never used in training, so
the notebook can test whether the model generalises to new sentences about known words.

    attrs = measure(images); words = Vocabulary.fit(attrs).words(attrs)
    caption(words[i], digit, template_index)          # e.g. "a thick slanted right seven"
    tok = Tokenizer(); ids = tok.encode("a thick seven")  # [BOS, a, thick, seven, EOS, PAD, ...]
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LEVELS = {"thickness": ("thin", "regular", "thick"), "slant": ("slanted left", "upright", "slanted right")}
# Training phrasings: {d} the digit's word, {n} its numeral, {thickness} {slant} the attribute words.
TEMPLATES = ("a {thickness} {slant} {d}", "the digit {n}, {thickness} and {slant}", "a {thickness} {d}",
             "a {d} written {thickness}", "{d}", "the number {d}, {slant}", "a {slant} {n}",
             "handwritten {d}, {slant} and {thickness}", "{n}", "a {slant} {d} with {thickness} strokes")
HELD_OUT = ("{thickness} and {slant} figure {n}", "an {slant} {d} in {thickness} lines",
            "{d} drawn {thickness}")  # never used in training
SPECIAL = ("<pad>", "<bos>", "<eos>", "<unk>")


@torch.no_grad()
def measure(images: torch.Tensor) -> dict[str, np.ndarray]:
    """thickness and slant of each [N x 1 x H x W] image in [-1, 1] (see the module docstring)."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"measure takes grey images [N, 1, H, W], got {list(images.shape)}")
    ink = (images[:, 0] > 0).double()
    area = ink.sum((1, 2)).clamp_min(1)
    boundary = (ink[:, 1:] != ink[:, :-1]).sum((1, 2)) + (ink[:, :, 1:] != ink[:, :, :-1]).sum((1, 2))
    thickness = area / (boundary.double() / 2).clamp_min(1)
    h, w = ink.shape[1:]
    ys, xs = torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64)
    my = (ink.sum(2) * ys).sum(1) / area
    mx = (ink.sum(1) * xs).sum(1) / area
    dy, dx = ys[None, :, None] - my[:, None, None], xs[None, None, :] - mx[:, None, None]
    mu11 = (ink * dx * dy).sum((1, 2)) / area
    mu02 = (ink * dy * dy).sum((1, 2)) / area
    slant = -mu11 / mu02.clamp_min(1e-6)
    return {"thickness": thickness.numpy(), "slant": slant.numpy()}


@dataclass
class Vocabulary:
    """The tercile thresholds that turn measured attributes into words (fitted on the training digits)."""

    thresholds: dict[str, tuple[float, float]]

    @classmethod
    def fit(cls, attrs: dict[str, np.ndarray]) -> "Vocabulary":
        return cls({k: tuple(float(q) for q in np.quantile(attrs[k], [1 / 3, 2 / 3])) for k in LEVELS})

    def levels(self, attrs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each attribute as its level 0, 1, 2 (the index into LEVELS[attribute])."""
        return {k: np.searchsorted(np.array(self.thresholds[k]), attrs[k], side="right") for k in LEVELS}

    def words(self, attrs: dict[str, np.ndarray]) -> list[dict[str, str]]:
        lv = self.levels(attrs)
        return [{k: LEVELS[k][int(lv[k][i])] for k in LEVELS} for i in range(len(attrs["thickness"]))]


def caption(words: dict[str, str], digit: int, template: str) -> str:
    """One caption: `template` (from TEMPLATES or HELD_OUT) filled with the digit and its attribute words."""
    text = template.format(d=DIGITS[digit], n=str(digit), **words)
    text = re.sub(r"\ba (?=[aeiou])(?!one\b)", "an ", text)  # "an eight", "an upright"; but "a one"
    return re.sub(r"\ban (?=[^aeiou]|one\b)", "a ", text)


def normalise(text: str) -> list[str]:
    """Lower-case words and numerals; punctuation dropped."""
    return re.findall(r"[a-z]+|[0-9]", text.lower())


class Tokenizer:
    """A word-level tokenizer over the words of every phrasing and attribute (training and held-out phrasings share
    the vocabulary: held-out tests new sentences, not new words). Unknown words map to <unk>; sequences are
    <bos> words <eos> padded with <pad> to `max_length` (longer ones are cut, keeping <eos>)."""

    def __init__(self, max_length: int = 16):
        words = set(DIGITS) | {str(n) for n in range(10)}
        for template in TEMPLATES + HELD_OUT:
            words |= set(normalise(re.sub(r"\{[a-z]+\}", " ", template)))
        for levels in LEVELS.values():
            for level in levels:
                words |= set(normalise(level))
        words |= {"a", "an"}
        self.vocab = list(SPECIAL) + sorted(words)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length
        self.pad, self.bos, self.eos, self.unk = (self.index[s] for s in SPECIAL)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        ids = [self.index.get(w, self.unk) for w in normalise(text)][: self.max_length - 2]
        ids = [self.bos, *ids, self.eos]
        return ids + [self.pad] * (self.max_length - len(ids))

    def batch(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([self.encode(t) for t in texts], dtype=torch.long)

    def decode(self, ids) -> str:
        words = [self.vocab[int(i)] for i in ids if int(i) not in (self.pad, self.bos, self.eos)]
        return " ".join(words)

    def check(self, text: str) -> None:
        """Refuse a prompt this tokenizer would change silently: one with no words (punctuation is dropped, and an
        empty caption is the model's unconditional one) or with more words than it reads (they would be cut)."""
        words, room = normalise(text), self.max_length - 2
        if not words:
            raise ValueError(f"the prompt {text!r} has no words (punctuation is dropped); give a caption such as "
                             "'a thick seven' (an unconditional sample is --guidance 0)")
        if len(words) > room:
            raise ValueError(f"the prompt has {len(words)} words but the text encoder reads at most {room}; shorten it "
                             f"(it would be cut after {' '.join(words[:room])!r})")

    def unknown(self, text: str) -> list[str]:
        """The words of `text` that the vocabulary does not know."""
        return [w for w in normalise(text) if w not in self.index]
