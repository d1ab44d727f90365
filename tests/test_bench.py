"""bench/sampler_fid.py's bookkeeping (configuration names, which CSV rows are drawn or scored again) and
bench/paired_fid.py's choice of pairs and its refusals."""
import pytest

from tests.conftest import bench_script as script


def bench():
    return script("sampler_fid")


def test_names_are_unique_and_say_an_explicit_clipping_choice():
    b = bench()
    assert b.config_name("ddim", 50, 0.0) == "ddim-50-eta0"
    assert b.config_name("ddim", 50, 0.0, "linspace", False) == "ddim-50-eta0-noclip"
    assert b.config_name("dpmpp-2m", 20, None, "linspace", True) == "dpmpp-2m-20-clip"
    assert b.config_name("heun", 10, None, "karras") == "heun-10-karras"
    for grid, entries in b.GRIDS.items():
        names = [c["name"] for c in (b.resolve(e, "checkpoints/ddpm-mnist") for e in entries) if c is not None]
        assert len(names) == len(set(names)), grid
    full = {b.resolve(e, "x")["name"] for e in b.GRIDS["full"]}
    # the clipping ablation of notebook 05: each sampler the other way from its default, beside the default
    for default, flipped in (("ddpm-1000", "ddpm-1000-noclip"), ("ddim-50-eta0", "ddim-50-eta0-noclip"),
                             ("dpmpp-2m-20", "dpmpp-2m-20-clip"), ("heun-10", "heun-10-clip")):
        assert {default, flipped} <= full


def test_rows_without_an_interval_or_with_fewer_images_or_sets_are_done_again():
    ok = {"num": "1000", "blocks": "1", "interval": "bootstrap over the 1000 images"}
    up_to_date = bench().up_to_date
    assert up_to_date(ok, 1000, 1)
    assert not up_to_date(None, 1000, 1)
    assert not up_to_date({**ok, "interval": ""}, 1000, 1)  # written before rows had intervals
    assert not up_to_date({**ok, "num": "500"}, 1000, 1)
    assert not up_to_date(ok, 1000, 5)
    five = {"num": "1000", "blocks": "5", "interval": "t over 5 sets"}
    assert not up_to_date(five, 1000, 5)  # written before the per-set FIDs were kept: paired comparisons need them
    assert up_to_date({**five, "fid_sets": "30.1 29.5 31.0 30.4 29.9"}, 1000, 5)


def test_a_sample_folder_is_continued_only_by_what_made_it(tmp_path):
    """Seen: `make bench` scored the DiT's cached samples as the U-Net's, since both rows were named ddim-10-eta0."""
    import pytest

    from helpers.studies.bench import claim_folder

    made = {"checkpoint": "checkpoints/ddpm-mnist", "step": 7000, "row": "ddim-10-eta0", "seed": 0}
    folder = tmp_path / "ddim-10-eta0-seed0"
    claim_folder(folder, made)
    (folder / "000000.png").write_bytes(b"")
    claim_folder(folder, made)  # the same maker continues
    for other in ({**made, "checkpoint": "checkpoints/dit-mnist"}, {**made, "step": 8000}):
        with pytest.raises(SystemExit) as e:
            claim_folder(folder, other)
        assert str(e.value).startswith(f"error: {folder} holds samples made by another configuration") and "rm -r" in str(e.value)
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "000000.png").write_bytes(b"")
    with pytest.raises(SystemExit, match="do not record what made them"):
        claim_folder(legacy, made)


def paired_fid():
    return script("paired_fid")


def test_notebook05_pairs_are_the_comparisons_among_the_rows_present():
    names = {"ddpm-50", "ddpm-100", "ddim-10-eta0", "dpmpp-2m-10", "ddim-10-eta0.2", "ddim-50-eta0", "ddim-50-eta0-noclip",
             "heun-10-clip", "dpmpp-2m-10-karras", "heun-5-karras"}  # heun-10 and heun-5 (defaults) absent
    assert paired_fid().notebook05_pairs(names) == [
        ("ddpm-50", "ddpm-100"), ("dpmpp-2m-10", "ddim-10-eta0"), ("ddpm-50", "ddim-50-eta0"), ("ddim-10-eta0.2", "ddim-10-eta0"),
        ("ddim-50-eta0-noclip", "ddim-50-eta0"), ("dpmpp-2m-10-karras", "dpmpp-2m-10")]


def test_paired_fid_refuses_unknown_rows_and_rows_without_their_samples(tmp_path, capsys):
    import pytest

    from helpers.studies.bench import claim_folder, write_rows

    p = paired_fid()
    row = {"checkpoint": "checkpoints/ddpm-mnist", "seed": "0", "num": "20", "features": "mnist-cnn", "fid": "50.0",
           "fid_lo": "40.0", "fid_hi": "60.0"}
    csv = tmp_path / "rows.csv"
    write_rows(csv, {n: {"name": n, **row} for n in ("ddim-10-eta0", "ddpm-10")}, ["name", *row])
    args = ["--csv", str(csv), "--samples", str(tmp_path / "samples"), "--out", str(tmp_path / "out.csv")]
    with pytest.raises(SystemExit) as e:
        p.main(args + ["--pair", "ddim-10-eta0:ddim-20-eta0"])
    assert e.value.code == 2
    assert "--pair must be A:B with two row names of" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"^error: no samples of row ddim-10-eta0 in .*--only ddim-10-eta0"):
        p.main(args + ["--pair", "ddim-10-eta0:ddpm-10"])
    folder = tmp_path / "samples" / "ddpm-mnist" / "ddim-10-eta0-seed0"
    claim_folder(folder, {"checkpoint": "checkpoints/ddpm-mnist", "step": 1, "row": "ddim-10-eta0", "seed": 0})
    with pytest.raises(SystemExit, match=r"was made by .* not by row ddim-10-eta0 of checkpoints/ddpm-mnist at step"):
        p.main(args + ["--pair", "ddim-10-eta0:ddpm-10"])
    assert not (tmp_path / "out.csv").exists()


def test_retime_warms_up_on_two_steps_then_times_the_rows_own_steps(monkeypatch, tmp_path):
    """--retime K: one untimed call of 2 steps on the same batch of K (the one-off costs), then the timed call with the
    row's steps; the row's time per image is replaced and the CSV rewritten after every row."""
    import argparse

    module = bench()
    calls, written = [], []
    monkeypatch.setattr(module, "generate", lambda denoiser, num, seed, **kw: calls.append((num, seed, kw["steps"], kw.get("eta"))))
    monkeypatch.setattr(module, "image_labels", lambda denoiser, labels, start, num: None)
    monkeypatch.setattr(module, "write_rows", lambda path, rows: written.append(dict(rows)))
    rows = {"ddim-50-eta0": {"sampler": "ddim", "steps": "50", "eta": "0.0", "spacing": "linspace", "clip_x0": "True",
                             "checkpoint": "checkpoints/ddpm-mnist", "s_per_image": "9.9"},
            "ddpm-1000": {"sampler": "ddpm", "steps": "1000", "eta": "", "spacing": "linspace", "clip_x0": "True",
                          "checkpoint": "checkpoints/ddpm-mnist", "s_per_image": "9.9"}}
    args = argparse.Namespace(only=None, retime=3, seed=0, compile=False, csv=tmp_path / "x.csv")
    module.retime(lambda checkpoint: object(), rows, args)
    assert calls == [(3, 0, 2, 0.0), (3, 0, 50, 0.0), (3, 0, 2, None), (3, 0, 1000, None)]
    assert len(written) == 2 and all(r["timed_images"] == 3 and r["s_per_image"] != "9.9" for r in rows.values())


@pytest.mark.parametrize("name, argv, message", [
    ("sampler_fid", ["--batch-size", "0"], "argument --batch-size: expected a positive integer, got 0"),
    ("sampler_fid", ["--num", "-5"], "argument --num: expected a positive integer, got -5"),
    ("sampler_fid", ["--seed", "-1"], "argument --seed: expected a non-negative integer, got -1"),
    ("sampler_fid", ["--blocks", "0"], "argument --blocks: expected a positive integer, got 0"),
    ("sampler_fid", ["--guidance", "nan", "--labels", "balanced"], "argument --guidance: expected a finite number"),
    ("loop_overhead", ["--repeats", "0"], "argument --repeats: expected a positive integer, got 0"),
    ("paired_fid", ["--num-boot", "0"], "argument --num-boot: expected a positive integer, got 0"),
])
def test_the_benchmarks_refuse_bad_numbers_in_one_line(name, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        script(name).main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


@pytest.mark.filterwarnings("ignore:invalid value encountered in scalar divide")  # scipy's sqrtm on a FID of 4 images
def test_processes_with_disjoint_rows_share_one_csv(monkeypatch, tmp_path):
    """Another process's row, written to the CSV while this run draws its own (as `make bench-shapes` split in two does),
    is kept: the run re-reads the CSV before adding its row. Real drawing and scoring on the shipped 32-pixel colour
    model, 4 images of 5 steps."""
    from helpers.studies.bench import read_rows, write_rows

    module = bench()
    csv = tmp_path / "shared.csv"
    theirs = {"name": "ddpm-5", "sampler": "ddpm", "steps": "5", "num": "4", "interval": "bootstrap", "fid": "1.0"}
    real_draw = module.draw

    def draw_while_another_process_writes(*args, **kw):
        write_rows(csv, {"ddpm-5": theirs}, module.FIELDS)
        return real_draw(*args, **kw)

    monkeypatch.setattr(module, "draw", draw_while_another_process_writes)
    assert module.main(["--grid", "shapes-quick", "--checkpoint", "checkpoints/ddpm-shapes-32", "--num", "4",
                        "--batch-size", "4", "--no-compile", "--only", "ddim-5-eta0", "--csv", str(csv),
                        "--features", "feature-net:checkpoints/shapes-features-32", "--reference", "shapes:32:test",
                        "--samples", str(tmp_path / "samples")]) == 0
    rows = read_rows(csv)
    assert set(rows) == {"ddpm-5", "ddim-5-eta0"} and rows["ddpm-5"]["fid"] == "1.0" and rows["ddim-5-eta0"]["num"] == "4"


def test_paired_sets_read_the_per_set_fids_of_two_rows_drawn_from_the_same_noise():
    """FID(a) - FID(b) over five sets: differences -1.0, -1.2, -0.8, -1.1, -0.9 -> mean -1.0, sd 0.158,
    t_{4, 0.975} sd / sqrt(5) = 0.196 (golden, by hand)."""
    import pandas as pd

    from helpers.studies.sampler_fid import paired_sets, up_to_date

    rows = pd.DataFrame([
        {"name": "ours-6", "seed": 0, "num": 1000, "labels": "", "fid_sets": "20.0 21.0 19.5 22.0 20.5"},
        {"name": "dpmpp-6", "seed": 0, "num": 1000, "labels": "", "fid_sets": "21.0 22.2 20.3 23.1 21.4"},
        {"name": "old", "seed": 0, "num": 1000, "labels": "", "fid_sets": ""},
        {"name": "seed1", "seed": 1, "num": 1000, "labels": "", "fid_sets": "20 21 22 23 24"}]).set_index("name")
    d = paired_sets(rows, "ours-6", "dpmpp-6")
    assert d.value == pytest.approx(-1.0) and d.hi - d.value == pytest.approx(0.19632, abs=1e-4) and d.rule == "paired-sets"
    with pytest.raises(ValueError, match="row old keeps no per-set FIDs .*--only old"):
        paired_sets(rows, "ours-6", "old")
    with pytest.raises(ValueError, match="not drawn from the same noise: seed 0 against 1"):
        paired_sets(rows, "ours-6", "seed1")
    five = {"num": 1000, "blocks": 5, "interval": "t over 5 blocks"}
    assert not up_to_date(five, 1000, 5) and up_to_date({**five, "fid_sets": "1 2 3 4 5"}, 1000, 5)


def test_fitted_samplers_without_a_calibration_are_skipped_not_failed(tmp_path, capsys):
    """The samplers grid lists lsq-sde before its calibration exists: the benchmark asks fitted_steps and skips
    those rows (a later run draws them) instead of stopping at the sampler's missing-coefficients error; run here on
    a copy of the shipped model without its calibration, asking for one lsq-sde row: exit 0, one 'skipped' line,
    nothing drawn and no row written."""
    import json
    import shutil

    from helpers.paths import ROOT
    from helpers.studies import sampler_fid
    from helpers.studies.sampler_fid import FITTED, fitted_steps

    assert "lsq-sde" in FITTED and fitted_steps(tmp_path, "lsq-sde") == set()
    (tmp_path / "calibration.json").write_text(json.dumps({"lsq-sde": {"fits": {"4": {}, "6": {}}}, "cn-2m": {}}))
    assert fitted_steps(tmp_path, "lsq-sde") == {"4", "6"} and fitted_steps(tmp_path, "lsq-ms") == set()
    model = tmp_path / "ddpm-mnist"
    model.mkdir()
    for name in ("ema.safetensors", "model_card.json"):
        shutil.copy(ROOT / "checkpoints" / "ddpm-mnist" / name, model / name)
    csv, samples = tmp_path / "rows.csv", tmp_path / "samples"
    assert sampler_fid.main(["--grid", "samplers", "--checkpoint", str(model), "--only", "lsq-sde-6-trailing", "--num", "10",
                             "--csv", str(csv), "--samples", str(samples), "--no-compile"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 1 and "lsq-sde-6-trailing: skipped" in out and "no lsq-sde calibration" in out
    assert not samples.exists() and (not csv.exists() or "lsq-sde" not in csv.read_text())
