"""The benchmark helpers.studies.sampler_fid, kept runnable as `python bench/sampler_fid.py` (the same as
`python -m helpers.studies.sampler_fid`)."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("helpers.studies.sampler_fid", run_name="__main__", alter_sys=True)
