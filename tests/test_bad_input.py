"""Bad input never passes silently (issue 12): one row per case, command line and Python API. A CLI case runs the
tool's main() in this process and expects its exit status and one line on stderr, starting "error: " and holding the
fragment, with no traceback; an API case expects the exception type and the fragment in its message."""
import json
import math
import shlex
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers import checkpoints as ckpt
from helpers import evaluate, sample, tabular
from helpers.evaluation import digits as classifier
from helpers.training import clip, distill, vae
from helpers.samplers import cn2m, gn2m, lsq_ms, text_to_image
from helpers.studies import paired_fid, sampler_fid, sweep, video_fvd
from helpers.workbook import notebooks, report
from helpers.evaluation import features
from helpers.evaluation import fid
from helpers.samplers import guidance
from helpers.training import ddpm as train
from helpers.datasets.images import save_pngs
from helpers.denoisers import Denoiser
from helpers.datasets.captions import Tokenizer
from helpers.datasets.images import load_images
from helpers.diffusion import ddim_step, posterior_step, q_sample
from helpers.evaluation import stats
from helpers.evaluation.metrics import fid_blocks, fid_difference, fid_interval, frechet_distance, kernel_distance
from helpers.training.distill import step_weights, x_tilde
from helpers.samplers.guidance import CFGDenoiser
from helpers.samplers import generate, image_generators, sample_ddim, sample_ddpm
from helpers.schedules import Schedule, get_betas, get_timesteps
from tests.conftest import GaussianPlusNet, tiny_unet
from tests.test_train import TINY

SCHEDULE = Schedule.from_name("linear", 1000)
RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("bad"))


def make_files(root):
    """A tiny image checkpoint, a tiny tabular checkpoint, and the files the cases point at (also used by
    tools/probe/bad_input.py)."""
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
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("a user's notes")
    (root / "emptydir").mkdir()
    (root / "badfolder" / "cls").mkdir(parents=True)
    (root / "badfolder" / "cls" / "x.png").write_text("not an image")
    for name, edit_folder in {
            "listcard": lambda d: (d / ckpt.CARD).write_text("[]"),
            "intmodel": lambda d: (d / ckpt.CARD).write_text(json.dumps({**json.loads((d / ckpt.CARD).read_text()), "model": 3})),
            "badjson": lambda d: (d / ckpt.CARD).write_text("{not json"),
            "badcal": lambda d: (d / ckpt.CALIBRATION).write_text("{oops"),
            "shapecal": lambda d: (d / ckpt.CALIBRATION).write_text(json.dumps({"lsq-ms": [1, 2]})),
            "listcal": lambda d: (d / ckpt.CALIBRATION).write_text("[1, 2]"),
            "emaonly": lambda d: (d / ckpt.MODEL).unlink(),
            "mismatch": lambda d: save_file({**load_file(d / ckpt.EMA), "conv_in.bias": torch.zeros(3, 3)}, d / ckpt.EMA)}.items():
        shutil.copytree(root / "ckpt", root / name, ignore=shutil.ignore_patterns("snapshots"))
        edit_folder(root / name)
    return root


MAINS = {"sample": sample.main, "train": train.main, "tabular": tabular.main, "evaluate": evaluate.main,
         "fid": fid.main, "distill": distill.main, "guidance": guidance.main, "classifier": classifier.main,
         "t2i": text_to_image.main, "bench": sampler_fid.main, "vae": vae.main, "fit": lsq_ms.main, "cal": cn2m.main,
         "gn": gn2m.main, "sweep": sweep.main, "nb": notebooks.main, "report": report.main, "fnet": features.main, "clip": clip.main,
         "paired": paired_fid.main, "vfvd": video_fvd.main}

# (id, tool, argv with {root} for the fixture's folder, expected exit status, fragment of the error line)
CLI = [
    ("sample steps 0", "sample", "--steps 0", 2, "argument --steps: expected a positive integer, got 0"),
    ("sample scheduler overrides the model", "sample", "--sampler diffusers:DDIMScheduler --steps 4 --spacing trailing "
     "--scheduler-option prediction_type=\"v_prediction\"", 2, "--scheduler-option prediction_type: the adapter sets it"),
    ("sample eta with a scheduler", "sample", "--sampler diffusers:DDIMScheduler --steps 4 --spacing trailing --eta 1", 2,
     "--eta applies to ddim, dpmpp-2m-sde and gn-2m; a diffusers scheduler takes its own"),
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
    ("sample calibrated spacing of ddim", "sample", "--sampler ddim --spacing calibrated --steps 4", 2,
     "--spacing calibrated: ddim has no calibrated grid (the samplers that have one: gn-2m, gn-2m-grid)"),
    ("sample eta on ddpm", "sample", "--sampler ddpm --eta 0.5", 2, "eta applies to the ddim, dpmpp-2m-sde, gn-2m samplers only"),
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
    # user files and folders of the wrong kind (issue 45: raw tracebacks before)
    ("train empty image folder", "train", "--dataset imagefolder:{root}/emptydir --out {root}/r1 --steps 1", 2,
     "emptydir' holds no readable images"),
    ("train unreadable image folder", "train", "--dataset imagefolder:{root}/badfolder --out {root}/r2 --steps 1", 2,
     "badfolder' holds no readable images (UnidentifiedImageError"),
    ("train missing image folder", "train", "--dataset imagefolder:{root}/nothing --out {root}/r3 --steps 1", 2,
     "nothing' does not exist"),
    ("train out is a file", "train", "--out {root}/afile --steps 1", 2, "--out {root}/afile is a file; give a folder"),
    ("train out under a file", "train", "--out {root}/afile/run --steps 1", 2, "is under the file {root}/afile"),
    ("train fp16 on the cpu", "train", "--mixed-precision fp16 --steps 1", 2, "--mixed-precision fp16 needs a CUDA device"),
    ("train unknown dataset", "train", "--dataset cifar11 --steps 1", 2, "unknown data set 'cifar11'"),
    ("vae out is a file", "vae", "--out {root}/afile --steps 1", 2, "--out {root}/afile is a file; give a folder"),
    ("distill out is a file", "distill", "--teacher {root}/ckpt --teacher-steps 4 --out {root}/afile --steps 1 "
     "--dataset digits", 2, "--out {root}/afile is a file; give a folder"),
    ("distill teacher missing", "distill", "--teacher {root}/nothing --out {root}/d9 --steps 1", 2,
     "checkpoint folder {root}/nothing does not exist"),
    ("distill teacher is a file", "distill", "--teacher {root}/afile --out {root}/d10 --steps 1", 2,
     "afile is a file; a checkpoint is a folder"),
    ("distill convert an eps student", "distill", "--teacher {root}/ckpt --teacher-steps 4 --convert --prediction eps "
     "--out {root}/d11 --steps 1 --dataset digits", 2, "with --prediction eps there is nothing to convert"),
    ("distill unknown weighting", "distill", "--out {root}/d12 --weighting snr", 2, "argument --weighting: invalid choice"),
    ("sample device meta", "sample", "--device meta", 2, "expected a device that computes: cpu, cuda[:i] or mps"),
    ("sample card is a list", "sample@", "--checkpoint {root}/listcard", 2, "model_card.json holds a JSON list, not a model card"),
    ("sample card model not a dict", "sample@", "--checkpoint {root}/intmodel", 2, "has no valid model config"),
    ("sample card not json", "sample@", "--checkpoint {root}/badjson", 2, "model_card.json is corrupt"),
    ("sample calibration not json", "sample@", "--checkpoint {root}/badcal --sampler lsq-ms --steps 4", 2,
     "badcal/calibration.json is not valid JSON"),
    ("sample calibration entry not an object", "sample@", "--checkpoint {root}/shapecal --sampler lsq-ms --steps 4", 2,
     "shapecal/calibration.json: the calibration of lsq-ms is not an object"),
    ("sample calibration a list", "sample@", "--checkpoint {root}/listcal --sampler lsq-ms --steps 4", 2,
     "listcal/calibration.json holds list, not an object of calibrations"),
    ("sample mistyped local path", "sample@", "--checkpoint {root}/ckpu", 2,
     "checkpoint folder {root}/ckpu does not exist (did you mean {root}/ckpt?)"),
    ("sample no-ema on an EMA-only checkpoint", "sample@", "--checkpoint {root}/emaonly --no-ema", 2,
     "ships only its EMA weights (ema.safetensors)"),
    ("sample weights that do not fit", "sample@", "--checkpoint {root}/mismatch", 2,
     "size mismatch for conv_in.bias"),
    ("text_to_image empty prompt", "t2i", "--prompt '' --out {root}/t1 --num 1 --steps 2", 2, "has no words"),
    ("text_to_image punctuation prompt", "t2i", "--prompt '?!.' --out {root}/t2 --num 1 --steps 2", 2,
     "the prompt '?!.' has no words"),
    ("text_to_image long prompt", "t2i", "--prompt '" + " ".join(["seven"] * 20) + "' --out {root}/t3 --num 1 --steps 2", 2,
     "the prompt has 20 words but the text encoder reads at most 14"),
    ("text_to_image missing checkpoint", "t2i", "--prompt 'a seven' --checkpoint {root}/nothing --out {root}/t4", 2,
     "holds no checkpoint"),
    ("text_to_image not a text model", "t2i", "--prompt 'a seven' --checkpoint {root}/ckpt --out {root}/t5", 2,
     "is not a text-conditioned model"),
    ("bench only bogus", "bench", "--grid quick --only bogus --num 2 --csv {root}/b.csv", 2,
     "--only bogus: not a configuration of --grid quick"),
    ("bench missing checkpoint", "bench", "--grid quick --checkpoint {root}/nothing --num 2 --csv {root}/b3.csv "
     "--samples {root}/bs", 2, "checkpoint folder {root}/nothing does not exist"),
    ("bench unknown features", "bench", "--grid quick --features resnet --num 2 --csv {root}/b2.csv --samples {root}/bs",
     2, "unknown feature network 'resnet'"),
    ("bench csv is a folder", "bench", "--grid quick --num 2 --csv {root}/full --samples {root}/bs", 2, "full"),
    ("bench guidance without labels", "bench", "--grid quick --guidance 2", 2, "--guidance needs --labels balanced"),
    # the other commands (issue 45: every tool a user types)
    ("multistep_fit steps 0", "fit", "--checkpoint {root}/ckpt --steps 0", 2, "argument --steps: expected a positive integer"),
    ("multistep_fit checkpoint missing", "fit", "--checkpoint {root}/nothing --steps 4", 2, "does not exist"),
    ("multistep_fit num 0", "fit", "--checkpoint {root}/ckpt --steps 4 --num 0", 2, "argument --num: expected a positive"),
    ("multistep_fit history 0", "fit", "--checkpoint {root}/ckpt --steps 4 --history 0", 2, "argument --history"),
    ("multistep_fit history above steps", "fit", "--checkpoint {root}/ckpt --steps 4 --history 9 --num 2", 2,
     "--history 9: a step can use at most the estimates of the steps before it, so at most 4"),
    ("multistep_fit steps above T", "fit", "--checkpoint {root}/ckpt --steps 5000 --num 2", 2,
     "--steps 5000 is more than the model's T = 1000 timesteps"),
    ("multistep_fit out is a folder", "fit", "--checkpoint {root}/ckpt --steps 4 --num 2 --out {root}/full", 2,
     "full is a folder; give the calibration file's name"),
    ("calibrate checkpoint missing", "cal", "--checkpoint {root}/nothing", 2, "does not exist"),
    ("calibrate steps 0", "cal", "--checkpoint {root}/ckpt --steps 0", 2, "argument --steps: expected a positive"),
    ("calibrate num 0", "cal", "--checkpoint {root}/ckpt --num 0", 2, "argument --num: expected a positive"),
    ("calibrate unknown spacing", "cal", "--checkpoint {root}/ckpt --spacing even --num 2 --dry-run", 2,
     "unknown timestep spacing 'even'"),
    ("calibrate classifier missing", "cal", "--checkpoint {root}/ckpt --classifier {root}/nothing --num 2 --dry-run", 2,
     "noisy classifier: checkpoint folder"),
    ("gn-2m steps 0", "gn", "--checkpoint {root}/ckpt --steps 4 0", 2, "argument --steps: expected a positive"),
    ("gn-2m steps above T", "gn", "--checkpoint {root}/ckpt --steps 4 5000 --num 2", 2,
     "--steps 5000: more than the model's T = 1000 timesteps"),
    ("gn-2m out is a folder", "gn", "--checkpoint {root}/ckpt --steps 4 --num 2 --out {root}/full", 2,
     "full: expected a file name in an existing folder"),
    ("gn-2m twin missing", "gn", "--checkpoint {root}/ckpt --steps 4 --num 2 --classifier {root}/nothing --dry-run", 2,
     "the MNIST-CNN twin: checkpoint folder"),
    ("gn-2m unknown features", "gn", "--checkpoint {root}/ckpt --features pixels", 2, "argument --features: invalid choice"),
    ("sweep unknown run", "sweep", "train --only cubic-l2", 2, "unknown run 'cubic-l2'"),
    ("sweep unknown action", "sweep", "fly", 2, "argument action: invalid choice: 'fly'"),
    ("sweep num 0", "sweep", "evaluate --num 0", 2, "argument --num: expected a positive integer"),
    ("sweep unknown budget", "sweep", "train --budget huge", 2, "argument --budget: invalid choice"),
    ("notebooks unknown name", "nb", "zz_nothing --mode quick --out {root}/nbq", 2, "no notebook matches zz_nothing"),
    ("notebooks timeout 0", "nb", "--timeout 0", 2, "argument --timeout: expected a positive integer"),
    ("notebooks jobs 0", "nb", "--jobs 0", 2, "argument --jobs: expected a positive integer"),
    ("notebooks unknown mode", "nb", "--mode fast", 2, "argument --mode: invalid choice: 'fast'"),
    ("notebooks retries -1", "nb", "--retries -1", 2, "argument --retries: expected a non-negative integer"),
    ("notebooks out is a file", "nb", "--out {root}/afile", 2, "expected a folder for the executed copies"),
    ("report from a missing folder", "report", "--from {root}/nothing --out {root}/rep --no-pdf", 2, "no executed copy of"),
    ("report out is a file", "report", "--out {root}/afile --no-pdf", 2, "--out {root}/afile is a file; give a folder"),
    ("report unknown notebook", "report", "zz_nothing --out {root}/rep2 --no-pdf", 2, "no notebook matches zz_nothing"),
    ("feature_net data without factors", "fnet", "--dataset mnist --out {root}/fn1 --steps 1", 2,
     "needs a data set with known factors"),
    ("feature_net steps 0", "fnet", "--dataset shapes:16 --out {root}/fn2 --steps 0", 2, "argument --steps"),
    ("feature_net out holds one", "fnet", "--dataset shapes:16 --out {root}/ckpt --steps 1", 2, "already holds a checkpoint"),
    ("feature_net out is a file", "fnet", "--dataset shapes:16 --out {root}/afile --steps 1", 2, "is a file; give a folder"),
    ("text_encoder steps 0", "clip", "--out {root}/c2 --steps 0", 2, "argument --steps: expected a positive integer"),
    ("text_encoder autoencoder missing", "clip", "--autoencoder {root}/nothing --out {root}/c3 --steps 1", 2,
     "checkpoint folder {root}/nothing does not exist"),
    ("text_encoder out holds one", "clip", "--out {root}/ckpt --steps 1", 2, "already holds a checkpoint"),
    ("autoencoder steps 0", "vae", "--out {root}/v1 --steps 0", 2, "argument --steps: expected a positive integer"),
    ("autoencoder kl negative", "vae", "--out {root}/v2 --kl-weight -1", 2, "argument --kl-weight: expected a non-negative"),
    ("autoencoder resume nothing", "vae", "--out {root}/v3 --resume", 2, "holds no checkpoint to continue"),
    ("autoencoder unknown dataset", "vae", "--out {root}/v4 --dataset cifar11 --steps 1", 2, "unknown data set 'cifar11'"),
    ("autoencoder out holds another run", "vae", "--out {root}/ckpt --steps 1", 2, "already holds a checkpoint; pass --resume"),
    ("evaluate checkpoint missing", "evaluate", "--checkpoint {root}/nothing --num 2", 2, "does not exist"),
    ("evaluate seed -1", "evaluate", "--checkpoint {root}/ckpt --num 2 --seed -1", 2, "argument --seed"),
    ("evaluate batch 0", "evaluate", "--checkpoint {root}/ckpt --num 2 --batch-size 0", 2, "argument --batch-size"),
    ("evaluate out under a file", "evaluate", "--checkpoint {root}/ckpt --num 2 --out {root}/afile/x", 2,
     "is under the file {root}/afile"),
    ("evaluate a model the classifier cannot judge", "evaluate", "--checkpoint {root}/ckpt --num 2", 2,
     "the digit classifier judges 1 x 28 x 28 images"),
    ("paired_fid without rows", "paired", "--csv {root}/none.csv --samples {root}/bs --out {root}/p.csv", 2,
     "has no rows; run bench/sampler_fid.py first"),
    ("video_fvd unknown option", "vfvd", "--frames 0", 2, "unrecognized arguments: --frames 0"),
    ("fid real folder missing", "fid", "--fake {root}/two --real {root}/nothing", 2, "nothing"),
    ("fid seed -1", "fid", "--fake {root}/two --seed -1", 2, "argument --seed"),
    ("fid unknown features", "fid", "--fake {root}/two --features resnet", 2, "argument --features: invalid choice"),
    ("tabular unknown command", "tabular", "fly", 2, "argument command: invalid choice: 'fly'"),
    ("tabular lr 0", "tabular", "train --out {root}/t9 --lr 0", 2, "argument --lr: expected a positive number, got 0"),
    ("tabular sample an image model", "tabular", "sample --checkpoint {root}/ckpt --num 5 --out {root}/t.csv", 2,
     "is not a tabular DDPM checkpoint"),
    ("tabular evaluate missing", "tabular", "evaluate --checkpoint {root}/nothing", 2, "does not exist"),
    ("tabular unknown data", "tabular", "train --data bogus --out {root}/tb1 --steps 1", 2, "unknown data set 'bogus'"),
    ("sample resume a missing folder", "sample!", "--out {root}/newone --resume --num 2 --steps 2", 2,
     "--resume: --out {root}/newone does not exist"),
    ("sample overwrite a folder with a user's file", "sample!", "--out {root}/foreign --overwrite --num 2 --steps 2", 2,
     "holds files this command did not write (notes.txt)"),
    ("evaluate num 10**12", "evaluate", "--checkpoint {root}/ckpt --num 1000000000000", 2,
     "--num 1000000000000 with 1000 steps is 1e+15 network evaluations"),
    ("tabular sample num 10**12", "tabular", "sample --checkpoint {root}/tab --num 1000000000000 --out {root}/huge.csv", 2,
     "network evaluations (about"),
    # an --out the system will not let us write (/proc): one line before any work, not a traceback after it
    ("train out on a read-only system", "train", "--out /proc/wb-train --steps 1", 2, "No such file or directory: '/proc/wb-train'"),
    ("sample out on a read-only system", "sample!", "--out /proc/wb-sample --num 2 --steps 2", 2, "'/proc/wb-sample'"),
    ("evaluate out on a read-only system", "evaluate", "--checkpoint {root}/ckpt --num 2 --out /proc/wb-eval", 2,
     "'/proc/wb-eval'"),
    ("tabular sample out on a read-only system", "tabular", "sample --checkpoint {root}/tab --num 5 --out /proc/wb.csv", 2,
     "'/proc/wb.csv'"),
    ("multistep_fit out in a missing folder", "fit", "--checkpoint {root}/ckpt --steps 4 --num 2 --out /proc/x/c.json", 2,
     "the folder /proc/x does not exist"),
    ("sample lsq-ms off its spacing", "sample", "--sampler lsq-ms --steps 6 --spacing linspace", 2,
     "no coefficients for these 6 timesteps"),
    ("sample unknown diffusers scheduler", "sample", "--sampler diffusers:NoSuchScheduler --steps 4", 2,
     "unknown diffusers scheduler 'NoSuchScheduler'"),
]


def run_cli(tool, argv, capsys):
    try:
        code = MAINS[tool](argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


def cli_argv(case, files) -> list[str]:
    """The command line of a CLI case, its {root} and the tool's usual options filled in."""
    name, tool, args, status, fragment = case
    argv = shlex.split(args.format(root=files))
    if tool.endswith("@"):  # sample with its own --checkpoint
        argv += ["--out", str(files / "out" / name.replace(" ", "-"))]
    elif tool.endswith("!"):  # sample with its own --out
        argv = ["--checkpoint", str(files / "ckpt"), *argv]
    elif tool == "sample":
        argv = ["--checkpoint", str(files / "ckpt"), "--out", str(files / "out" / name.replace(" ", "-")), *argv]
    elif tool == "train" and "--out" not in argv:
        argv = TINY + ["--out", str(files / "new-run"), *argv]
    return argv


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_cli_refuses_in_one_line(case, files, capsys):
    name, tool, args, status, fragment = case
    code, err = run_cli(tool.rstrip("@!"), cli_argv(case, files), capsys)
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
    # issue 45's second probe: each raised something other than a named ValueError, or nothing
    ("kid of three images", lambda: kernel_distance(RNG.normal(size=(3, 8)), RNG.normal(size=(100, 8))), ValueError,
     "needs at least 10 rows in each; got 3, 100"),
    ("frechet dims differ", lambda: frechet_distance(RNG.normal(size=(50, 4)), RNG.normal(size=(50, 5))), ValueError,
     "must be [N x D] arrays of one D; got shapes (50, 4), (50, 5)"),
    ("frechet nan features", lambda: frechet_distance(np.full((50, 4), np.nan), RNG.normal(size=(50, 4))), ValueError,
     "feature set 1 of 2 holds NaN or inf values"),
    ("frechet one row", lambda: frechet_distance(RNG.normal(size=(1, 4)), RNG.normal(size=(50, 4))), ValueError,
     "needs at least 2 rows in each; got 1, 50"),
    ("fid_interval num_boot 1", lambda: fid_interval(RNG.normal(size=(50, 4)), RNG.normal(size=(100, 4)), num_boot=1),
     ValueError, "num_boot must be at least 2"),
    ("fid_blocks n above N", lambda: fid_blocks(RNG.normal(size=(50, 4)), RNG.normal(size=(100, 4)), 100), ValueError,
     "need at least n = 100 rows for one block, got 50"),
    ("fid_difference unpaired", lambda: fid_difference(RNG.normal(size=(50, 4)), RNG.normal(size=(40, 4)),
                                                       RNG.normal(size=(100, 4))),
     ValueError, "needs the same images on both sides; got 50 and 40"),
    ("t_interval of one set", lambda: stats.t_interval([1.0]), ValueError, "a t-interval needs at least 2 finite values"),
    ("wilson k above n", lambda: stats.wilson(11, 10), ValueError, "0 <= k <= n and n >= 1, got k = 11, n = 10"),
    ("wilson fractional k", lambda: stats.wilson(0.5, 10), ValueError, "got k = 0.5"),
    ("paired sets unequal", lambda: stats.paired_sets([1, 2, 3], [1, 2]), ValueError, "got 3 and 2"),
    ("bootstrap of 10 resamples", lambda: stats.percentile_bootstrap([1, 2, 3], np.mean, num_boot=10), ValueError,
     "at least 2 rows and 100 resamples"),
    ("interval level 1.5", lambda: stats.t_interval([1, 2, 3], level=1.5), ValueError, "level must be in (0, 1)"),
    ("verdict of a tuple", lambda: stats.verdict((1, 0, 2)), ValueError, "verdict reads an Estimate of a paired difference"),
    ("rank agreement of two", lambda: stats.rank_agreement([(1, 0, 2)] * 2, [(1, 0, 2)] * 2), ValueError,
     "needs the same items (at least 3)"),
    ("break-even negative", lambda: stats.break_even(-1, 2, 1), ValueError, "one_off_seconds must be a finite number >= 0"),
    ("load_images shapes 33", lambda: load_images("shapes:33"), ValueError, "the size must be one of 16, 32, 64, 128"),
    ("load_images mnist validation", lambda: load_images("mnist:validation"), ValueError, "unknown MNIST split"),
    ("prompt without words", lambda: Tokenizer(16).check("?!"), ValueError, "the prompt '?!' has no words"),
    ("prompt too long", lambda: Tokenizer(16).check("seven " * 20), ValueError, "has 20 words but the text encoder reads at most 14"),
    ("generate seed -1", lambda: generate(tiny_denoiser(), 2, -1, steps=2), ValueError,
     "the seed must be a non-negative integer, got -1"),
    ("generate labels on an unconditional model", lambda: generate(tiny_denoiser(), 2, 0, steps=2, y=torch.tensor([1, 2])),
     ValueError, "labels were given but the model is unconditional"),
    ("generate label 99", lambda: generate(conditional_denoiser(), 2, 0, steps=2, y=torch.tensor([1, 99])), ValueError,
     "class labels must lie in [0, 10]"),
    ("ddim_step s > t", lambda: ddim_step(tiny_denoiser(), torch.zeros(1, 1, 8, 8), 10, 20), ValueError,
     "a DDIM step goes from t to an earlier s (-1 <= s < t), got t = 10, s = 20"),
    ("distillation target s > t", lambda: x_tilde(torch.zeros(1, 4), torch.zeros(1, 4), SCHEDULE.alpha_bar, 10, 20),
     ValueError, "from t to an earlier s"),
    ("step weights of x0", lambda: step_weights(SCHEDULE.alpha_bar, torch.tensor([999, 499, -1]), "x0"), ValueError,
     "prediction must be one of ('v', 'eps'), got 'x0'"),
    ("q_sample eps of another shape", lambda: q_sample(SCHEDULE, torch.zeros(2, 1, 4, 4), torch.tensor([5, 5]),
                                                      torch.zeros(2, 1, 4, 5)),
     ValueError, "x0 and eps must have one shape; got [2, 1, 4, 4] and [2, 1, 4, 5]"),
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


def test_the_probe_counts_of_issue_45():
    """At least 150 command-line and 60 API cases, as issue 45 asks."""
    assert len(CLI) >= 150 and len(API) >= 60, (len(CLI), len(API))
