"""helpers.workbook.results (what the notebooks save for the write-up) and the write-up's links to it."""
import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from helpers.workbook import results
from helpers.paths import ROOT, WRITEUP


def test_round_trip_and_manifest(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "folder", lambda mode=None: tmp_path)
    r = results.Results("05_ddpm_vs_ddim", seed=7, mode="full")
    r.table("fid", pd.DataFrame({"name": ["a", "b"], "fid": [1.5, 2.5]}), "two rows")
    r.values("verdict", {"a against b": "not resolved", "n": 3}, "a sentence")
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    r.figure("fid_plot", fig, "a line")
    m = results.manifest("05_ddpm_vs_ddim", where=tmp_path)
    assert m["seed"] == 7 and m["mode"] == "full" and set(m["items"]) == {"fid", "verdict", "fid_plot"}
    assert results.read("05_ddpm_vs_ddim", "fid", where=tmp_path).fid.tolist() == [1.5, 2.5]
    assert results.read("05_ddpm_vs_ddim", "verdict", where=tmp_path)["n"] == 3
    assert results.read("05_ddpm_vs_ddim", "fid_plot", where=tmp_path).read_bytes()[:4] == b"\x89PNG"
    r.table("fid", pd.DataFrame({"name": ["c"], "fid": [0.5]}), "a cell run again replaces its table")
    assert results.read("05_ddpm_vs_ddim", "fid", where=tmp_path).name.tolist() == ["c"]
    with pytest.raises(ValueError, match="already holds a table"):
        r.figure("fid", fig, "a figure may not take a table's name")
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        r.values("a b", {}, "")


def test_only_full_runs_write_results():
    assert results.folder("full") == ROOT / "results"
    assert results.folder("quick") == ROOT / "reports" / "results" / "quick"
    assert results.folder("standard") == ROOT / "reports" / "results" / "standard"


def test_missing_results_say_how_to_make_them(tmp_path):
    with pytest.raises(results.ResultsMissing, match=r"python -m helpers.notebooks 07 --mode full --inplace"):
        results.read("07_fast_sampler", "fid", where=tmp_path)
    with pytest.raises(ValueError, match="no notebook named"):
        results.Results("99_nothing")


def reads_of_writeup():
    """(notebook, name) of every results item the write-up shows."""
    nb = json.loads(WRITEUP.read_text())
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    pattern = r'(?:show|results\.read)\(\s*"([0-9]{2}_[a-z0-9_]+)",\s*"([a-z0-9_]+)"'
    return sorted(set(re.findall(pattern, source)))


def test_every_result_the_writeup_reads_exists_and_is_written_by_its_notebook():
    """Each item the write-up shows is in results/ (from a full run) and is saved by a call in that notebook's own
    source; notebooks that do not exist yet are allowed (the write-up says so) but nothing else is missing."""
    reads = reads_of_writeup()
    assert len(reads) >= 8
    for notebook, name in reads:
        path = ROOT / "notebooks" / f"{notebook}.ipynb"
        if not path.exists():
            assert not (ROOT / "results" / f"{notebook}.json").exists()
            continue
        entry = results.item(notebook, name)  # raises if the manifest or the item is missing
        if entry["kind"] != "values":
            assert (ROOT / "results" / entry["file"]).exists()
        assert results.manifest(notebook)["mode"] == "full"
        code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert re.search(rf'R\.{entry["kind"]}\(\s*"{name}"', code), f"{notebook} does not save {name!r} itself"
