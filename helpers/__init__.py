"""The workbook's library, by role (README.md, "The library", has the map with one line per module).

At the top, the core and the interface every part shares: `schedules`, `diffusion` (the forward and reverse steps),
`objectives` (the training losses), `checks` (pure value checks), `paths`, `progress` (a long loop's progress, for the
notebook runner's console), `cli` (command-line glue), `checkpoints`
(weights, model cards, snapshots, default sampling), `denoisers` (one interface for eps-, v- and x0-networks, ours
or diffusers'), and the two commands most users type, `sample` and `evaluate`. Then the packages, each of which
imports only from those below it: `models` (networks), `datasets`, `samplers`, `evaluation`, `training`, `tabular`
(the tabular family), `studies` (what the notebooks measure) and `workbook` (running notebooks, results, report).

The short command names of earlier versions keep working: `python -m helpers.train` runs helpers.training.ddpm, and
so on for every name in COMMANDS (a finder on sys.meta_path maps them; `import helpers.train` gives the module itself).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

COMMANDS = {  # python -m helpers.NAME -> the module that holds the command
    "train": "training.ddpm", "distill": "training.distill", "autoencoder": "training.vae",
    "text_encoder": "training.clip", "classifier": "evaluation.digits", "feature_net": "evaluation.features",
    "fid": "evaluation.fid", "guidance": "samplers.guidance", "calibrate": "samplers.cn2m",
    "multistep_fit": "samplers.lsq_ms", "text_to_image": "samplers.text_to_image", "sweep": "studies.sweep",
    "notebooks": "workbook.notebooks", "report": "workbook.report",
}


class _CommandLoader(importlib.abc.Loader):
    """`python -m helpers.NAME` (runpy asks for the code) runs the target as __main__; an import returns it."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:
        pass

    def get_code(self, fullname: str):
        return compile(f"import runpy\nrunpy.run_module({self.target!r}, run_name='__main__', alter_sys=True)\n",
                       f"<{fullname} -> {self.target}>", "exec")

    def is_package(self, fullname: str) -> bool:
        return False


class _CommandFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        short = fullname.partition("helpers.")[2] if fullname.startswith("helpers.") else None
        if short not in COMMANDS:
            return None
        return importlib.util.spec_from_loader(fullname, _CommandLoader(f"helpers.{COMMANDS[short]}"))


if not any(isinstance(f, _CommandFinder) for f in sys.meta_path):
    sys.meta_path.append(_CommandFinder())
