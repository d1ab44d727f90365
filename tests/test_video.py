"""Video diffusion's pieces: the moving-MNIST clips (helpers/datasets/moving_mnist.py) and the factorised space-time U-Net
(helpers/models/video_unet.py): shapes, frame order, and the independent-frames mask of joint image training."""
import numpy as np
import pytest
import torch

from helpers.datasets.images import load_images
from helpers.models.video_unet import VideoUNet, VideoUNetConfig
from helpers.datasets.moving_mnist import DIGIT, DIRECTIONS, SIZE, make_clips, trajectory
from tests.conftest import bench_script

CFG = dict(in_channels=1, image_size=8, num_frames=4, max_frames=8, base_channels=8, channel_mults=(1, 2),
           attention_resolutions=(4,), num_heads=2, groups=4)


def perturbed(zero_bias=False, seed=0):
    torch.manual_seed(seed)
    model = VideoUNet(VideoUNetConfig(**CFG)).eval()
    with torch.no_grad():
        for i, (name, p) in enumerate(model.named_parameters()):
            if zero_bias and name.endswith("relative_bias"):
                continue
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
    return model


def test_any_number_of_frames_and_bad_input():
    model = perturbed()
    t = torch.tensor([3, 900])
    for frames in (1, 4, 8):
        assert model(torch.randn(2, frames, 1, 8, 8), t).shape == (2, frames, 1, 8, 8)
    with pytest.raises(ValueError, match=r"expected clips of shape \[N, F <= 8, 1, 8, 8\]"):
        model(torch.randn(2, 9, 1, 8, 8), t)
    with pytest.raises(ValueError, match="num_frames must be between 1 and max_frames"):
        VideoUNetConfig(num_frames=40, max_frames=32)


@torch.no_grad()
def test_frame_order_matters_only_through_the_relative_position_bias():
    x, t = torch.randn(2, 5, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([10, 500])
    perm = torch.tensor([3, 0, 4, 1, 2])
    plain = perturbed(zero_bias=True)  # every other layer acts per frame or symmetrically across frames
    torch.testing.assert_close(plain(x[:, perm], t), plain(x, t)[:, perm], rtol=1e-4, atol=1e-5)
    ordered = perturbed()
    assert not torch.allclose(ordered(x[:, perm], t), ordered(x, t)[:, perm], atol=1e-3)
    shift = torch.roll(x, 1, dims=1)  # the bias depends on the offset j - i only: a clip's frames interact
    assert not torch.allclose(ordered(shift, t), ordered(x, t), atol=1e-3)


@torch.no_grad()
def test_independent_frames_are_an_image_model_per_frame():
    model = perturbed()
    x, t = torch.randn(2, 4, 1, 8, 8, generator=torch.Generator().manual_seed(2)), torch.tensor([10, 500])
    joint = model(x, t, frames_independent=True)
    for f in range(4):
        torch.testing.assert_close(joint[:, f], model(x[:, f:f + 1], t, frames_independent=True)[:, 0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(joint, model(x, t), atol=1e-3)


def test_moving_mnist_clips():
    mnist = load_images("mnist:train")
    clips = lambda frames, split="train": make_clips(mnist.images, mnist.labels, frames, split, num=6)
    (a, la, da), (b, lb, db) = clips(8), clips(4)
    assert a.shape == (6, 8, 1, SIZE, SIZE) and set(la.tolist()) <= set(range(10))
    assert torch.equal(a[:, :4], b) and torch.equal(la, lb) and torch.equal(da, db)  # the 4-frame clip is a prefix
    assert torch.equal(clips(8)[0], a) and not torch.equal(clips(8, "test")[0], a)
    # every frame holds the same digit, moved by whole pixels: the same pixel values, shifted
    frame0, frame7 = a[0, 0], a[0, 7]
    assert torch.equal(frame0.flatten().sort().values, frame7.flatten().sort().values)
    test = load_images("moving-mnist:2:test")
    assert test.images.shape == (2000, 2, 1, SIZE, SIZE) and test.num_classes == 10 and test.directions.shape == (2000,)
    with pytest.raises(ValueError, match="moving-mnist needs a number of frames"):
        load_images("moving-mnist")
    with pytest.raises(ValueError, match="between 1 and 32"):
        load_images("moving-mnist:40")


def test_trajectories_stay_inside_and_bounce():
    for i in range(200):
        corners, direction = trajectory(np.random.default_rng([0, i]), 30)
        assert corners.min() >= 0 and corners.max() <= SIZE - DIGIT
        steps = np.diff(corners, axis=0)
        assert np.abs(steps).max() <= 2
        first = steps[0]
        dx, dy = DIRECTIONS[direction]
        assert all(abs(s) == abs(d) * abs(first).max() for s, d in zip(first, (dx, dy)))  # the direction, maybe reflected


VIDEO_RUN = ["--architecture", "video-unet", "--dataset", "moving-mnist:4", "--base-channels", "8", "--channel-mults", "1,2",
             "--attention-resolutions", "16", "--batch-size", "4", "--steps", "3", "--checkpoint-every", "3", "--log-every", "1"]


def test_a_video_model_trains_with_joint_images_through_helpers_train_and_samples(tmp_path):
    """helpers.training.ddpm builds the video U-Net for clips (F from the data), VDM's joint training adds clips of
    independent frames, and every sampler draws clips [N x F x C x H x W] from the checkpoint."""
    import json

    from helpers.training import ddpm as train
    from helpers.denoisers import from_checkpoint
    from helpers.samplers import generate

    out = tmp_path / "video"
    assert train.main([*VIDEO_RUN, "--joint-images", "2", "--out", str(out)]) == 0
    card = json.loads((out / "model_card.json").read_text())
    assert card["architecture"] == "video-unet" and card["model"]["num_frames"] == 4 and card["train"]["joint_images"] == 2
    assert card["data"]["shape"] == [4, 1, 32, 32] and card["step"] == 3
    denoiser, _ = from_checkpoint(out)
    for sampler in ("ddim", "dpmpp-2m"):
        assert generate(denoiser, 2, 0, sampler=sampler, steps=3, batch_size=2).shape == (2, 4, 1, 32, 32)


def test_joint_image_clips_are_frames_of_different_clips_and_leave_the_video_batch_alone():
    from helpers.training.loop import BatchOrder
    from helpers.training.ddpm import TrainConfig, global_batch, image_clips

    data = load_images("moving-mnist:4")
    cfg = TrainConfig(dataset="moving-mnist:4", batch_size=4, joint_images=3)
    x0, t, eps = image_clips(data, 7, cfg)
    assert x0.shape == eps.shape == (3, 4, 1, 32, 32) and t.shape == (3,)
    again = image_clips(data, 7, cfg)
    assert all(torch.equal(a, b) for a, b in zip((x0, t, eps), again))  # a function of (seed, step)
    frames = data.images.reshape(-1, 1, 32, 32)
    for frame in x0.reshape(-1, 1, 32, 32)[:4]:  # each one a frame of the training clips
        assert (frames - frame).abs().flatten(1).amax(1).min() == 0
    order = BatchOrder(len(data), cfg.batch_size, cfg.seed)
    with_images = global_batch(data, order, 7, cfg, None)
    without = global_batch(data, order, 7, TrainConfig(dataset="moving-mnist:4", batch_size=4), None)
    assert all(torch.equal(a, b) for a, b in zip(with_images[:3], without[:3]))


@pytest.mark.parametrize("extra, message", [
    (["--dataset", "digits", "--architecture", "unet", "--joint-images", "2"],
     "--joint-images trains a video model on still frames too; it needs --architecture video-unet"),
    (["--joint-images", "2", "--conditional"], "--joint-images needs an unconditional model"),
    (["--dataset", "digits"], "--architecture video-unet needs clips [F x C x H x W], but digits holds items of shape [1, 8, 8]"),
    (["--patch-size", "2"], "--patch-size is an option of the DiT, not of --architecture video-unet"),
])
def test_bad_video_training_options_are_refused_in_one_line(tmp_path, capsys, extra, message):
    from helpers.training import ddpm as train

    assert train.main([*VIDEO_RUN, "--out", str(tmp_path / "bad"), *extra]) == 2  # a repeated option: the last counts
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err


def test_frame_digits_give_mnist_images_the_classifier_reads():
    """Per-frame FID and temporal consistency read each frame's digit with the MNIST classifier: on real test clips
    it is right for 97.3% of frames (300 clips x 8 frames, measured when this test was written; 98.8% on MNIST's own
    test digits) and gives one label for every frame of 100% of the clips; clips whose digit changes mid-clip fail."""
    from helpers.evaluation.digits import load_classifier, predict
    from helpers.evaluation.metrics import consistency, lit_pixels
    from helpers.datasets.moving_mnist import frame_digits

    data = load_images("moving-mnist:8:test")
    crops = frame_digits(data.images[:300])
    assert crops.shape == (2400, 1, 28, 28) and crops.min() >= -1 and crops.max() <= 1
    classifier = load_classifier()
    labels = predict(classifier, crops).argmax(1).reshape(300, 8)
    assert (labels == data.labels[:300, None]).double().mean() > 0.95
    assert (labels == labels[:, :1]).all(1).double().mean() > 0.99
    real = consistency(data.images[:300], classifier)
    assert real["consistency_lo"] <= real["consistency"] == (labels == labels[:, :1]).all(1).double().mean().item()
    other = torch.nonzero((labels != labels[0, 0]).all(1))[:, 0]  # clips none of whose frames reads as clip 0's digit
    spliced = torch.cat([data.images[:1, :4].expand(len(other), -1, -1, -1, -1), data.images[other, 4:]], 1)
    assert len(other) > 200 and consistency(spliced, classifier)["consistency"] == 0  # a digit changing mid-clip fails
    noisy = (data.images[:300] + 0.3 * torch.randn(data.images[:300].shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    assert lit_pixels(data.images[:300]) < 0.05 and lit_pixels(noisy) > 0.1  # noise of std 0.3 lights ~9% of the background
    with pytest.raises(ValueError, match=r"expected moving-MNIST clips \[N, F, 1, 32, 32\], got \[2, 1, 32, 32\]"):
        frame_digits(torch.zeros(2, 1, 32, 32))


def test_the_video_bench_skips_an_unfinished_model_and_scores_a_finished_one(tmp_path, capsys):
    """bench/video_fvd.py evaluates only finished runs (a card at step < its --steps, or a missing snapshot, is skipped
    and named), then draws, scores and writes one CSV row per grid row with the weights' step and intervals that
    contain their estimate; a second run keeps the rows done."""
    import csv
    import json
    import shutil

    from helpers.evaluation import features as feature_net
    from helpers.training import ddpm as train

    done, partial, feats = tmp_path / "done", tmp_path / "partial", tmp_path / "vf"
    assert train.main([*VIDEO_RUN, "--out", str(done)]) == 0
    shutil.copytree(done, partial)
    card = json.loads((partial / "model_card.json").read_text())
    card["train"]["steps"] = 6  # the card of a run stopped at step 3 of 6
    (partial / "model_card.json").write_text(json.dumps(card))
    assert feature_net.main(["--dataset", "moving-mnist:4", "--out", str(feats), "--steps", "5", "--batch-size", "8"]) == 0
    bench, out = bench_script("video_fvd"), tmp_path / "v.csv"
    common = ["--grid", "quick", "--num", "4", "--batch-size", "4", "--reference-clips", "64", "--num-boot", "10", "--features", str(feats), "--csv", str(out),
              "--samples", str(tmp_path / "s")]
    assert bench.main([*common, "--model", f"vdm={partial}"]) == 0
    assert f"vdm-ddim-5-f8: skipped, {partial} is at step 3 of 6 (finish it with --resume)" in capsys.readouterr().out
    assert bench.main([*common, "--model", f"vdm={done}@2"]) == 0
    assert f"vdm-ddim-5-f8: skipped, {done} has no snapshot of step 2" in capsys.readouterr().out
    assert not out.exists()
    assert bench.main([*common, "--model", f"vdm={done}"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["name"] for r in rows] == ["vdm-ddim-5-f8", "vdm-ddim-5-f4"] and {(r["num"], r["reference_clips"], r["num_boot"]) for r in rows} == {("4", "64", "10")}
    assert {r["step"] for r in rows} == {"3"}
    written = out.read_text()
    assert bench.main([*common, "--model", f"vdm={done}"]) == 0 and out.read_text() == written  # rows done are kept
    # --rows redoes one row (here: more clips) and keeps the rows it was not asked for, including one that another
    # process added to the CSV while it ran
    other = {**rows[0], "name": "other-process-row"}
    with out.open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(other)
    assert bench.main([*common[:3], "6", *common[4:], "--model", f"vdm={done}", "--rows", "vdm-ddim-5-f4"]) == 0
    again = {r["name"]: r for r in csv.DictReader(out.open())}
    assert list(again) == ["vdm-ddim-5-f8", "vdm-ddim-5-f4", "other-process-row"]
    assert (again["vdm-ddim-5-f8"]["num"], again["vdm-ddim-5-f4"]["num"]) == ("4", "6")
    for r in rows:
        assert float(r["fvd_lo"]) <= float(r["fvd"]) <= float(r["fvd_hi"]) and 0 <= float(r["consistency_lo"]) <= float(r["consistency"]) <= float(r["consistency_hi"]) <= 1
        assert r["frame_fid_frames"] == "4"
    # a row scored by an older method (no frame_fid_frames) is scored again from the clips already drawn
    clips = tmp_path / "s" / "vdm-ddim-5-f8-seed0" / "clips.pt"
    drawn = clips.read_bytes()
    again["vdm-ddim-5-f8"]["frame_fid_frames"] = ""
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(again.values())
    assert bench.main([*common, "--model", f"vdm={done}", "--rows", "vdm-ddim-5-f8"]) == 0
    rescored = {r["name"]: r for r in csv.DictReader(out.open())}["vdm-ddim-5-f8"]
    assert rescored == {**again["vdm-ddim-5-f8"], "frame_fid_frames": "4", "s_per_clip": rescored["s_per_clip"]}
    assert clips.read_bytes() == drawn


def test_per_frame_fid_scores_the_same_number_of_evenly_spaced_frames_at_every_clip_length():
    bench = bench_script("video_fvd")
    clips = torch.arange(16.0).reshape(1, 16, 1, 1, 1).expand(2, 16, 1, 32, 32)
    for frames, kept in [(4, [0, 1, 2, 3]), (8, [0, 2, 5, 7]), (16, [0, 5, 10, 15])]:
        picked = bench.spaced_frames(clips[:, :frames])
        assert picked.shape == (2, 4, 1, 32, 32) and picked[0, :, 0, 0, 0].tolist() == kept
    with pytest.raises(ValueError, match="per-frame FID scores 4 frames per clip; these clips have 3"):
        bench.spaced_frames(clips[:, :3])


@pytest.mark.parametrize("model, message", [
    ("vdm", "--model vdm: expected NAME=FOLDER or NAME=FOLDER@STEP"),
    ("video=checkpoints/vdm-mnist", "--model video=checkpoints/vdm-mnist: NAME must be one of vdm, vdm-4k, vdm-joint"),
    ("vdm=checkpoints/vdm-mnist@4k", "--model vdm=checkpoints/vdm-mnist@4k: expected FOLDER or FOLDER@STEP with a whole-number STEP, got 'checkpoints/vdm-mnist@4k'"),
    ("vdm=", "--model vdm=: expected FOLDER or FOLDER@STEP with a whole-number STEP, got ''"),
])
def test_the_video_bench_refuses_a_bad_model_option_in_one_line(model, message, capsys):
    bench = bench_script("video_fvd")
    with pytest.raises(SystemExit) as e:
        bench.main(["--model", model])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.strip().splitlines()[-1].endswith(message) and "Traceback" not in err


def test_the_video_bench_refuses_a_row_outside_its_grid(capsys):
    bench = bench_script("video_fvd")
    with pytest.raises(SystemExit) as e:
        bench.main(["--grid", "quick", "--rows", "vdm-ddim-5-f4,vdm-ddim-7-f8"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert e.value.code == 2 and err.endswith("--rows vdm-ddim-7-f8: not a row of --grid quick (rows: vdm-ddim-5-f8, vdm-ddim-5-f4)")


def test_the_sampling_command_writes_clips_as_gifs_with_a_frame_strip(tmp_path):
    """`python -m helpers.sample` on a video model (issue 45: it ended in a raw RuntimeError): one GIF and one still
    strip of its frames per clip, and the record."""
    from PIL import Image

    from helpers.paths import ROOT
    from helpers.sample import main as sample_main

    out = tmp_path / "clips"
    assert sample_main(["--checkpoint", str(ROOT / "checkpoints" / "vdm-mnist"), "--num", "1", "--steps", "2",
                        "--sampler", "ddim", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000-frames.png", "000000.gif", "sampling.json"]
    frames = Image.open(out / "000000.gif").n_frames
    strip = Image.open(out / "000000-frames.png")
    assert frames == 8 and strip.size == (8 * 32 + 9 * 2, 32 + 2 * 2)  # 8 frames of 32 px, torchvision padding 2
