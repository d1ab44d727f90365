"""Progress from inside a notebook's cells to the console of `python -m helpers.notebooks` (issue 43: a slow cell is
not taken for a hung one).

The runner sets $WORKBOOK_PROGRESS to a file before it starts a notebook's kernel; the long loops (sampling in
helpers.samplers.generate, training in helpers.training.loop.fit) keep a `Progress` and advance it, which writes one
line ("sampling 500 images, ddim-50: 1200/5000") to that file at most twice a second; the runner shows it under its
bar of cells. Without the variable (a notebook opened in Jupyter, the command-line tools, the tests) nothing is
written and advancing costs a comparison.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

ENV = "WORKBOOK_PROGRESS"


class Progress:
    """`done` of `total` units of the task `label`, written to $WORKBOOK_PROGRESS (if set) as 'label: done/total'."""

    def __init__(self, label: str, total: int, every: float = 0.5, done: int = 0):
        self.path = os.environ.get(ENV)
        self.label, self.total, self.done, self.every, self.last = label, max(int(total), 1), done, every, -math.inf
        self.finished, self.run = False, f"{os.getpid()}-{time.monotonic_ns()}"  # tells two loops of one label apart

    def advance(self, k: int = 1) -> None:
        self.done += k
        if self.path is None:
            return
        now = time.monotonic()
        if now - self.last >= self.every or (self.done >= self.total and not self.finished):
            self.last, self.finished = now, self.done >= self.total  # the end is written once, at once
            write(self.path, self.label, self.done, self.total, self.run)


def write(path: str | Path, label: str, done: int, total: int, run: str = "") -> None:
    """Replace the file's line atomically (the runner may read it at any moment); `run` names the loop, so that a
    reader can tell a new loop of the same label from the last one."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # one per process (several may train)
    try:
        tmp.write_text(f"{label}\t{min(done, total)}\t{total}\t{run}\n")
        os.replace(tmp, path)
    except OSError:
        pass  # progress is a courtesy: a full disk or a removed folder must not fail the cell


def read(path: str | Path) -> tuple[str, int, int, str] | None:
    """The last (label, done, total, run) written, or None if nothing (readable) was."""
    try:
        label, done, total, run = Path(path).read_text().rstrip("\n").split("\t")
        return label, int(done), int(total), run
    except (OSError, ValueError):
        return None
