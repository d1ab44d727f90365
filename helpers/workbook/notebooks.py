"""Execute the workbook's notebooks in order, one progress line each, and (with --report) build the report.

    python -m helpers.notebooks --mode standard --report     # `make run`: reports/ with the pages, index and PDF
    python -m helpers.notebooks --mode quick                  # CI / first look: executed copies in reports/executed
    python -m helpers.notebooks --mode full --inplace         # refresh the committed, full-mode notebooks
    python -m helpers.notebooks --mode standard --jobs 2      # two notebooks at a time, one thread each on 2 cores

The mode reaches the notebooks through $WORKBOOK_MODE, which `helpers.paths` reads in their parameters cell. Every
executed notebook records its run in its metadata ("workbook": mode, seed, git commit, wall time, package versions,
and the failing cell and error if it failed). A failing notebook stops nothing else: the run goes on, the report
marks it, and the command exits non-zero at the end.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from helpers.checks import non_negative_int, positive_int
from helpers.cli import ArgumentParser
from helpers.paths import MODES, ROOT, notebook_paths

VERSIONS = ("torch", "diffusers", "numpy", "scipy", "clean-fid")
STATUS_EVERY = 15  # seconds between a parallel run's status lines


def git_commit() -> str:
    """HEAD's short hash, with '+changes' when the tracked code differs from it ('unknown' outside git). What runs
    write themselves (executed notebooks, results/) does not count: an --inplace run changes its own notebook."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)*.ipynb",
                                ":(exclude)results"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def seed_of(nb) -> int | None:
    """SEED as the notebook last sets it in its parameters cell or papermill's injected one (None if it does not)."""
    seed = None
    for cell in nb.cells:
        if cell.cell_type == "code" and {"parameters", "injected-parameters"} & set(cell.metadata.get("tags", [])):
            m = re.search(r"^SEED\s*=\s*(\d+)", cell.source, re.M)
            seed = int(m.group(1)) if m else seed
    return seed


def failure_of(nb) -> dict | None:
    """The first cell whose output is an error: its index among the code cells and the error line."""
    code_index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return {"cell": code_index, "error": f"{out.get('ename')}: {out.get('evalue')}"[:300]}
    return None


@contextmanager
def cell_progress(show: bool, path: Path | None = None):
    """While a notebook runs: $WORKBOOK_PROGRESS names a file that the kernel's long loops write to
    (helpers.progress; a fresh one unless `path` is given), and, with `show`, a thread shows its line as a second bar
    under papermill's bar of cells, once a second."""
    import tempfile
    import threading

    from tqdm import tqdm

    from helpers.progress import ENV, read

    with tempfile.TemporaryDirectory(prefix="workbook-progress-") as folder:
        path, stop, old = Path(path or Path(folder) / "progress"), threading.Event(), os.environ.get(ENV)
        os.environ[ENV] = str(path)

        def watch():
            bar, shown, shown_run = None, None, None
            while not stop.wait(1.0):
                now = read(path)
                if now is None or now == shown:
                    continue
                label, done, total, run = now
                if bar is None or run != shown_run:
                    if bar is not None:
                        bar.close()
                    bar, shown_run = tqdm(total=total, desc=f"    {label}", leave=False, file=sys.stderr, unit="step"), run
                bar.total = total
                bar.update(done - bar.n)
                shown = now
            if bar is not None:
                bar.close()

        thread = threading.Thread(target=watch, daemon=True)
        if show:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if show:
                thread.join()
            if old is None:
                os.environ.pop(ENV, None)
            else:
                os.environ[ENV] = old


def execute(path: Path, out: Path, mode: str, timeout: int = 3600, retries: int = 0, progress: bool = True,
            progress_file: Path | None = None) -> dict:
    """Run one notebook (working directory: notebooks/, or the top level for the write-up) with WORKBOOK_MODE=mode and save it to `out`, also when a
    cell fails or runs longer than `timeout` seconds; returns its run record (also stored in the notebook's
    metadata). A notebook that timed out or whose kernel died runs again, up to `retries` times (the record keeps
    `retried` and the first error); an error raised by a cell is never retried. `progress`: papermill's bar on stderr
    (cells done, elapsed time, the cell being run) and, under it, the progress of the cell's sampling or training
(cell_progress), so that a slow cell is not taken for a hung one. `progress_file`: where the kernel's loops report
(a parallel run's parent reads it; main --jobs)."""
    import nbformat
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    os.environ["WORKBOOK_MODE"] = mode
    cwd = ROOT if Path(path).resolve().parent == ROOT else ROOT / "notebooks"  # the write-up lives at the top level
    start, first_error = time.time(), None
    for attempt in range(retries + 1):
        stalled = None
        try:
            with cell_progress(progress, progress_file):
                papermill.execute_notebook(str(path), str(out), cwd=str(cwd), kernel_name="python3",
                                           progress_bar=progress and {"desc": f"  {Path(path).stem}", "unit": "cell",
                                                                      "leave": False, "file": sys.stderr},
                                           execution_timeout=timeout)
        except papermill.PapermillExecutionError:
            pass  # papermill saved the notebook with the error in its cell; failure_of() reads it
        except (CellTimeoutError, DeadKernelError) as err:
            stalled = "timed out" if isinstance(err, CellTimeoutError) else "kernel died"
        nb = nbformat.read(str(out), as_version=4)
        error = failure_of(nb)
        if stalled:
            cell = error["cell"] if error else None
            error = {"cell": cell, "error": f"{stalled} after {timeout} s per cell" if stalled == "timed out"
                     else f"{stalled}: {error['error'] if error else ''}".strip(": ")}
        if not stalled or attempt == retries:
            break
        first_error = first_error or error
    record = {"mode": mode, "seed": seed_of(nb), "commit": git_commit(), "seconds": round(time.time() - start),
              "versions": versions()}
    if first_error:
        record["retried"] = {"attempts": attempt + 1, "first_error": first_error}
    if error:
        record["error"] = error
    nb.metadata["workbook"] = record
    nbformat.write(nb, str(out))
    return record


def longest_cell(paths) -> tuple[str, int, float] | None:
    """(notebook, code cell number from 1, seconds) of the slowest cell that papermill timed in these executed
    notebooks, or None if none was timed (a cell that timed out or failed has no duration: the run's record names
    it)."""
    import json

    best = None
    for path in paths:
        cells = [c for c in json.loads(Path(path).read_text())["cells"] if c["cell_type"] == "code"]
        for k, cell in enumerate(cells, 1):
            seconds = (cell.get("metadata", {}).get("papermill") or {}).get("duration") or 0.0
            if seconds > 0 and (best is None or seconds > best[2]):  # a cell that timed out has no duration
                best = (Path(path).name, k, float(seconds))
    return best


def cells_done(out: Path) -> tuple[int, int] | None:
    """(code cells finished, code cells) of a notebook papermill is writing (it saves after every cell), None while
    its file is missing or half-written."""
    import json

    try:
        cells = [c for c in json.loads(out.read_text())["cells"] if c["cell_type"] == "code"]
    except (OSError, ValueError, KeyError):
        return None
    return sum(c.get("metadata", {}).get("papermill", {}).get("status") == "completed" for c in cells), len(cells)


def run_parallel(paths, outs, args, jobs: int):
    """Execute the notebooks `jobs` at a time, each in its own process (python -m helpers.workbook.notebooks --one)
    with cores // jobs threads, and report as `main` does; every STATUS_EVERY s one line per running notebook: the code cells
    done, the elapsed time and the progress of its current loop. Yields (k, path, record) as each ends."""
    import tempfile

    from helpers.progress import read

    threads = max(1, (os.cpu_count() or 1) // jobs)
    env = {"OMP_NUM_THREADS": str(threads), **os.environ}  # a user's own OMP_NUM_THREADS wins; the mode: execute
    waiting, running, last = list(enumerate(zip(paths, outs), 1)), {}, 0.0
    with tempfile.TemporaryDirectory(prefix="workbook-jobs-") as folder:
        while waiting or running:
            while waiting and len(running) < jobs:
                k, (path, out) = waiting.pop(0)
                progress = Path(folder) / f"{k}.progress"
                cmd = [sys.executable, "-m", "helpers.workbook.notebooks", "--one", str(path), "--out", str(out),
                       "--mode", args.mode, "--timeout", str(args.timeout), "--retries", str(args.retries),
                       "--progress-file", str(progress)]
                running[k] = (path, out, progress, time.time(), subprocess.Popen(cmd, env=env, cwd=ROOT))
            for k in [k for k, job in running.items() if job[4].poll() is not None]:
                path, out, _, start, proc = running.pop(k)
                record = read_record(out) or {"seconds": round(time.time() - start),
                                              "error": {"cell": None, "error": f"its process ended with status {proc.returncode}"}}
                yield k, path, record
            if running and time.time() - last >= STATUS_EVERY:
                last = time.time()
                lines = []
                for path, out, progress, start, _ in running.values():
                    done, loop = cells_done(out), read(progress)
                    lines.append(f"  running {path.stem}: " + (f"{done[0]} of {done[1]} code cells, " if done else "")
                                 + f"{time.time() - start:.0f} s" + (f"; {loop[0]} {loop[1]}/{loop[2]}" if loop else ""))
                print("\n".join(lines), file=sys.stderr, flush=True)
            time.sleep(0.5)


def read_record(out: Path) -> dict | None:
    """The run record a finished notebook carries (None if it has none: its process died before saving it)."""
    import json

    try:
        return json.loads(out.read_text())["metadata"].get("workbook")
    except (OSError, ValueError, KeyError):
        return None


def main(argv=None) -> int:
    p = ArgumentParser(prog="python -m helpers.notebooks", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="substrings of notebook names (default: all)")
    p.add_argument("--mode", choices=MODES, default="quick")
    p.add_argument("--inplace", action="store_true", help="overwrite the notebooks themselves (for full-mode results)")
    p.add_argument("--out", type=Path, default=ROOT / "reports" / "executed", help="folder for the executed copies")
    p.add_argument("--report", action="store_true", help="then build the report (HTML pages, index, PDF) in reports/")
    p.add_argument("--timeout", type=positive_int, default=3600, help="seconds a cell may run before it counts as failed")
    p.add_argument("--retries", type=non_negative_int, default=0,
                   help="runs again of a notebook that timed out or whose kernel died (never of one that raised)")
    p.add_argument("--no-pdf", dest="pdf", action="store_false", help="with --report: no PDF")
    p.add_argument("--jobs", type=positive_int, default=1,
                   help="notebooks run at once, each in its own process with cores / jobs threads (make run: 2)")
    p.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child of --jobs: execute this notebook to --out
    p.add_argument("--progress-file", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        record = execute(args.one, args.out, args.mode, timeout=args.timeout, retries=args.retries, progress=False,
                         progress_file=args.progress_file)
        return 1 if "error" in record else 0
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: expected a folder for the executed copies, but it is a file")
    try:
        paths = notebook_paths(args.names)
    except FileNotFoundError as err:
        p.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)
    outs = [path if args.inplace else args.out / path.name for path in paths]
    failed, start = [], time.time()

    def one_by_one():
        for k, (path, out) in enumerate(zip(paths, outs), 1):
            print(f"[{k}/{len(paths)}] {path.name} ({args.mode}) ...", end=" ", flush=True)
            yield k, path, execute(path, out, args.mode, timeout=args.timeout, retries=args.retries)

    jobs = min(args.jobs, len(paths))
    for k, path, record in (run_parallel(paths, outs, args, jobs) if jobs > 1 else one_by_one()):
        if jobs > 1:
            print(f"[{k}/{len(paths)}] {path.name} ({args.mode}) ...", end=" ", flush=True)
        if "error" in record:
            failed.append(path.name)
            print(f"FAILED in code cell {record['error']['cell']} after {record['seconds']} s: {record['error']['error']}",
                  flush=True)
        else:
            again = f" (ran again after: {record['retried']['first_error']['error']})" if "retried" in record else ""
            print(f"ok in {record['seconds']} s{again}", flush=True)
    print(f"{len(paths) - len(failed)} of {len(paths)} notebooks ran in {time.time() - start:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    slow = longest_cell(outs)
    if slow:
        print(f"the longest cell: {slow[0]} code cell {slow[1]}, {slow[2]:.0f} s")
    if args.report:
        from helpers.workbook.report import build

        result = build(outs, ROOT / "reports", pdf=args.pdf)
        print(f"report: {result['index']}" + (f", {result['pdf']}" if result["pdf"] else "")
              + (f" (offline assets missing: {', '.join(result['missing_assets'])}; run `make report-assets`)"
                 if result["missing_assets"] else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
