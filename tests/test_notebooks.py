"""Every notebook runs top to bottom in quick mode (as graders and CI re-execute them) without an error."""
import json

import pytest

from helpers.workbook.notebooks import execute
from helpers.paths import notebook_paths
from helpers.workbook.report import export_page


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    out = tmp_path / path.name
    # Quick mode runs each notebook in well under two minutes; a cell that stalls for 5 minutes (seen once in CI, in
    # notebook 01's widget cell on a loaded machine, not reproduced) fails the run and the notebook runs once more.
    record = execute(path, out, mode="quick", timeout=300, retries=1)
    assert "error" not in record, record.get("error")
    nb = json.loads(out.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged, "the first code cell must be tagged `parameters`"
    entry = export_page(out, tmp_path, missing=[])
    assert entry["title"] != "Notebook" and (tmp_path / entry["page"]).stat().st_size > 10_000


def test_committed_notebooks_ran_in_full_mode():
    """The committed copies are executed (every code cell has run, no errors) in full mode."""
    for path in notebook_paths():
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
        assert all(c.get("execution_count") for c in code), f"{path.name} has cells that did not run"
        errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{path.name} was committed with errors"
        assert nb["metadata"].get("workbook", {}).get("mode") == "full", f"{path.name} was not committed from a full run"


def test_a_stalled_cell_fails_the_run_and_is_retried(tmp_path):
    """A cell running past the timeout is recorded as a failure (the run goes on), and `retries` runs it again."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("SEED = 3", metadata={"tags": ["parameters"]}),
                                         nbformat.v4.new_code_cell("import time\ntime.sleep(60)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "stall.ipynb"
    nbformat.write(nb, str(path))
    record = execute(path, tmp_path / "out.ipynb", mode="quick", timeout=2, retries=1)
    assert record["error"] == {"cell": 2, "error": "timed out after 2 s per cell"}
    assert record["retried"]["attempts"] == 2 and record["seed"] == 3
    assert record["seconds"] < 50  # two attempts of about 2 s each, plus kernel start-up; never the cell's 60 s
    saved = json.loads((tmp_path / "out.ipynb").read_text())
    assert saved["metadata"]["workbook"]["error"]["error"].startswith("timed out")


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_committed_outputs_hold_no_machine_paths_or_warnings(path):
    """What a grader reads holds no absolute path of the machine that ran it and no library warning."""
    nb = json.loads(path.read_text())
    bad = ("/work/", "/root/", "/home/", "Warning:", "warnings.warn(")
    for k, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            found = [b for b in bad if b in text]
            assert not found, f"{path.name}, cell {k}: {found[0]!r} in its output: {text[:200]!r}"


def _code_at(commit: str, path) -> list[str] | None:
    """The code cells of `path` as committed at `commit`, or None where this clone lacks the commit (a shallow one)."""
    import subprocess

    from helpers.paths import ROOT

    rel = path.relative_to(ROOT).as_posix()
    shown = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:{rel}"], capture_output=True, text=True)
    if shown.returncode:
        shallow = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
        assert shallow.stdout.strip() == "true", f"{path.name} records commit {commit}, which is not in this repository"
        return None
    return ["".join(c["source"]) for c in json.loads(shown.stdout)["cells"] if c["cell_type"] == "code"]


# Notebooks whose committed copy predates this rule, with the reason; each leaves the list with its next full run.
AWAITING_FULL_RUN = {
    "04_cfg_ema": "its outputs were made at b1ad7c2 plus uncommitted changes (2026-12-03); its rewrite (analysis in "
                  "helpers.studies.cfg_ema_analysis, issue 41's intervals) is at e6be4ed and needs about 2.5 hours of "
                  "one core in full mode",
}


@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_committed_notebooks_name_the_clean_commit_that_made_them(path):
    """Provenance (issue 43): the run's record names a commit, executed from a clean tree (no '+changes'), and the
    notebook's code cells are the ones committed there, so the numbers came from code a reader can check out. Prose
    may be corrected after the run; code may not."""
    if path.stem in AWAITING_FULL_RUN:
        pytest.skip(f"{path.name}: {AWAITING_FULL_RUN[path.stem]}")
    record = json.loads(path.read_text())["metadata"].get("workbook", {})
    commit = str(record.get("commit") or "")
    assert commit and "+" not in commit, f"{path.name} records commit {commit!r}: run it again from a clean, committed tree"
    code = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    then = _code_at(commit, path)
    if then is not None:
        changed = [k for k, (a, b) in enumerate(zip(code, then)) if a != b] + list(range(min(len(code), len(then)), max(len(code), len(then))))
        assert not changed, f"{path.name}: code cells {changed} differ from commit {commit}, which the record names; run it again"
