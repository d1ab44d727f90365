"""The benchmark helpers.studies.loop_overhead, kept runnable as `python bench/loop_overhead.py` (the same as
`python -m helpers.studies.loop_overhead`)."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("helpers.studies.loop_overhead", run_name="__main__", alter_sys=True)
