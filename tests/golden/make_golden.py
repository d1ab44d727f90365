"""Golden outputs of the shipped checkpoints and of short training runs, for the restructuring of issue 11.

    python tests/golden/make_golden.py            # writes tests/golden/golden.safetensors and golden.json

Made once at commit 8142bd6, before the library was restructured; tests/test_golden.py recomputes every entry with
the current code and requires max |difference| = 0 (same torch build) for samples and equal hashes for training.
The script uses only names that the restructuring keeps (denoisers.from_checkpoint, samplers.generate,
guidance.CFGDenoiser / ClassifierGuidedDenoiser / load_noisy_classifier, tabular.load_checkpoint / generate_rows,
the training CLIs), so it runs on both sides of the change.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
NUM, SEED, STEPS = 8, 0, 20  # 8 samples, seed 0, DDIM with 20 steps (the golden check)


def image_checkpoints() -> list[Path]:
    """The pixel U-Nets shipped before the restructuring: their cards carry no "architecture" field (later models,
    such as the DiT, are written by the new training loop and checked against diffusers instead)."""
    ckpts = ROOT / "checkpoints"
    cards = sorted(ckpts.glob("*/model_card.json")) + sorted(ckpts.glob("sweep/*/model_card.json"))
    return [p.parent for p in cards
            if (card := json.loads(p.read_text())).get("kind") == "ddpm" and "architecture" not in card]


def sample_cases():
    """(name, thunk) pairs; each thunk returns a float tensor."""
    from helpers.denoisers import from_checkpoint
    from helpers.samplers.guidance import CFGDenoiser, ClassifierGuidedDenoiser, load_noisy_classifier
    from helpers.samplers import generate

    cases = []
    for folder in image_checkpoints():
        rel = folder.relative_to(ROOT).as_posix()

        def run(folder=folder):
            d, card = from_checkpoint(folder)
            m = card["model"]
            y = torch.arange(NUM) % m["num_classes"] if m.get("num_classes") else None
            return generate(d, NUM, SEED, (m["in_channels"], m["image_size"], m["image_size"]), sampler="ddim",
                            steps=STEPS, y=y)
        cases.append((f"ddim-20/{rel}", run))
    mnist = ROOT / "checkpoints" / "ddpm-mnist"
    for sampler, extra in (("ddpm", {}), ("ddim", {"eta": 0.5}), ("dpmpp-2m", {}), ("heun", {})):
        def run(sampler=sampler, extra=extra):
            d, _ = from_checkpoint(mnist)
            return generate(d, NUM, SEED, (1, 28, 28), sampler=sampler, steps=STEPS, **extra)
        cases.append((f"{sampler}{'-eta0.5' if extra else ''}-20/checkpoints/ddpm-mnist", run))

    def cfg():
        d, _ = from_checkpoint(ROOT / "checkpoints" / "ddpm-mnist-cond")
        return generate(CFGDenoiser(d, 2.0), NUM, SEED, (1, 28, 28), sampler="ddim", steps=STEPS, y=torch.arange(NUM))

    def classifier_guided():
        d, _ = from_checkpoint(mnist)
        clf, _ = load_noisy_classifier(ROOT / "checkpoints" / "noisy-classifier")
        return generate(ClassifierGuidedDenoiser(d, clf, 3.0), NUM, SEED, (1, 28, 28), sampler="ddim", steps=STEPS,
                        y=torch.arange(NUM))

    def tabular_rows():
        from helpers import tabular as tb

        d, transform, _ = tb.load_checkpoint(ROOT / "checkpoints" / "tabddpm-diamonds")
        x_num, codes = tb.generate_rows(d, 64, SEED, steps=STEPS, clip_x0=transform.bounds())
        return torch.cat([x_num, codes.float()], 1)

    cases += [("cfg-w2-ddim-20/checkpoints/ddpm-mnist-cond", cfg),
              ("classifier-s3-ddim-20/checkpoints/ddpm-mnist", classifier_guided),
              ("tabddpm-20/checkpoints/tabddpm-diamonds", tabular_rows)]
    return cases


def tensors_hash(path: Path) -> str:
    tensors = load_file(str(path))
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


TINY = ["--dataset", "digits", "--batch-size", "32", "--base-channels", "16", "--channel-mults", "1,2",
        "--attention-resolutions", "4", "--log-every", "5", "--checkpoint-every", "10", "--seed", "3"]


def training_cases():
    """(name, thunk) pairs; each thunk trains in a temporary folder and returns {file: hash, "loss_history": ...}."""
    from helpers import tabular as tb
    from helpers.training.ddpm import main as train_main

    def run(argv_fn, main, files=("model", "ema", "optimizer")):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            assert main(argv_fn(out, Path(tmp))) == 0
            card = json.loads((out / "model_card.json").read_text())
            return {**{f: tensors_hash(out / f"{f}.safetensors") for f in files}, "loss_history": card["loss_history"]}

    def cond_argv(out, tmp):
        assert train_main(TINY + ["--out", str(tmp / "src"), "--steps", "6"]) == 0
        return TINY + ["--out", str(out), "--steps", "12", "--conditional", "--init-from", str(tmp / "src"),
                       "--warmup", "4", "--label-dropout", "0.3"]

    return [
        ("train/ddpm-digits", lambda: run(lambda out, _: TINY + ["--out", str(out), "--steps", "20"], train_main)),
        ("train/ddpm-digits-cosine-v-minsnr", lambda: run(
            lambda out, _: TINY + ["--out", str(out), "--steps", "12", "--schedule", "cosine", "--prediction", "v",
                                   "--weighting", "min-snr-5", "--loss", "huber"], train_main)),
        ("train/ddpm-digits-cond-warm", lambda: run(cond_argv, train_main)),
        ("train/tabddpm", lambda: run(
            lambda out, _: ["train", "--data", "diamonds", "--out", str(out), "--steps", "20", "--batch-size", "256",
                            "--checkpoint-every", "10", "--log-every", "5", "--no-progress", "--hidden", "64"],
            tb.main)),
    ]


def main() -> int:
    torch.set_num_threads(1)
    samples = {name: fn().contiguous() for name, fn in sample_cases()}
    save_file(samples, str(HERE / "golden.safetensors"))
    training = {name: fn() for name, fn in training_cases()}
    meta = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": 1,
            "num": NUM, "seed": SEED, "steps": STEPS, "training": training}
    (HERE / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{len(samples)} sample cases, {len(training)} training cases -> {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
