"""Studies: the measurements behind the notebooks, importable and tested, so that a notebook's cells only call,
plot and say.

- One module per notebook's own analysis: `forward` (01), `sweep` (03), `cfg_ema` (04).
- The benchmarks, each a command (`python -m helpers.studies.NAME`; `bench/NAME.py` runs the same): `sampler_fid`
  (FID against NFE for any grid of samplers, notebooks 05-07 and 09-10), `paired_fid` (paired differences on shared
  noise), `video_fvd` (notebook 12), `loop_overhead`. Their CSVs are in bench/results/.
"""
