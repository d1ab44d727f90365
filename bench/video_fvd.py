"""The benchmark helpers.studies.video_fvd, kept runnable as `python bench/video_fvd.py` (the same as
`python -m helpers.studies.video_fvd`)."""
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
runpy.run_module("helpers.studies.video_fvd", run_name="__main__", alter_sys=True)
