"""Bad input never passes silently (issue 12): one row per case, command line and Python API. A CLI case runs the
tool's main() in this process and expects its exit status and one line on stderr, starting "error: " and holding the
fragment, with no traceback; an API case expects the exception type and the fragment in its message."""
import json
import math

import numpy as np
import pytest
import torch

from helpers import checkpoints as ckpt
from helpers import evaluate, sample, tabular
from helpers.evaluation import digits as classifier
from helpers.training import distill
from helpers.evaluation import fid
from helpers.samplers import guidance
from helpers.training import ddpm as train
from helpers.datasets.images import save_pngs
from helpers.denoisers import Denoiser
from helpers.diffusion import posterior_step, q_sample
from helpers.samplers.guidance import CFGDenoiser
from helpers.samplers import generate, image_generators, sample_ddim, sample_ddpm
from helpers.schedules import Schedule, get_betas, get_timesteps
from tests.conftest import GaussianPlusNet, tiny_unet
from tests.test_train import TINY

SCHEDULE = Schedule.from_name("linear", 1000)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny image checkpoint, a tiny tabular checkpoint, and the files the cases point at."""
    root = tmp_path_factory.mktemp("bad")
    assert train.main(TINY + ["--out", str(root / "ckpt"), "--steps", "2"]) == 0
    assert tabular.main(["train", "--data", "diamonds", "--out", str(root / "tab"), "--steps", "2", "--batch-size",
                         "64", "--hidden", "16", "--layers", "1", "--no-progress"]) == 0
    (root / "full").mkdir()
    (root / "full" / "000000.png").write_bytes(b"old")
    (root / "afile").write_text("x")
    np.save(root / "strings.npy", np.array([["a"]]))
    np.save(root / "nan.npy", np.full((1, 1, 8, 8), np.nan, dtype=np.float32))
    (root / "text.npy").write_text("not numpy")
    (root / "pngs").mkdir()
    (root / "pngs" / "000000.png").write_text("not a png")
    from helpers.datasets.images import save_pngs
    save_pngs(torch.zeros(2, 1, 28, 28), root / "two")
    save_pngs(torch.zeros(1, 1, 28, 28), root / "one")
    for name, edit in {"no-schedule": lambda c: c.pop("schedule"),
                       "cosine-card": lambda c: c["schedule"].update(name="cosine", T=500),
                       "size-card": lambda c: c["model"].update(image_size=16),
                       "no-fingerprint": lambda c: c["schedule"].pop("fingerprint"),
                       "prediction-card": lambda c: c.update(prediction="v"),
                       "record-card": lambda c: c["schedule"].update(name="cosine", fingerprint=Schedule.from_name(
                           "cosine", 1000).fingerprint())}.items():
        folder = root / name
        folder.mkdir()
        for f in (root / "ckpt").iterdir():
            if f.is_file():
                (folder / f.name).write_bytes(f.read_bytes())
        card = json.loads((folder / ckpt.CARD).read_text())
        edit(card)
        (folder / ckpt.CARD).write_text(json.dumps(card))
    return root


MAINS = {"sample": sample.main, "train": train.main, "tabular": tabular.main, "evaluate": evaluate.main,
         "fid": fid.main, "distill": distill.main, "guidance": guidance.main, "classifier": classifier.main}

# (id, tool, argv with {root} for the fixture's folder, expected exit status, fragment of the error line)
CLI = [
    ("sample steps 0", "sample", "--steps 0", 2, "argument --steps: expected a positive integer, got 0"),
    ("sample scheduler overrides the model", "sample", "--sampler diffusers:DDIMScheduler --steps 4 --spacing trailing "
     "--scheduler-option prediction_type=\"v_prediction\"", 2, "--scheduler-option prediction_type: the adapter sets it"),
    ("sample eta with a scheduler", "sample", "--sampler diffusers:DDIMScheduler --steps 4 --spacing trailing --eta 1", 2,
     "--eta applies to ddim and dpmpp-2m-sde; a diffusers scheduler takes its own options"),
    ("sample num 10**12", "sample", "--num 1000000000000", 2, "with 1000 steps is 1e+15 network evaluations (about 4.63e+07 days"),
    ("sample guidance 1e30", "sample", "--guidance 1e30 --class-label 1", 2, "--guidance 1e+30: expected a scale of at most 100"),
    ("sample classifier scale 1e9", "sample", "--classifier-scale 1e9 --class-label 1", 2,
     "--classifier-scale 1e+09: expected a scale of at most 100"),
    ("sample overwrite and resume", "sample", "--overwrite --resume", 2, "--overwrite and --resume exclude each other"),
    ("sample steps -3", "sample", "--steps -3", 2, "argument --steps: expected a positive integer, got -3"),
    ("sample steps 1.5", "sample", "--steps 1.5", 2, "argument --steps: expected an integer, got '1.5'"),
    ("sample steps > T", "sample", "--steps 5000", 2, "asked for 5000 sampling steps but the model has only T = 1000"),
    ("sample num 0", "sample", "--num 0", 2, "argument --num: expected a positive integer, got 0"),
    ("sample batch 0", "sample", "--batch-size 0", 2, "argument --batch-size: expected a positive integer, got 0"),
    ("sample seed -1", "sample", "--seed -1", 2, "argument --seed: expected a non-negative integer, got -1"),
    ("sample eta 1.5", "sample", "--sampler ddim --eta 1.5", 2, "argument --eta: expected a number in [0, 1], got 1.5"),
    ("sample eta nan", "sample", "--sampler ddim --eta nan", 2, "argument --eta: expected a finite number, got 'nan'"),
    ("sample eta on ddpm", "sample", "--sampler ddpm --eta 0.5", 2, "eta applies to the ddim, dpmpp-2m-sde samplers only"),
    ("sample guidance nan", "sample", "--guidance nan --class-label 1", 2, "argument --guidance: expected a finite number"),
    ("sample guidance inf", "sample", "--guidance inf --class-label 1", 2, "argument --guidance: expected a finite"),
    ("sample classifier nan", "sample", "--classifier-scale nan --class-label 1", 2,
     "argument --classifier-scale: expected a finite number"),
    ("sample guidance uncond", "sample", "--guidance 2 --class-label 1", 2, "guidance needs a conditional model"),
    ("sample label on uncond", "sample", "--class-label 3", 2, "--class-label needs a class-conditional model"),
    ("sample label text", "sample", "--class-label x --classifier-scale 1", 2, "--class-label must be an integer"),
    ("sample device cuda", "sample", "--device cuda", 2, "'cuda' was asked for but this machine has no CUDA device"),
    ("sample device bogus", "sample", "--device banana", 2, "expected a torch device such as cpu or cuda"),
    ("sample unknown sampler", "sample", "--sampler ddpn", 2, "unknown sampler 'ddpn'"),
    ("sample unknown spacing", "sample", "--spacing even --steps 10", 2, "unknown timestep spacing 'even'"),
    ("sample out not empty", "sample!", "--out {root}/full", 2, "is not empty; choose a new folder, or pass --overwrite"),
    ("sample out is a file", "sample!", "--out {root}/afile", 2, "afile is a file; give a folder"),
    ("sample out under a file", "sample!", "--out {root}/afile/x", 2, "is under the file"),
    ("sample noise strings", "sample", "--noise {root}/strings.npy", 2, "values; expected floating-point numbers"),
    ("sample noise nan", "sample", "--noise {root}/nan.npy", 2, "holds NaN or inf values"),
    ("sample noise not npy", "sample", "--noise {root}/text.npy", 2, "is not a .npy array"),
    ("sample noise missing", "sample", "--noise {root}/none.npy", 2, "--noise {root}/none.npy is not a file"),
    ("sample checkpoint is a file", "sample@", "--checkpoint {root}/afile", 2, "is a file; a checkpoint is a folder"),
    ("sample checkpoint missing", "sample@", "--checkpoint {root}/nothing", 2, "does not exist"),
    ("sample card without schedule", "sample@", "--checkpoint {root}/no-schedule", 2,
     "has no \"schedule\" with a \"name\" and \"T\""),
    ("sample card edited schedule", "sample@", "--checkpoint {root}/cosine-card", 2,
     "names the 'cosine' schedule with T = 500, but the model was trained with another one"),
    ("sample card without fingerprint", "sample@", "--checkpoint {root}/no-fingerprint", 2,
     "has no schedule fingerprint, so the schedule it names cannot be checked"),
    ("sample card edited prediction", "sample@", "--checkpoint {root}/prediction-card", 2,
     "says prediction 'v' but its training record (\"train\") says 'eps'; the card was edited"),
    ("sample card edited consistently", "sample@", "--checkpoint {root}/record-card", 2,
     "says schedule 'cosine' but its training record (\"train\") says 'linear'"),
    ("sample card edited size", "sample@", "--checkpoint {root}/size-card", 2,
     "describes [1, 16, 16] samples but the model was trained on [1, 8, 8] data"),
    ("train steps 0", "train", "--steps 0", 2, "argument --steps: expected a positive integer, got 0"),
    ("train steps -5", "train", "--steps -5", 2, "argument --steps: expected a positive integer, got -5"),
    ("train checkpoint-every 0", "train", "--checkpoint-every 0", 2, "argument --checkpoint-every: expected a positive"),
    ("train log-every 0", "train", "--log-every 0", 2, "argument --log-every: expected a positive integer"),
    ("train batch 0", "train", "--batch-size 0", 2, "argument --batch-size: expected a positive integer, got 0"),
    ("train seed -1", "train", "--seed -1", 2, "argument --seed: expected a non-negative integer, got -1"),
    ("train lr nan", "train", "--lr nan", 2, "argument --lr: expected a finite number"),
    ("train lr negative", "train", "--lr -1", 2, "argument --lr: expected a positive number, got -1"),
    ("train channel mults", "train", "--channel-mults 1,x", 2, "expected comma-separated positive integers"),
    ("train label dropout 2", "train", "--label-dropout 2", 2, "argument --label-dropout: expected a number in [0, 1]"),
    ("train resume nothing", "train", "--resume --out {root}/fresh", 2, "holds no checkpoint to continue"),
    ("train resume changed lr", "train", "--resume --out {root}/ckpt --lr 0.5", 2,
     "these differ from it: --lr 0.5 (the run's: 0.001)"),
    ("train resume changed data", "train", "--resume --out {root}/ckpt --dataset mnist --batch-size 16", 2,
     "--dataset 'mnist' (the run's: 'digits'), --batch-size 16 (the run's: 32)"),
    ("train existing without resume", "train", "--out {root}/ckpt", 2, "already holds a checkpoint; pass --resume"),
    ("tabular train steps 0", "tabular", "train --out {root}/t0 --steps 0", 2, "argument --steps: expected a positive"),
    ("tabular train resume changed", "tabular", "train --out {root}/tab --resume --lr 0.1", 2, "--lr 0.1 (the run's: 0.002)"),
    ("tabular sample steps 0", "tabular", "sample --checkpoint {root}/tab --num 5 --out {root}/r.csv --steps 0", 2,
     "argument --steps: expected a positive integer, got 0"),
    ("tabular sample num 0", "tabular", "sample --checkpoint {root}/tab --num 0 --out {root}/r.csv", 2,
     "argument --num: expected a positive integer, got 0"),
    ("tabular sample out folder", "tabular", "sample --checkpoint {root}/tab --num 5 --out {root}/full", 2,
     "full is a folder; give a file name"),
    ("tabular sample out exists", "tabular", "sample --checkpoint {root}/tab --num 5 --out {root}/afile", 2,
     "already exists; choose a new name, or pass --overwrite"),
    ("tabular sample under a file", "tabular", "sample --checkpoint {root}/tab --num 5 --out {root}/afile/r.csv", 2,
     "is under the file"),
    ("evaluate num 0", "evaluate", "--checkpoint {root}/ckpt --num 0", 2, "argument --num: expected a positive integer"),
    ("evaluate steps 0", "evaluate", "--checkpoint {root}/ckpt --steps 0", 2, "argument --steps: expected a positive"),
    ("evaluate out not empty", "evaluate", "--checkpoint {root}/ckpt --num 2 --out {root}/full", 2, "is not empty"),
    ("evaluate out is a file", "evaluate", "--checkpoint {root}/ckpt --num 2 --out {root}/afile", 2, "is a file"),
    ("evaluate checkpoint file", "evaluate", "--checkpoint {root}/afile --num 2", 2, "is a file; a checkpoint is a folder"),
    ("fid num -1", "fid", "--fake {root}/two --num -1", 2, "argument --num: expected a positive integer, got -1"),
    ("fid num 0", "fid", "--fake {root}/two --num 0", 2, "argument --num: expected a positive integer, got 0"),
    ("fid one image", "fid", "--fake {root}/one", 2, "FID needs more images than feature dimensions"),
    ("fid two images", "fid", "--fake {root}/two", 2, "got N = 2. Use at least 129 images"),
    ("fid not a png", "fid", "--fake {root}/pngs", 2, "000000.png is not a readable PNG image"),
    ("fid no folder", "fid", "--fake {root}/afile", 2, "afile is not a folder of PNG images"),
    ("distill steps 0", "distill", "--out {root}/d --steps 0", 2, "argument --steps: expected a positive integer"),
    ("distill odd grid", "distill", "--teacher {root}/ckpt --teacher-steps 7 --out {root}/d --steps 1", 2,
     "--teacher-steps must be an even number"),
    ("distill resume nothing", "distill", "--out {root}/d --resume", 2, "holds no checkpoint to continue"),
    ("classifier steps 0", "guidance", "train-classifier --out {root}/c --steps 0", 2,
     "argument --steps: expected a positive integer"),
    ("classifier out holds one", "guidance", "train-classifier --out {root}/ckpt --steps 1", 2,
     "already holds a checkpoint; choose another folder, or pass --overwrite"),
    ("classifier out is a file", "guidance", "train-classifier --out {root}/afile --steps 1", 2,
     "afile is a file; give a folder for the checkpoint"),
    ("mnist classifier out holds one", "classifier", "--out {root}/ckpt --epochs 1", 2,
     "already holds a checkpoint"),
]


def run_cli(tool, argv, capsys):
    try:
        code = MAINS[tool](argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_refuses_in_one_line(case, files, capsys):
    name, tool, args, status, fragment = case
    argv = args.format(root=files).split()
    if tool.endswith("@"):  # sample with its own --checkpoint
        argv += ["--out", str(files / "out" / name.replace(" ", "-"))]
    elif tool.endswith("!"):  # sample with its own --out
        argv = ["--checkpoint", str(files / "ckpt"), *argv]
    elif tool == "sample":
        argv = ["--checkpoint", str(files / "ckpt"), "--out", str(files / "out" / name.replace(" ", "-")), *argv]
    elif tool == "train" and "--out" not in argv:
        argv = TINY + ["--out", str(files / "new-run"), *argv]
    code, err = run_cli(tool.rstrip("@!"), argv, capsys)
    lines = err.strip().splitlines()
    assert code == status, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert fragment.format(root=files) in lines[0], lines[0]


def tiny_denoiser(channels_last=False):
    return Denoiser(GaussianPlusNet(tiny_unet(), SCHEDULE.alpha_bar), SCHEDULE, channels_last=channels_last,
                    sample_shape=(1, 8, 8))


def conditional_denoiser():
    return Denoiser(tiny_unet(num_classes=10), SCHEDULE, sample_shape=(1, 8, 8))


class NaNNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None):
        return x * float("nan") + self.w


def x(n=3, dtype=torch.float32):
    return torch.randn(n, 1, 8, 8, generator=torch.Generator().manual_seed(0)).to(dtype)


API = [
    ("q_sample t -1", lambda: q_sample(SCHEDULE, torch.zeros(2, 1, 4, 4), torch.tensor([-1, 5]), torch.zeros(2, 1, 4, 4)),
     ValueError, "timestep -1 is outside 0..999 (the schedule has T = 1000 diffusion steps)"),
    ("q_sample t 1000", lambda: q_sample(SCHEDULE, torch.zeros(1, 1, 4, 4), torch.tensor([1000]), torch.zeros(1, 1, 4, 4)),
     ValueError, "timestep 1000 is outside 0..999"),
    ("q_sample t float", lambda: q_sample(SCHEDULE, torch.zeros(1, 1, 4, 4), torch.tensor([5.0]), torch.zeros(1, 1, 4, 4)),
     ValueError, "timesteps must be integers, got a torch.float32 tensor"),
    ("q_sample 3 t for 2", lambda: q_sample(SCHEDULE, torch.zeros(2, 1, 4, 4), torch.tensor([1, 2, 3]), torch.zeros(2, 1, 4, 4)),
     ValueError, "got 3 timesteps for a batch of 2: give one per sample, or one for all"),
    ("posterior_step s > t", lambda: posterior_step(tiny_denoiser(), torch.zeros(1, 1, 8, 8), 10, 20), ValueError,
     "an ancestral step goes from t to an earlier s (-1 <= s < t), got t = 10, s = 20"),
    ("save_pngs NaN", lambda: save_pngs(torch.full((2, 1, 4, 4), math.nan), "/nonexistent/never-written"), ValueError,
     "2 of the 2 images of this batch hold NaN or inf values; they were not written"),
    ("get_betas T True", lambda: get_betas("linear", T=True), ValueError, "T must be a positive integer, got True"),
    ("get_betas T 0", lambda: get_betas("linear", T=0), ValueError, "T must be a positive integer, got 0"),
    ("get_betas T float", lambda: get_betas("linear", T=10.0), ValueError, "positive integer, got 10.0"),
    ("get_betas beta_end 1.5", lambda: get_betas("linear", beta_end=1.5), ValueError, "0 < beta_start <= beta_end < 1"),
    ("get_betas beta_end nan", lambda: get_betas("linear", beta_end=math.nan), ValueError, "got 0.0001 and nan"),
    ("get_betas unknown", lambda: get_betas("cubic"), ValueError, "unknown beta schedule 'cubic'"),
    ("get_timesteps 0", lambda: get_timesteps(1000, 0), ValueError, "must be a positive integer, got 0"),
    ("generate steps 0", lambda: generate(tiny_denoiser(), 2, 0, steps=0), ValueError,
     "the number of sampling steps must be at least 1, got 0"),
    ("generate steps 2.5", lambda: generate(tiny_denoiser(), 2, 0, steps=2.5), ValueError,
     "the number of sampling steps must be an integer, got 2.5"),
    ("generate num 0", lambda: generate(tiny_denoiser(), 0, 0, steps=2), ValueError,
     "the number of images must be at least 1, got 0"),
    ("generate labels 2 for 3", lambda: generate(conditional_denoiser(), 3, 0, steps=2, y=torch.tensor([1, 2])),
     ValueError, "got 2 labels for 3 images"),
    ("generate noise shape", lambda: generate(tiny_denoiser(), 2, 0, steps=2, x_T=x(3)), ValueError,
     "the starting noise has shape [3, 1, 8, 8], expected [2, 1, 8, 8]"),
    ("generate noise nan", lambda: generate(tiny_denoiser(), 3, 0, steps=2, x_T=x() * math.nan), ValueError,
     "the starting noise holds NaN or inf values"),
    ("generate noise integers", lambda: generate(tiny_denoiser(), 3, 0, steps=2, x_T=torch.zeros(3, 1, 8, 8,
                                                                                          dtype=torch.long)),
     ValueError, "the starting noise must be a floating-point tensor"),
    ("generate NaN network", lambda: generate(Denoiser(NaNNet(), SCHEDULE, sample_shape=(1, 8, 8)), 2, 0, steps=3,
                                              sampler="ddim"),
     FloatingPointError, "non-finite values at step 0 (t = 999)"),
    ("float64 input", lambda: sample_ddim(tiny_denoiser(), x(dtype=torch.float64), [10, 5]), ValueError,
     "x_t has dtype torch.float64 but the network's weights are torch.float32"),
    ("float labels", lambda: conditional_denoiser()(x(), torch.full((3,), 5), torch.tensor([1.0, 2.0, 3.0])),
     ValueError, "class labels must be integers"),
    ("one label for three", lambda: conditional_denoiser()(x(), torch.full((3,), 5), torch.tensor([1])), ValueError,
     "got labels of shape [1] for 3 samples"),
    ("cfg labels 2 for 3", lambda: CFGDenoiser(conditional_denoiser(), 2.0)(x(), torch.full((3,), 5),
                                                                             torch.tensor([1, 2])),
     ValueError, "got labels of shape [2] for 3 images"),
    ("cfg w nan", lambda: CFGDenoiser(conditional_denoiser(), math.nan), ValueError,
     "the guidance scale w must be a finite number, got nan"),
    ("generators 2 for 3", lambda: sample_ddpm(tiny_denoiser(), x(), [10, 5], generator=image_generators(0, range(2))),
     ValueError, "got 2 generators for a batch of 3"),
    ("generators 1 for 3", lambda: sample_ddpm(tiny_denoiser(), x(), [10, 5], generator=image_generators(0, range(1))),
     ValueError, "got 1 generators for a batch of 3"),
    ("timesteps repeat", lambda: sample_ddim(tiny_denoiser(), x(), [5, 5, 3]), ValueError,
     "timesteps must decrease strictly (from noise to data), but 5 follows 5"),
    ("timesteps increase", lambda: sample_ddim(tiny_denoiser(), x(), [3, 5]), ValueError,
     "but 5 follows 3"),
    ("timesteps floats", lambda: sample_ddim(tiny_denoiser(), x(), [5.0, 3.0]), ValueError,
     "timesteps must be integers, got 5.0"),
    ("timesteps float tensor", lambda: sample_ddim(tiny_denoiser(), x(), torch.tensor([5.0, 3.0])), ValueError,
     "timesteps must be integers, got a torch.float32 tensor"),
    ("timestep equal to T", lambda: sample_ddim(tiny_denoiser(), x(), [1000, 5]), ValueError,
     "timestep 1000 is outside 0..999"),
    ("negative timestep", lambda: sample_ddim(tiny_denoiser(), x(), [5, -1]), ValueError,
     "timestep -1 is outside 0, 1, 2"),
    ("empty timesteps", lambda: sample_ddim(tiny_denoiser(), x(), []), ValueError, "timesteps is empty"),
]


@pytest.mark.parametrize("case", API, ids=[c[0] for c in API])
def test_api_refuses_with_a_clear_message(case):
    name, call, error, fragment = case
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value), str(info.value)


def test_integer_like_steps_are_accepted():
    """numpy and 0-d tensor integers are integers: steps=np.int64(2) and torch.tensor(2) work like 2."""
    d = tiny_denoiser()
    ref = generate(d, 2, 0, steps=2, sampler="ddim")
    assert torch.equal(generate(d, 2, 0, steps=np.int64(2), sampler="ddim"), ref)
    assert torch.equal(generate(d, 2, 0, steps=torch.tensor(2), sampler="ddim"), ref)
    assert get_timesteps(1000, np.int64(4)).tolist() == get_timesteps(1000, 4).tolist()


def test_overwrite_empties_the_folder_first(files, capsys):
    out = files / "overwrite"
    out.mkdir()
    for i in range(5):
        (out / f"{i:06d}.png").write_bytes(b"old")
    argv = ["--checkpoint", str(files / "ckpt"), "--out", str(out), "--num", "2", "--steps", "2"]
    assert run_cli("sample", argv, capsys)[0] == 2
    assert run_cli("sample", argv + ["--overwrite"], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", "sampling.json"]


def test_at_least_sixty_cases():
    assert len(CLI) + len(API) >= 60
