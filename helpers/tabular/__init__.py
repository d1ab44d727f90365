"""A tabular DDPM in the spirit of TabDDPM (Kotelnikov et al. 2023): Gaussian diffusion (Ho et al. 2020) on the
quantile-normalised numerical columns and multinomial diffusion (Hoogeboom et al. 2021) on the categorical ones,
one MLP denoiser for both, trained and sampled like the image models.

    python -m helpers.tabular train --data diamonds --out checkpoints/tabddpm-diamonds --steps 14000 --seed 0
    python -m helpers.tabular train --out checkpoints/tabddpm-diamonds --steps 20000 --resume   # continue a run
    python -m helpers.tabular sample --checkpoint checkpoints/tabddpm-diamonds --num 1000 --seed 0 --out rows.csv
    python -m helpers.tabular evaluate --checkpoint checkpoints/tabddpm-diamonds --seed 0      # the metrics table

Notation. A row is x = [x_num | x_cat]: x_num the D numerical columns after the transform, x_cat one one-hot block
of K_j entries per categorical column j. Both halves diffuse on the same Schedule (one beta_t per step):
    Gaussian     q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)                  Ho et al. eq. (4)
    multinomial  q(x_t | x_{t-1}) = Cat((1 - beta_t) x_{t-1} + beta_t / K)                       Hoogeboom et al. sec. 4
                 q(x_t | x_0) = Cat(alpha_bar_t x_0 + (1 - alpha_bar_t) / K)
                 q(x_{t-1} | x_t, x_0) = Cat(theta_post / sum_k theta_post), with
                 theta_post = [alpha_t x_t + (1 - alpha_t) / K] * [alpha_bar_{t-1} x_0 + (1 - alpha_bar_{t-1}) / K]
The network sees [x_num_t | one-hot x_cat_t] and t and returns [eps_hat | one logit vector per column]; the logits'
softmax is x0_hat, and p(x_{t-1} | x_t) = q(x_{t-1} | x_t, x0_hat) (the "x0 parametrisation" of both papers).

Why multinomial rather than one-hot Gaussian diffusion for the categories: a categorical column stays a categorical
variable at every t (x_t is always a valid category, so the network never sees off-simplex inputs and no argmax has to
round a continuous vector at the end); its loss is the exact KL term of the variational bound; and it is what TabDDPM
uses. Its forward process is closed under composition (q(x_t | x_s) has the same form with alpha_bar_t / alpha_bar_s),
so skipping steps when sampling is as exact as for the Gaussian half.

Timesteps are 0-based as in helpers.schedules: t = 0 .. T-1, alpha_bar_{t-1} = 1 at t = 0.

The package: data.py (tables, splits, the column transform), multinomial.py (the diffusion of a row, its loss and
sampler), train.py (configuration, the objective of the shared loop helpers.training.loop, checkpoints, drawing rows),
metrics.py (fidelity, utility, privacy and the baselines), cli.py (the command line). The network is
helpers.models.mlp.
"""
# The package re-exports the names of its modules (tb.X in notebook 08 and the tests).
# ruff: noqa: F401
from helpers.models.mlp import MLPConfig, MLPDenoiser
from helpers.tabular.cli import main, parse_args
from helpers.tabular.data import (BOUNDS, DATASETS, DIAMONDS_LEVELS, TRANSFORMS, Z_MAX, Table, TabularTransform, decimals_of,
                   load_table, read_frame, split_rows)
from helpers.tabular.multinomial import (generate_rows, gumbel_argmax, initial_rows, log_mix_uniform, log_onehot, multinomial_kl,
                          q_cat_log_probs, q_cat_posterior_log_probs, rand_rows, sample_tabddpm, split_blocks,
                          tabular_loss, to_codes)
from helpers.tabular.train import (TRANSFORM_FILE, TabularData, TabularTrainConfig, checkpoint_data, describe, global_batch,
                    load_checkpoint, prepare_data, sample_frame, tabular_objective, train)
