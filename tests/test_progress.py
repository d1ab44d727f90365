"""helpers.progress and the notebook runner's second bar (issue 43): a long cell shows how far its loop is."""
import nbformat

from helpers import progress
from helpers.paths import ROOT
from helpers.workbook.notebooks import execute


def test_progress_writes_only_when_the_runner_asks(tmp_path, monkeypatch):
    monkeypatch.delenv(progress.ENV, raising=False)
    quiet = progress.Progress("sampling", 3)
    quiet.advance(3)
    assert quiet.done == 3 and not list(tmp_path.iterdir())
    path = tmp_path / "p"
    monkeypatch.setenv(progress.ENV, str(path))
    bar = progress.Progress("training x", 10, every=3600)
    bar.advance()  # the first write is due at once
    assert progress.read(path) == ("training x", 1, 10, bar.run)
    bar.advance(5)  # throttled: within `every` of the last write
    assert progress.read(path) == ("training x", 1, 10, bar.run)
    bar.advance(4)  # the last step is always written
    assert progress.read(path) == ("training x", 10, 10, bar.run)
    again = progress.Progress("training x", 10, every=3600)  # a new loop of the same label is another run
    again.advance()
    assert progress.read(path) == ("training x", 1, 10, again.run) and again.run != bar.run
    assert progress.read(tmp_path / "absent") is None


def test_a_cell_that_samples_shows_its_steps_under_the_runner_bar(tmp_path, capfd):
    """A notebook whose one cell samples 6 images with DDIM-20 in two batches through helpers.samplers.generate (a
    stand-in network, 0.15 s per step): the runner's stderr carries the sampling line and its count of 40 steps."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "import time, torch\n"
            "from helpers.denoisers import Denoiser\n"
            "from helpers.samplers import generate\n"
            "from helpers.schedules import Schedule\n"
            "class Net(torch.nn.Module):\n"
            "    def forward(self, x, t):\n"
            "        return 0.1 * x\n"
            "den = Denoiser(Net(), Schedule.from_name('linear', 100), sample_shape=(1, 4, 4))\n"
            "images = generate(den, 6, 0, sampler='ddim', steps=20, batch_size=3, callback=lambda info: time.sleep(0.15))")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SEED = 0", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "sampling.ipynb"
    nbformat.write(nb, str(path))
    record = execute(path, tmp_path / "out.ipynb", mode="quick", timeout=120)
    assert "error" not in record, record
    err = capfd.readouterr().err
    assert "sampling 6 images, ddim-20" in err and "/40" in err, err[-2000:]
