"""The library's shape (issue 11): no import cycle between helpers' modules, modules of at most about 350 lines and
functions of at most about 60, and plain sampling that does not import guidance."""
import ast
import subprocess
import sys
from pathlib import Path

from helpers.paths import ROOT

HELPERS = ROOT / "helpers"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 360, 65  # "about 350" and "about 60"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The helpers modules that `path` imports anywhere (top level or inside functions), resolved to modules: for
    `from .pkg import name`, pkg.name if that is a module, else pkg."""
    name, tree = module_name(path), ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("helpers")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("helpers"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found - {name}


MODULES = {module_name(p): p for p in HELPERS.rglob("*.py")}


def test_no_import_cycle():
    graph = {name: imports(path) & set(MODULES) for name, path in MODULES.items()}
    # A package's __init__ may re-export its modules; a module importing its own package would be a cycle.
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_modules_and_functions_are_short():
    long_modules = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long_modules, long_modules
    long_functions = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{name}.{node.name}: {length} lines")
    assert not long_functions, long_functions


def test_plain_sampling_does_not_import_guidance():
    code = "import sys, helpers.sample; print(sorted(m for m in sys.modules if m.startswith('helpers')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "helpers.guidance" not in out and "helpers.tabular" not in out, out
