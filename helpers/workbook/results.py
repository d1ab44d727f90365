"""What the notebooks measured, saved where the write-up (`Homework5-Team.ipynb`) reads it.

A notebook saves its key tables (CSV), values (JSON) and figures (PNG) through one `Results` object; each notebook has
a manifest `results/<notebook>.json` naming every item with what it is, and the run that made it (mode, seed, git
commit, time). Only full-mode runs write `results/` (the committed numbers); quick and standard runs write
`reports/results/<mode>/`, so that a check run never overwrites them. The write-up reads with `read`, which always
looks in `results/`, and cites with `source`.

    R = Results("06_progressive_distillation", seed=SEED)
    R.table("fid_by_nfe", df, "FID, KID and s/image of the students and the teacher's samplers, N = 1000 per set")
    R.figure("fid_by_nfe", fig, "quality against NFE")
    ...
    read("06_progressive_distillation", "fid_by_nfe")   # -> DataFrame
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from helpers.paths import ROOT, run_mode

RESULTS = ROOT / "results"


class ResultsMissing(FileNotFoundError):
    pass


def folder(mode: str | None = None) -> Path:
    """results/ for a full run, reports/results/<mode>/ otherwise."""
    mode = mode or run_mode()
    return RESULTS if mode == "full" else ROOT / "reports" / "results" / mode


class Results:
    """The items one notebook saves in this run (the manifest starts empty each run and is rewritten at each save).
    The saving methods return nothing, so that a cell ending with one shows no output."""

    def __init__(self, notebook: str, seed: int | None = None, mode: str | None = None):
        if not (ROOT / "notebooks" / f"{notebook}.ipynb").exists() and not (ROOT / f"{notebook}.ipynb").exists():
            raise ValueError(f"Results: no notebook named {notebook!r} in notebooks/ (expected e.g. '06_progressive_distillation')")
        from helpers.workbook.notebooks import git_commit

        self.notebook, self.mode = notebook, mode or run_mode()
        self.dir = folder(self.mode)
        self.manifest = {"notebook": notebook, "mode": self.mode, "seed": seed, "commit": git_commit(),
                         "written": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "items": {}}

    def _check(self, name: str, kind: str) -> None:
        """A name holds one kind of item; saving it again (a cell run twice) replaces it."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"result name {name!r}: use letters, digits and underscores")
        saved = self.manifest["items"].get(name, {}).get("kind", kind)
        if saved != kind:
            raise ValueError(f"result name {name!r} already holds a {saved} of {self.notebook}: give the {kind} its own name")

    def _add(self, name: str, kind: str, about: str, **entry) -> None:
        self.manifest["items"][name] = {"kind": kind, "about": about, **entry}
        (self.dir / f"{self.notebook}.json").write_text(json.dumps(self.manifest, indent=1, default=float) + "\n")

    def table(self, name: str, df, about: str) -> None:
        self._check(name, "table")
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.notebook}.{name}.csv"
        df.to_csv(path, index=False)
        self._add(name, "table", about, file=path.name)

    def values(self, name: str, values: dict, about: str) -> None:
        self._check(name, "values")
        json.dumps(values, default=float)  # refuses what JSON cannot hold before anything is written
        self.dir.mkdir(parents=True, exist_ok=True)
        self._add(name, "values", about, values=values)

    def figure(self, name: str, fig, about: str) -> None:
        self._check(name, "figure")
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{self.notebook}.{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        self._add(name, "figure", about, file=path.name)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def manifest(notebook: str, where: Path = RESULTS) -> dict:
    path = where / f"{notebook}.json"
    if not path.exists():
        raise ResultsMissing(f"no saved results of notebook {notebook} ({shown(path)} is missing): run "
                             f"`python -m helpers.notebooks {notebook[:2]} --mode full --inplace`")
    return json.loads(path.read_text())


def item(notebook: str, name: str, where: Path = RESULTS) -> dict:
    m = manifest(notebook, where)
    if name not in m["items"]:
        raise ResultsMissing(f"notebook {notebook} saved no result named {name!r} (it saved: {', '.join(m['items'])})")
    return m["items"][name]


def read(notebook: str, name: str, where: Path = RESULTS):
    """A saved table (DataFrame), values (dict) or figure (the PNG's path), from the committed full-mode results."""
    entry = item(notebook, name, where)
    if entry["kind"] == "values":
        return entry["values"]
    path = where / entry["file"]
    if not path.exists():
        raise ResultsMissing(f"{shown(path)} is named by results/{notebook}.json but missing")
    if entry["kind"] == "table":
        import pandas as pd

        return pd.read_csv(path)
    return path


def source(notebook: str, where: Path = RESULTS) -> str:
    """Where a notebook's saved results come from, for a citation under each number the write-up shows."""
    m = manifest(notebook, where)
    return (f"notebooks/{notebook}.ipynb, {m['mode']} mode, seed {m['seed']}, commit {m['commit']}, {m['written']} "
            f"(`python -m helpers.notebooks {notebook[:2]} --mode full --inplace`)")


def show(notebook: str, name: str, columns: list[str] | None = None, where: Path = RESULTS) -> None:
    """Display one saved item in a notebook (a table, the values or the figure) with its description and source, or
    say that it is not available yet and how to make it."""
    from IPython.display import Image, Markdown, display

    try:
        entry, value = item(notebook, name, where), read(notebook, name, where)
    except ResultsMissing as err:
        display(Markdown(f"*Not available yet: {err}*"))
        return
    if entry["kind"] == "figure":
        display(Image(filename=str(value), width=640))
    elif entry["kind"] == "table":
        display(value[columns] if columns else value)
    else:
        for key, v in value.items():
            print(f"{key}: {v}")
    display(Markdown(f"<small>{entry['about']}. Source: {source(notebook, where)}</small>"))
