"""The notebooks' cells call, plot and say (issue 38): a code cell of about 15 lines and never over 30, no function
definitions beyond a small plot helper (`def plot_...`), no module loaded from a file path, analysis in the notebook's
study module (helpers.studies)."""
import ast
import json

import pytest

from helpers.paths import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + [ROOT / "Homework5-Team.ipynb"]
MAX_LINES, PLOT_HELPER_LINES = 30, 12
# Notebooks whose analysis still lives in their cells: each leaves this list when its cells move into its study
# module and it is re-executed in full mode (issue 38). The rules hold for every other notebook now.
NOT_YET_MOVED: set[str] = {"04_cfg_ema"}  # its rewrite awaits a full run (tests/test_notebooks.AWAITING_FULL_RUN)


def code_cells(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def breaches(path) -> list[str]:
    found = []
    for k, source in enumerate(code_cells(path)):
        lines = source.splitlines()
        if len(lines) > MAX_LINES:
            found.append(f"cell {k}: {len(lines)} lines")
        if "spec_from_file_location" in source or "exec(open(" in source:
            found.append(f"cell {k}: loads a module from a file path")
        tree = ast.parse("\n".join(l for l in lines if not l.lstrip().startswith(("%", "!"))))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                small_plot = node.name.startswith("plot") and node.end_lineno - node.lineno < PLOT_HELPER_LINES
                if not small_plot:
                    found.append(f"cell {k}: defines {node.name}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cells_call_plot_and_say(path):
    found = breaches(path)
    if path.stem in NOT_YET_MOVED:
        if not found:
            pytest.fail(f"{path.name} keeps the rules now: remove it from NOT_YET_MOVED")
        pytest.skip(f"not yet moved to its study module: {'; '.join(found[:3])}")
    assert not found, found


def test_no_notebook_loads_a_file_as_a_module():
    for path in NOTEBOOKS:
        for source in code_cells(path):
            assert "spec_from_file_location" not in source and "exec(open(" not in source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_ids_are_unique(path):
    """nbformat 'corrects' a repeated cell id on every read (a warning in every run and a changed file on every save):
    an edit that copied a cell must give it its own id."""
    ids = [c.get("id") for c in json.loads(path.read_text())["cells"]]
    assert len(ids) == len(set(ids)), f"repeated cell ids: {sorted({i for i in ids if ids.count(i) > 1})}"
