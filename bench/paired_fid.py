"""The benchmark helpers.studies.paired_fid, kept runnable as `python bench/paired_fid.py` (the same as
`python -m helpers.studies.paired_fid`)."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("helpers.studies.paired_fid", run_name="__main__", alter_sys=True)
