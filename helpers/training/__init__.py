"""Training: one resumable loop (`loop.fit`) and the trainers that plug an objective into it.

- `loop`: AdamW, warm-up, EMA, gradient clipping, checkpoints, exact resume, SIGTERM, the held-out stopping rule,
  and a stop at the first non-finite loss.
- `ddpm`: every diffusion model of the workbook (U-Net, DiT, video U-Net; pixels or latents; labels or captions);
  the command `python -m helpers.train`.
- `distill`: progressive distillation (`python -m helpers.distill`).
- `vae`: the latent models' autoencoder (`python -m helpers.autoencoder`); `clip`: the caption encoder, trained
  contrastively against the autoencoder's latents (`python -m helpers.text_encoder`).

The tabular family trains with the same loop from its own package (helpers.tabular); the judges of the evaluation
(digit classifier, feature networks) are trained by their own modules in helpers.evaluation.
"""
