"""Output folders (helpers.cli.OutputFolder, issue 45): --overwrite never deletes what the command did not write, two
runs never mix in one folder, an interrupted sampling run is marked incomplete, refused by readers, and resumed with
--resume to exactly the images of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import sample
from helpers.cli import LOCK, MARKER, OutputFolder
from helpers.evaluation import fid
from helpers.paths import ROOT
from helpers.training import ddpm as train
from tests.test_train import TINY


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("of") / "ckpt"
    assert train.main(TINY + ["--out", str(out), "--steps", "2"]) == 0
    return out


def run(argv, capsys):
    code = sample.main([str(a) for a in argv])
    return code, capsys.readouterr().err


def argv_for(ckpt, out, *extra):
    return ["--checkpoint", ckpt, "--out", out, "--num", "6", "--batch-size", "2", "--steps", "3", *extra]


def test_overwrite_refuses_a_folder_holding_other_files(ckpt, tmp_path, capsys):
    """`--out . --overwrite` in a project: nothing is deleted, one line names what is there."""
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "README.md").write_text("mine")
    (project / "000000.png").write_bytes(b"an image of mine")
    code, err = run(argv_for(ckpt, project, "--overwrite"), capsys)
    assert code == 2 and "holds files this command did not write (.git, README.md)" in err
    assert (project / "README.md").read_text() == "mine" and (project / ".git").is_dir()
    assert (project / "000000.png").read_bytes() == b"an image of mine"


def test_overwrite_replaces_only_the_commands_own_files(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(argv_for(ckpt, out), capsys)[0] == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(first) == [f"{i:06d}.png" for i in range(6)] + ["sampling.json"]
    code, err = run(argv_for(ckpt, out), capsys)
    assert code == 2 and "is not empty" in err
    assert run(argv_for(ckpt, out, "--seed", "1", "--overwrite"), capsys)[0] == 0
    assert json.loads((out / "sampling.json").read_text())["seed"] == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(first)
    assert (out / "000000.png").read_bytes() != first["000000.png"]


def test_a_folder_another_live_run_writes_is_refused(ckpt, tmp_path, capsys):
    out = tmp_path / "busy"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK).write_text(str(other.pid))
        (out / MARKER).write_text("{}")
        code, err = run(argv_for(ckpt, out, "--overwrite"), capsys)
        assert code == 2 and f"is being written by another run (process {other.pid})" in err
    finally:
        other.kill()
        other.wait()
    # The writer is gone: its lock is stale, and --overwrite may now replace the folder.
    assert run(argv_for(ckpt, out, "--overwrite"), capsys)[0] == 0
    assert not (out / LOCK).exists() and not (out / MARKER).exists()


def test_the_number_of_network_evaluations_is_per_image(ckpt, tmp_path, capsys):
    out = tmp_path / "nfe"
    code = sample.main([str(a) for a in argv_for(ckpt, out)])
    assert code == 0 and "3 network evaluations per image" in capsys.readouterr().out
    assert json.loads((out / "sampling.json").read_text())["nfe"] == 3  # 3 steps, 3 batches of 2


def kill_after(cmd, out, images: int, sig) -> int:
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < images and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "Ctrl-C"])
def test_an_interrupted_run_is_incomplete_and_resumes_bit_identical(ckpt, tmp_path, capsys, sig):
    slow = ["--num", "16", "--batch-size", "2", "--steps", "400", "--seed", "3"]
    whole = tmp_path / "whole"
    assert sample.main(["--checkpoint", str(ckpt), "--out", str(whole), *slow]) == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "helpers.sample", "--checkpoint", str(ckpt), "--out", str(out), *slow]
    code, err = kill_after(cmd, out, 3, sig)
    done = len(list(out.glob("*.png")))
    if done == 16:
        pytest.skip("the run finished before the signal arrived")
    if sig == signal.SIGINT:
        assert code == 130 and err.strip().splitlines() == [
            f"interrupted: {out} is incomplete; continue it with the same command and --resume"]
    assert (out / MARKER).exists() and not (out / "sampling.json").exists()
    # Readers refuse the incomplete folder; a plain re-run refuses it and points to --resume.
    assert fid.main(["--fake", str(out), "--num", "2"]) == 2
    assert "is incomplete" in capsys.readouterr().err
    code, err = run(["--checkpoint", ckpt, "--out", out, *slow], capsys)
    assert code == 2 and "or --resume to continue it" in err
    code, err = run(["--checkpoint", ckpt, "--out", out, *slow[:-1], "4", "--resume"], capsys)
    assert code == 2 and "seed 4 (the run's: 3)" in err
    assert run(["--checkpoint", ckpt, "--out", out, *slow, "--resume"], capsys)[0] == 0
    assert json.loads((out / "sampling.json").read_text())["resumed_from"] == 2 * (done // 2)
    for i in range(16):
        assert (out / f"{i:06d}.png").read_bytes() == (whole / f"{i:06d}.png").read_bytes(), i
    assert not (out / MARKER).exists() and not (out / LOCK).exists()


def test_resume_of_a_finished_or_missing_folder_is_refused(ckpt, tmp_path, capsys):
    out = tmp_path / "done"
    assert run(argv_for(ckpt, out), capsys)[0] == 0
    code, err = run(argv_for(ckpt, out, "--resume"), capsys)
    assert code == 2 and "holds a finished run" in err
    code, err = run(argv_for(ckpt, tmp_path / "nowhere", "--resume"), capsys)
    assert code == 2 and "does not exist; drop --resume" in err
    code, err = run(argv_for(ckpt, out, "--resume", "--overwrite"), capsys)
    assert code == 2 and "--overwrite and --resume exclude each other" in err


def test_output_folder_alone(tmp_path):
    with OutputFolder(tmp_path / "f", plan={"a": 1}) as out:
        assert (tmp_path / "f" / MARKER).exists() and (tmp_path / "f" / LOCK).read_text() == str(os.getpid())
        assert out.first_missing(4) == 0
        out.finish({"a": 1})
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["sampling.json"]


def test_a_half_written_image_left_by_a_kill_is_the_commands_own(tmp_path):
    """write_atomic's temporary file of an image being written when the run was killed: --resume removes it and
    continues, --overwrite replaces it; neither takes it for a file of the user's."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / MARKER).write_text(json.dumps({"plan": {"a": 1}}))
    (folder / "000000.png").write_bytes(b"done")
    (folder / ".000001.png.999.tmp").write_bytes(b"half")
    with OutputFolder(folder, resume=True, plan={"a": 1}) as out:
        assert out.first_missing(1) == 1 and not (folder / ".000001.png.999.tmp").exists()
    (folder / ".000001.png.999.tmp").write_bytes(b"half")
    with OutputFolder(folder, overwrite=True, plan={"a": 2}):
        assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK, MARKER])
