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
    assert "helpers.samplers.guidance" not in out and "helpers.tabular" not in out, out


# The house (issue 38): a few modules at the top, packages by role, each importing only from the floors below it.
FLOORS = [  # from the bottom; a module may import from its own floor and those below
    {"helpers.schedules", "helpers.checks", "helpers.paths", "helpers.progress"},
    {"helpers.diffusion", "helpers.objectives"},
    {"helpers.models"},
    {"helpers.checkpoints"},
    {"helpers.denoisers", "helpers.cli"},
    {"helpers.datasets"},
    {"helpers.samplers", "helpers.evaluation"},
    {"helpers.training", "helpers.tabular"},
    {"helpers.sample", "helpers.evaluate"},
    {"helpers.workbook"},  # plumbing the studies use: plots, saved results, running notebooks
    {"helpers.studies"},
]
CORE = FLOORS[0] | FLOORS[1]


def floor_of(module: str) -> int:
    for i, floor in enumerate(FLOORS):
        if any(module == f or module.startswith(f + ".") for f in floor):
            return i
    raise AssertionError(f"{module} is on no floor of FLOORS: add it where it belongs")


def test_a_few_modules_at_the_top():
    top = sorted(p.stem for p in HELPERS.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 12, top
    packages = sorted(p.name for p in HELPERS.iterdir() if (p / "__init__.py").exists())
    assert packages == ["datasets", "evaluation", "models", "samplers", "studies", "tabular", "training", "workbook"]
    for package in packages:  # each says what lives there
        doc = ast.get_docstring(ast.parse((HELPERS / package / "__init__.py").read_text()))
        assert doc and len(doc.split()) >= 15, package


def test_every_module_imports_only_downwards():
    wrong = []
    for name, path in MODULES.items():
        if name == "helpers":
            continue
        for target in imports(path) & set(MODULES):
            if target != "helpers" and floor_of(target) > floor_of(name):
                wrong.append(f"{name} (floor {floor_of(name)}) imports {target} (floor {floor_of(target)})")
    assert not wrong, wrong


def test_the_maths_imports_only_the_core():
    for name in CORE:
        assert imports(MODULES[name]) <= CORE, (name, imports(MODULES[name]) - CORE)


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped line) of the lines that carry code: no blanks, comments, imports or lone brackets."""
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if len(s) > 3 and not s.startswith(("#", "import ", "from ", '"""')):
            out.append((i, s))
    return out


def test_no_block_of_six_lines_repeated_between_modules():
    seen, repeats = {}, []
    for name, path in MODULES.items():
        lines = code_lines(path)
        for k in range(len(lines) - 5):
            block = tuple(s for _, s in lines[k:k + 6])
            first = seen.setdefault(block, (name, lines[k][0]))
            if first[0] != name:
                repeats.append(f"{first[0]}:{first[1]} ~ {name}:{lines[k][0]}")
    assert not repeats, repeats


def test_old_command_names_run_their_modules():
    """`python -m helpers.train` (the README's and the cards' commands) runs helpers.training.ddpm, and so on."""
    from helpers import COMMANDS

    for short, target in COMMANDS.items():
        assert f"helpers.{target}" in MODULES, target
    out = subprocess.run([sys.executable, "-m", "helpers.distill", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m helpers.distill"), out.stderr
    import helpers.fid
    import helpers.evaluation.fid

    assert helpers.fid is helpers.evaluation.fid  # an import gives the module itself, not a copy
