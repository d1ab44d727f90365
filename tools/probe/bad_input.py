"""Issue 45's probe: the command-line and API cases of tests/test_bad_input.py, run against a version of the library
and classed as a user meets them, so that a version before the safety work and this one can be counted alike.

    python tools/probe/bad_input.py                               # this checkout
    git worktree add --detach ../before 9e8c5ed                   # the library before issue 45
    python tools/probe/bad_input.py --tree ../before --json before.json

The cases come from this checkout's test file; the commands and functions under test, and the code that makes the
cases' input files (a tiny checkpoint and its edited copies), come from --tree, imported in a worker process. Names
that a version calls otherwise are looked up under their earlier names (helpers.evaluation.stats was helpers.stats).

Command-line classes (the issue's): GOOD, refused with a non-zero exit and one line that names what was wrong (the
case's expected text, or an option or value of its command line); TRACEBACK, an exception escaped or a traceback was
printed; SILENT, exit 0 (the bad input was taken); OPAQUE, refused but in several lines or without naming what was
wrong; HANG, no answer within --timeout seconds. API classes: GOOD, the expected exception with the expected text;
OPAQUE, another exception or message; SILENT, no exception; N/A, the function does not exist in that version.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.abc
import importlib.util
import io
import json
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]
TESTS = HERE / "tests" / "test_bad_input.py"
EARLIER = {  # a module's name now -> its name before the library was grouped by role (fb713b4)
    "helpers.evaluation.metrics": "helpers.metrics", "helpers.evaluation.stats": "helpers.stats",
    "helpers.evaluation.fid": "helpers.fid", "helpers.evaluation.features": "helpers.feature_net",
    "helpers.evaluation.digits": "helpers.classifier", "helpers.training.distill": "helpers.distill",
    "helpers.training.ddpm": "helpers.train", "helpers.training.vae": "helpers.autoencoder",
    "helpers.training.clip": "helpers.text_encoder", "helpers.samplers.guidance": "helpers.guidance",
    "helpers.samplers.cn2m": "helpers.calibrate", "helpers.samplers.lsq_ms": "helpers.multistep_fit",
    "helpers.samplers.text_to_image": "helpers.text_to_image", "helpers.datasets.images": "helpers.data",
    "helpers.datasets.captions": "helpers.captions", "helpers.studies.sweep": "helpers.sweep",
    "helpers.workbook.notebooks": "helpers.notebooks", "helpers.workbook.report": "helpers.report",
    "helpers.studies.sampler_fid": "bench/sampler_fid.py", "helpers.studies.paired_fid": "bench/paired_fid.py",
    "helpers.studies.video_fvd": "bench/video_fvd.py",
}


class NotInVersion(Exception):
    """The case calls a name that this version of the library does not have."""


class Missing:
    """Stands for a name that could not be imported; using it (calling) raises NotInVersion."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return Missing(f"{self._name}.{attr}")

    def __call__(self, *args, **kwargs):
        raise NotInVersion(self._name)


class Earlier(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a module that this version lacks under its earlier name (or an empty package for a new package)."""

    def __init__(self, tree: Path):
        self.tree = tree

    def find_spec(self, fullname, path=None, target=None):  # last on sys.meta_path: asked only when no other finder knows it
        if fullname not in EARLIER and not any(k.startswith(fullname + ".") for k in EARLIER):
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=fullname not in EARLIER)

    def create_module(self, spec):
        earlier = EARLIER.get(spec.name)
        if earlier is None:
            return None  # an empty package
        if earlier.endswith(".py"):
            file_spec = importlib.util.spec_from_file_location(spec.name, self.tree / earlier)
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return module
        return importlib.import_module(earlier)

    def exec_module(self, module):
        if EARLIER.get(module.__name__) is None:
            module.__path__ = []


def one_name_imports(source: str) -> str:
    """The module's source with each top-level `from M import a, b` turned into one guarded import per name, so that
    a name missing in this version becomes a Missing instead of failing the whole module."""
    tree = ast.parse(source)
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("helpers", "tests")):
            for alias in node.names:
                bound = alias.asname or alias.name
                body += ast.parse(f"try:\n    from {node.module} import {alias.name} as {bound}\n"
                                  f"except Exception:\n    {bound} = _earlier('{node.module}', '{alias.name}')\n").body
        else:
            body.append(node)
    tree.body = body
    return ast.unparse(tree)


def earlier(tree: Path):
    """The fallback of a guarded import: `from M import name` as the module's earlier name, else a Missing."""

    def find(module: str, name: str):
        key = f"{module}.{name}"
        if key not in EARLIER:
            return Missing(key)
        try:
            return Earlier(tree).create_module(importlib.util.spec_from_loader(key, None))
        except Exception:
            return Missing(key)

    return find


class Timeout(Exception):
    pass


def call(fn, seconds: int):
    """fn() with stdout and stderr captured: (outcome, exit code or exception, stderr)."""
    err, out = io.StringIO(), io.StringIO()

    def alarm(*_):
        raise Timeout

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                result = ("exit", fn())
            except SystemExit as exit_:
                result = ("exit", exit_.code)
    except Timeout:
        result = ("hang", None)
    except BaseException as exc:  # what a user would see as a traceback
        result = ("raised", exc)
    finally:
        signal.alarm(0)
    return result[0], result[1], err.getvalue()


def cli_class(outcome, value, err: str, argv: list[str], fragment: str) -> str:
    if outcome == "hang":
        return "HANG"
    if outcome == "raised" and isinstance(value, NotInVersion):
        return "N/A"
    if outcome == "raised" or "Traceback (most recent call last)" in err:
        return "TRACEBACK"
    if value in (0, None):
        return "SILENT"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    named = fragment in err or any(tok in err for tok in argv if len(tok) >= 3 and not tok.startswith("/"))
    return "GOOD" if len(lines) == 1 and named else "OPAQUE"


def api_class(outcome, value, expected: type, fragment: str) -> str:
    if outcome == "hang":
        return "HANG"
    if outcome == "exit":
        return "SILENT"
    if isinstance(value, NotInVersion):
        return "N/A"
    return "GOOD" if isinstance(value, expected) and fragment in str(value) else "OPAQUE"


def worker(root: Path, tree: Path, seconds: int) -> dict:
    """Runs in --tree: the test module's tables under this version's names, its input files made in `root` by this
    version's own code, every case classed."""
    sys.meta_path.append(Earlier(tree))
    space = {"__name__": "probed", "_Missing": Missing, "_earlier": earlier(tree)}
    exec(compile(one_name_imports(TESTS.read_text()), str(TESTS), "exec"), space)
    if not hasattr(space["ckpt"], "CALIBRATION"):  # a file name that a version before fb713b4 kept elsewhere
        space["ckpt"].CALIBRATION = "calibration.json"
    with contextlib.redirect_stdout(sys.stderr):
        files = space["make_files"](root)
    rows = []
    for case in space["CLI"]:
        name, tool, _, _, fragment = case
        argv, fragment = space["cli_argv"](case, files), fragment.format(root=files)
        main = space["MAINS"].get(tool.rstrip("@!"))
        outcome, value, err = call(lambda: main(list(argv)), seconds)
        rows.append({"kind": "cli", "case": name, "class": cli_class(outcome, value, err, argv, fragment),
                     "said": (err.strip().splitlines() or [""])[-1][:200]})
    for name, fn, expected, fragment in space["API"]:
        outcome, value, _ = call(fn, seconds)
        rows.append({"kind": "api", "case": name, "class": api_class(outcome, value, expected, fragment),
                     "said": f"{type(value).__name__}: {value}"[:200] if outcome == "raised" else outcome})
    return {"tree": str(tree), "rows": rows}


def counts(rows: list[dict]) -> dict:
    return {kind: dict(Counter(r["class"] for r in rows if r["kind"] == kind)) for kind in ("cli", "api")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python tools/probe/bad_input.py", description=__doc__.split("\n")[0])
    p.add_argument("--tree", type=Path, default=HERE, help="the checkout whose library is probed")
    p.add_argument("--json", type=Path, help="write every case's class and last line here")
    p.add_argument("--timeout", type=int, default=120, help="seconds before a case counts as HANG")
    p.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(args.tree))
        print(json.dumps(worker(args.worker, args.tree.resolve(), args.timeout)))
        return 0
    if not (args.tree / "helpers").is_dir():
        print(f"error: --tree {args.tree} holds no helpers/ package (expected a checkout of this project)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--tree", str(args.tree.resolve()),
                              "--worker", tmp, "--timeout", str(args.timeout)], cwd=args.tree, capture_output=True,
                             text=True)
    if run.returncode:
        print(f"error: the worker in {args.tree} failed: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return 1
    result = json.loads(run.stdout.strip().splitlines()[-1])
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    for kind, c in counts(result["rows"]).items():
        print(f"{kind}: {sum(c.values())} cases: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
