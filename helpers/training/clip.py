"""Train the text encoder of notebook 11 contrastively against image latents, in the manner of CLIP; it replaces the
hub's CLIP text encoder, which cannot be downloaded here.

    python -m helpers.text_encoder --autoencoder checkpoints/autoencoder-mnist --out checkpoints/text-encoder-mnist

Each step draws a batch of training digits (their scaled latents from the autoencoder) and, for each, a caption in a
random training phrasing (helpers.datasets.captions). Captions repeat (ten digits, three thicknesses, three slants) and many
mention only some attributes, so a batch holds many true pairs besides the diagonal: the loss is CLIP's symmetric
cross-entropy with every compatible pair as a positive (caption i fits image j when j has every attribute i names),
i.e. -log of the softmax mass on the positives. The card records zero-shot digit accuracy on the test latents with
training and held-out phrasings.
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers import checkpoints as ckpt
from helpers.datasets.captions import DIGITS, HELD_OUT, LEVELS, TEMPLATES, Tokenizer, Vocabulary, caption, measure
from helpers.cli import ArgumentParser, check_new_checkpoint, training_options
from helpers.datasets.images import DataUnavailableError, load_images
from helpers.models.text_encoder import TextEncoder, TextEncoderConfig


class CaptionedLatents:
    """The latents of an autoencoder's training (or test) images, their digits and attribute levels, and the
    vocabulary fitted on the training digits."""

    def __init__(self, autoencoder: str, split: str = "train", vocab: Vocabulary | None = None):
        latents = load_images(f"latents:{autoencoder}:{split}")
        card = ckpt.read_card(Path(autoencoder))
        images = load_images(f"{card['data']['spec']}:{split}").images  # the same order as the latents
        attrs = measure(images)
        self.vocab = vocab or Vocabulary.fit(attrs)
        self.latents, self.digits = latents.images, latents.labels
        self.levels = self.vocab.levels(attrs)
        self.words = self.vocab.words(attrs)

    def captions(self, idx: torch.Tensor, templates: list[str], generator: torch.Generator) -> tuple[list[str], list[str]]:
        """A caption per image of idx in a random phrasing of `templates`, and the phrasing used."""
        pick = torch.randint(0, len(templates), (len(idx),), generator=generator).tolist()
        used = [templates[k] for k in pick]
        return [caption(self.words[i], int(self.digits[i]), t) for i, t in zip(idx.tolist(), used)], used


def compatible(data: CaptionedLatents, idx: torch.Tensor, used: list[str]) -> torch.Tensor:
    """[B, B] bool: caption i (of image idx[i], phrasing used[i]) fits image idx[j]."""
    ok = data.digits[idx][:, None] == data.digits[idx][None, :]
    for name in LEVELS:
        level = torch.as_tensor(data.levels[name][idx.numpy()])
        names = torch.tensor([f"{{{name}}}" in t for t in used])
        ok &= ~names[:, None] | (level[:, None] == level[None, :])
    return ok


def contrastive_loss(text: torch.Tensor, image: torch.Tensor, positives: torch.Tensor, log_temperature) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE on L2-normalised embeddings [B, D]."""
    logits = text @ image.T * log_temperature.exp().clamp(max=100)
    t2i = -(torch.logsumexp(logits.masked_fill(~positives, -1e9), 1) - torch.logsumexp(logits, 1))
    i2t = -(torch.logsumexp(logits.T.masked_fill(~positives.T, -1e9), 1) - torch.logsumexp(logits.T, 1))
    return (t2i.mean() + i2t.mean()) / 2


@torch.no_grad()
def zero_shot_digits(model: TextEncoder, tok: Tokenizer, data: CaptionedLatents, templates) -> float:
    """Digit accuracy of the test latents classified by the nearest digit prompt (averaged over every phrasing in
    `templates` and every attribute combination it names)."""
    prompts = []
    for d in range(10):
        texts = [caption({"thickness": th, "slant": sl}, d, t) for t in templates for th in LEVELS["thickness"]
                 for sl in LEVELS["slant"]]
        prompts.append(F.normalize(model(tok.batch(texts))[1].mean(0), dim=-1))
    image = torch.cat([model.latents(z) for z in data.latents.split(1000)])
    return float(((image @ torch.stack(prompts).T).argmax(1) == data.digits).double().mean())


def train_text_encoder(autoencoder: str, steps: int, seed: int = 0, batch_size: int = 256, lr: float = 1e-3,
                       log=print) -> tuple[TextEncoder, dict]:
    train, tok = CaptionedLatents(autoencoder), Tokenizer()
    test = CaptionedLatents(autoencoder, "test", train.vocab)
    torch.manual_seed(seed)
    model = TextEncoder(TextEncoderConfig(vocab_size=len(tok), max_length=tok.max_length, pad_id=tok.pad, eos_id=tok.eos,
                                          latent_shape=tuple(train.latents.shape[1:])))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    start, history = time.time(), []
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(train.latents), (batch_size,), generator=g)
        texts, used = train.captions(idx, list(TEMPLATES), g)
        text = model(tok.batch(texts))[1]
        loss = contrastive_loss(text, model.latents(train.latents[idx]), compatible(train, idx, used), model.log_temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            history.append([step, float(loss.detach())])
            log(f"step {step}: loss {history[-1][1]:.4f}")
    model.eval()
    info = {"steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr, "wall_time_s": round(time.time() - start, 1),
            "final_loss": history[-1][1], "loss_history": history,
            "zero_shot_digit_accuracy": {"training phrasings": zero_shot_digits(model, tok, test, TEMPLATES),
                                         "held-out phrasings": zero_shot_digits(model, tok, test, HELD_OUT)},
            "vocabulary": {"thresholds": train.vocab.thresholds, "levels": LEVELS, "templates": list(TEMPLATES),
                           "held_out": list(HELD_OUT), "max_length": tok.max_length, "digits": list(DIGITS)}}
    return model, info


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = ArgumentParser(prog="python -m helpers.text_encoder", description=__doc__.split("\n")[0])
    p.add_argument("--autoencoder", default="checkpoints/autoencoder-mnist", help="the latents' autoencoder checkpoint")
    training_options(p, steps=1500, batch_size=256, lr=1e-3)
    args = p.parse_args(argv)
    try:
        check_new_checkpoint(args.out, args.overwrite)
        model, info = train_text_encoder(args.autoencoder, args.steps, args.seed, args.batch_size, args.lr)
    except (ValueError, OSError, DataUnavailableError, ckpt.CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt.save_tensors(model.state_dict(), args.out / ckpt.MODEL)
    card = {"kind": "text-encoder", "architecture": "text-encoder", "model": model.config.to_dict(),
            "data": {"autoencoder": args.autoencoder}, **info,
            "command": "python -m helpers.text_encoder " + " ".join(shlex.quote(a) for a in argv)}
    ckpt.save_json(card, args.out / ckpt.CARD)
    print(f"zero-shot digit accuracy {info['zero_shot_digit_accuracy']} after {args.steps} steps "
          f"({info['wall_time_s']:.0f} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
