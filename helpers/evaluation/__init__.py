"""Evaluation: how good a set of samples is, and what it cost.

- `metrics`: features (MNIST-CNN, Inception, our feature networks), FID/KID with intervals, by sample size.
- `stats`: the one interval rule of the workbook (independent sets, percentile bootstrap, paired differences, Wilson).
- `digits`: the MNIST digit classifier (class accuracy, confidence; `python -m helpers.classifier` trains it).
- `features`: our feature networks for colour shapes and video clips (`python -m helpers.feature_net`).
- `fid`: the FID command (`python -m helpers.fid`); `cost`: FLOPs, seconds and memory per network call.
"""
