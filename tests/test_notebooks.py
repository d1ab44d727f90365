"""Every notebook runs top to bottom in quick mode (as graders and CI re-execute them) without an error."""
import json

import pytest

from helpers.notebooks import execute
from helpers.paths import notebook_paths
from helpers.report import export_page


@pytest.mark.slow
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    out = tmp_path / path.name
    record = execute(path, out, mode="quick", timeout=1200)
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
