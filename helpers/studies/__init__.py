"""Studies: the measurements behind the notebooks, importable and tested, so that a notebook's cells only call,
plot and say.

- One module per notebook's own analysis: `forward` (01), `sweep` (03), `cfg_ema` (04), `ddpm_ddim` (05),
  `distillation` (06), `fast_sampler` (07), `image_size` (09), `latent_dit` (10), `adherence` (11), `video` (12);
  where the runs and their analysis would pass about 350 lines, the analysis is a second module (`sweep_analysis`,
  `cfg_ema_analysis`). tests/test_study_analysis.py checks them against the tables the notebooks saved.
- The benchmarks, each a command (`python -m helpers.studies.NAME`; `bench/NAME.py` runs the same): `sampler_fid`
  (FID against NFE for any grid of samplers, notebooks 05-07 and 09-10), `paired_fid` (paired differences on shared
  noise), `video_fvd` (notebook 12), `loop_overhead`. Their CSVs are in bench/results/.
"""
