"""The benchmarks' shared plumbing: their CSVs (bench/results/*.csv, one row per configuration, resumable) and the
sample folders they draw into, each stamped with what made it."""
from __future__ import annotations

import json
import os
from pathlib import Path


def read_rows(path: Path) -> dict:
    """A benchmark's CSV (bench/results/*.csv) as {row name: row}; {} if it does not exist yet (the benchmarks are
    resumable: each run adds the rows that are missing)."""
    import csv

    if not Path(path).exists():
        return {}
    with Path(path).open() as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def write_rows(path: Path, rows: dict, fields: list[str]) -> None:
    """Write {row name: row} as a CSV with these columns (missing values empty), replacing the file in one step (a
    reader never sees half a file)."""
    import csv

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows.values())
    os.replace(tmp, path)


def claim_folder(folder: Path, made_by: dict) -> None:
    """Make `folder` the cache of the samples that `made_by` describes (checkpoint and its training step, sampler,
    steps, seed, ...): a benchmark continues the samples already there only if the same configuration made them. A
    folder made by another configuration (another checkpoint at the same row name, a retrained model) or before
    folders recorded their maker is refused with one line, never silently reused."""
    folder = Path(folder)
    stamp = folder / "made_by.json"
    made_by = json.loads(json.dumps(made_by))  # as it reads back (tuples -> lists)
    if stamp.exists():
        before = json.loads(stamp.read_text())
        if before != made_by:
            diff = {k: (before.get(k), made_by.get(k)) for k in sorted(set(before) | set(made_by)) if before.get(k) != made_by.get(k)}
            raise SystemExit(f"error: {folder} holds samples made by another configuration ({', '.join(f'{k}: {a!r}, now {b!r}' for k, (a, b) in diff.items())}); "
                             f"remove it (rm -r {folder}) or pass another --samples folder")
        return
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"error: {folder} holds samples that do not record what made them; remove it (rm -r {folder}) "
                         f"or pass another --samples folder")
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(made_by, indent=1) + "\n")
