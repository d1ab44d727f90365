"""Execute the workbook's notebooks and export each to HTML.

    python -m helpers.notebooks --mode quick                  # CI / first look: executed copies + HTML in reports/
    python -m helpers.notebooks --mode full --inplace         # refresh the committed, full-mode notebooks

The mode reaches the notebooks through $WORKBOOK_MODE, which `helpers.paths.is_quick()` reads in their parameters cell.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .paths import MODES, ROOT


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if names:
        chosen = [p for p in paths if any(n in p.name for n in names)]
        if not chosen:
            raise SystemExit(f"error: no notebook matches {names}; there are: {', '.join(p.name for p in paths)}")
        return chosen
    return paths


def execute(path: Path, out: Path, mode: str, timeout: int = 3600) -> float:
    """Run one notebook (working directory: notebooks/) with WORKBOOK_MODE=mode, save it to `out`; returns seconds."""
    import nbformat
    import papermill

    os.environ["WORKBOOK_MODE"] = mode
    start = time.time()
    nb = papermill.execute_notebook(str(path), str(out), cwd=str(ROOT / "notebooks"), kernel_name="python3",
                                    progress_bar=False, execution_timeout=timeout)
    seconds = time.time() - start
    nb.metadata["workbook"] = {"mode": mode, "seconds": round(seconds)}  # which mode made these outputs
    nbformat.write(nb, str(out))
    return seconds


def export_html(notebook: Path, html: Path) -> None:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(notebook), as_version=4))
    html.write_text(body)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m helpers.notebooks", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="substrings of notebook names (default: all)")
    p.add_argument("--mode", choices=MODES, default="quick")
    p.add_argument("--inplace", action="store_true", help="overwrite the notebooks themselves (for full-mode results)")
    p.add_argument("--reports", type=Path, default=ROOT / "reports", help="folder for executed copies and HTML")
    args = p.parse_args(argv)
    args.reports.mkdir(parents=True, exist_ok=True)
    for path in notebook_paths(args.names):
        out = path if args.inplace else args.reports / path.name
        seconds = execute(path, out, args.mode)
        export_html(out, args.reports / path.with_suffix(".html").name)
        print(f"{path.name}: executed in {args.mode} mode in {seconds:.0f} s -> {out}, {args.reports / path.with_suffix('.html').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
