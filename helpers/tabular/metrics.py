"""Judging synthetic tables, and the baselines a tabular DDPM is judged against.

Fidelity (the definitions of SDMetrics' quality report, computed here with scipy and pandas: SDMetrics 0.32 and the
`copulas` package require pandas < 3 and would downgrade the workbook's pandas; tests/test_tabular.py compares these
functions with SDMetrics' own values on a fixed table):
    KSComplement        1 - KS statistic (scipy.stats.ks_2samp) of a numerical column
    TVComplement        1 - (1/2) sum_k |p_real(k) - p_syn(k)| of a categorical column
    column shapes       the mean of the above over all columns
    CorrelationSimilarity   1 - |r_real - r_syn| / 2 for two numerical columns (Pearson's r)
    ContingencySimilarity   1 - TV distance of the joint frequencies of any other pair (numbers in 10 equal-width bins
                            of the real column, the outer edges open)
    pair trends         the mean of the above over all pairs
Utility ("machine-learning efficiency", Kotelnikov et al. 2023 sec. 4): a gradient-boosted model fitted on synthetic
rows and scored on held-out real rows, against the same model fitted on as many real training rows.
Privacy: the distance of each synthetic row to its closest real training row (DCR), in the model's transformed space
(quantile-normal numbers, one-hot categories), against the same for held-out real rows; and the share of synthetic
rows closer to the training rows than to as many held-out rows (about 50% when nothing is copied).
Baselines: each column drawn independently from its marginal; a Gaussian copula; SMOTE-style interpolation.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp, norm


# -------------------------------------------------------------------------------------------------------- fidelity
def ks_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """SDMetrics' KSComplement: 1 - the two-sample Kolmogorov-Smirnov statistic."""
    return 1.0 - ks_2samp(real.dropna().to_numpy(float), synthetic.dropna().to_numpy(float)).statistic


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """SDMetrics' TVComplement: 1 - the total variation distance of the category frequencies."""
    p = real.astype(str).value_counts(normalize=True)
    q = synthetic.astype(str).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float((p - q).abs().sum())


def correlation_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str) -> float:
    """SDMetrics' CorrelationSimilarity (Pearson): 1 - |r_real - r_syn| / 2."""
    r_real = np.corrcoef(real[a].to_numpy(float), real[b].to_numpy(float))[0, 1]
    r_syn = np.corrcoef(synthetic[a].to_numpy(float), synthetic[b].to_numpy(float))[0, 1]
    return 1.0 - abs(r_real - r_syn) / 2


def discretize(real: pd.Series, synthetic: pd.Series, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Bin both columns by `bins` equal-width bins of the real one, outer edges open (SDMetrics' discretize_column)."""
    edges = np.histogram_bin_edges(real.dropna().to_numpy(float), bins=bins)
    edges[0], edges[-1] = -np.inf, np.inf
    return np.digitize(real.to_numpy(float), edges), np.digitize(synthetic.to_numpy(float), edges)


def contingency_similarity(real: pd.DataFrame, synthetic: pd.DataFrame, a: str, b: str, numerical=()) -> float:
    """SDMetrics' ContingencySimilarity: 1 - the TV distance of the joint frequencies of columns a and b, numerical
    columns discretised first."""
    r, s = {}, {}
    for c in (a, b):
        if c in numerical:
            r[c], s[c] = discretize(real[c], synthetic[c])
        else:
            r[c], s[c] = real[c].astype(str).to_numpy(), synthetic[c].astype(str).to_numpy()
    p = pd.DataFrame(r).value_counts(normalize=True)
    q = pd.DataFrame(s).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return 1.0 - 0.5 * float((p - q).abs().sum())


def column_scores(real: pd.DataFrame, synthetic: pd.DataFrame, numerical, categorical) -> pd.DataFrame:
    """One row per column: its metric (KSComplement or TVComplement) and score."""
    rows = [(c, "KSComplement", ks_complement(real[c], synthetic[c])) for c in numerical]
    rows += [(c, "TVComplement", tv_complement(real[c], synthetic[c])) for c in categorical]
    return pd.DataFrame(rows, columns=["column", "metric", "score"])


def pair_scores(real: pd.DataFrame, synthetic: pd.DataFrame, numerical, categorical) -> pd.DataFrame:
    """One row per pair of columns: CorrelationSimilarity for two numerical columns (with both Pearson r's),
    ContingencySimilarity otherwise."""
    rows = []
    for a, b in itertools.combinations([*numerical, *categorical], 2):
        if a in numerical and b in numerical:
            r_real, r_syn = real[a].corr(real[b]), synthetic[a].corr(synthetic[b])
            rows.append((a, b, "CorrelationSimilarity", 1.0 - abs(r_real - r_syn) / 2, r_real, r_syn))
        else:
            rows.append((a, b, "ContingencySimilarity", contingency_similarity(real, synthetic, a, b, numerical),
                         np.nan, np.nan))
    return pd.DataFrame(rows, columns=["a", "b", "metric", "score", "r_real", "r_syn"])


def fidelity(real: pd.DataFrame, synthetic: pd.DataFrame, numerical, categorical) -> dict:
    """The fidelity summary: column shapes and pair trends (SDMetrics' quality report), the mean KS statistic of
    the numerical columns, the mean TV distance of the categorical ones, and the mean |r_real - r_syn| of the
    numerical pairs for Pearson's r (sensitive to a few extreme rows) and Spearman's rank correlation."""
    cols = column_scores(real, synthetic, numerical, categorical)
    pairs = pair_scores(real, synthetic, numerical, categorical)
    corr = pairs[pairs.metric == "CorrelationSimilarity"]
    return {
        "column_shapes": float(cols.score.mean()),
        "pair_trends": float(pairs.score.mean()),
        "ks": float(1 - cols[cols.metric == "KSComplement"].score.mean()),
        "tv": float(1 - cols[cols.metric == "TVComplement"].score.mean()),
        "corr_diff": float((corr.r_real - corr.r_syn).abs().mean()),
        "rank_corr_diff": rank_corr_diff(real, synthetic, numerical),
    }


def rank_corr_diff(real: pd.DataFrame, synthetic: pd.DataFrame, numerical) -> float:
    """The mean |rho_real - rho_syn| of Spearman's rank correlation over the pairs of numerical columns."""
    if len(numerical) < 2:
        return float("nan")
    upper = np.triu_indices(len(numerical), 1)
    diff = real[numerical].corr(method="spearman").to_numpy() - synthetic[numerical].corr(method="spearman").to_numpy()
    return float(np.abs(diff[upper]).mean())


# ---------------------------------------------------------------------------------------------------------- utility
def features(frame: pd.DataFrame, target: str, categorical, categories: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """X with the categorical columns as pandas categoricals of fixed categories (so synthetic and real frames encode
    alike), and y."""
    X = frame.drop(columns=[target]).copy()
    for c in categorical:
        if c in X.columns:
            X[c] = pd.Categorical(X[c].astype(str), categories=[str(v) for v in categories[c]])
    y = frame[target]
    y = y.astype(str).to_numpy() if target in categorical else y.to_numpy(float)
    return X, y


def ml_score(train: pd.DataFrame, test: pd.DataFrame, target: str, categorical, categories: dict,
             seed: int = 0) -> float:
    """Fit a histogram gradient-boosting model (sklearn, native categorical support) of `target` on `train` and score
    it on `test`: R^2 for a numerical target, macro-F1 for a categorical one."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import f1_score, r2_score

    X_train, y_train = features(train, target, categorical, categories)
    X_test, y_test = features(test, target, categorical, categories)
    if target in categorical:
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
        return float(f1_score(y_test, model.fit(X_train, y_train).predict(X_test), average="macro"))
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
    return float(r2_score(y_test, model.fit(X_train, y_train).predict(X_test)))


# ---------------------------------------------------------------------------------------------------------- privacy
def encode_for_distance(transform, frame: pd.DataFrame) -> np.ndarray:
    """Rows in the model's space: quantile-normal (or standardised) numbers, then one-hot categories; [N x width]."""
    x_num, x_cat = transform.encode(frame)
    onehots = [np.eye(K, dtype=np.float32)[x_cat[:, j].numpy()] for j, K in enumerate(transform.cat_sizes)]
    return np.concatenate([x_num.numpy(), *onehots], axis=1)


def closest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row (sklearn NearestNeighbors), [N]."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(queries)[0][:, 0]


def privacy(transform, train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0) -> dict:
    """DCR of the synthetic rows to the training rows (median, 5th percentile, share of exact copies), and the share
    of synthetic rows strictly closer to a training row than to a held-out row, with as many training rows as
    held-out ones (about 0.5 for a generator that does not copy; ties count one half)."""
    tr, ho, sy = (encode_for_distance(transform, f) for f in (train, holdout, synthetic))
    dcr = closest_distances(tr, sy)
    sub = tr[np.random.default_rng(seed).choice(len(tr), size=len(ho), replace=False)]
    d_train, d_hold = closest_distances(sub, sy), closest_distances(ho, sy)
    closer = np.mean((d_train < d_hold) + 0.5 * (d_train == d_hold))
    return {"dcr_median": float(np.median(dcr)), "dcr_p5": float(np.percentile(dcr, 5)),
            "copies": float(np.mean(dcr < 1e-6)), "closer_to_train": float(closer), "dcr": dcr}


# -------------------------------------------------------------------------------------------------------- baselines
def sample_independent(train: pd.DataFrame, num: int, seed: int = 0) -> pd.DataFrame:
    """Each column drawn independently, with replacement, from its own training values (the product of marginals)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: train[c].to_numpy()[rng.integers(0, len(train), num)] for c in train.columns}).astype(
        train.dtypes.to_dict())


def copula_scores(transform, frame: pd.DataFrame, rng) -> tuple[np.ndarray, list[np.ndarray]]:
    """Normal scores of every column: the transform's quantile-normal numbers, and for a categorical column a uniform
    draw inside its category's interval [F(k-1), F(k)) of the cumulative frequencies, through Phi^-1 (the uniform
    encoding of SDV's GaussianCopula). Returns [N x columns] and the cumulative frequencies of each category column."""
    x_num, x_cat = transform.encode(frame)
    z, cums = [x_num.double().numpy()], []
    for j, K in enumerate(transform.cat_sizes):
        codes = x_cat[:, j].numpy()
        cum = np.concatenate([[0.0], np.cumsum(np.bincount(codes, minlength=K) / len(codes))])
        u = cum[codes] + rng.random(len(codes)) * (cum[codes + 1] - cum[codes])
        z.append(norm.ppf(np.clip(u, 1e-7, 1 - 1e-7))[:, None])
        cums.append(cum)
    return np.concatenate(z, axis=1), cums


def sample_gaussian_copula(transform, train: pd.DataFrame, num: int, seed: int = 0) -> pd.DataFrame:
    """A Gaussian copula by hand: the correlation matrix of the training rows' normal scores (copula_scores), draws
    z ~ N(0, R), numbers through the inverse quantile transform and categories through their intervals of Phi(z)."""
    rng = np.random.default_rng(seed)
    z, cums = copula_scores(transform, train, rng)
    R = np.corrcoef(z, rowvar=False)
    draws = rng.multivariate_normal(np.zeros(len(R)), R, size=num, method="cholesky")
    D = len(transform.numerical)
    codes = [np.searchsorted(cum, norm.cdf(draws[:, D + j]), side="right").clip(1, len(cum) - 1) - 1
             for j, cum in enumerate(cums)]
    x_cat = np.stack(codes, 1) if codes else np.zeros((num, 0), np.int64)
    return transform.decode(torch.from_numpy(draws[:, :D]), torch.from_numpy(x_cat))


def sample_smote(transform, train: pd.DataFrame, num: int, seed: int = 0, k: int = 5) -> pd.DataFrame:
    """SMOTE-style interpolation (Chawla et al. 2002) as TabDDPM's baseline: a random training row, one of its k
    nearest neighbours (in the transformed space), a point lambda ~ U(0, 1) of the way between their numbers (in the
    transformed space), and the categories of whichever of the two is nearer (the row itself if lambda < 1/2)."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(seed)
    x_num, x_cat = transform.encode(train)
    space = encode_for_distance(transform, train)
    base = rng.integers(0, len(train), num)
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(space).kneighbors(space[base], return_distance=False)[:, 1:]
    other = neighbours[np.arange(num), rng.integers(0, k, num)]
    lam = torch.from_numpy(rng.random(num)).float()[:, None]
    new_num = x_num[base] + lam * (x_num[other] - x_num[base])
    new_cat = torch.where(lam < 0.5, x_cat[base], x_cat[other])
    return transform.decode(new_num, new_cat)


# ------------------------------------------------------------------------------------------------------- comparison
TARGETS = {"diamonds": [("price", "R2"), ("cut", "macro-F1")]}
REFERENCE, DDPM = "real (held-out)", "TabDDPM"


def utility_targets(spec: str, transform) -> list[tuple[str, str]]:
    """The utility tasks of a data set: diamonds' price (R^2) and cut (macro-F1); otherwise the last column."""
    if spec in TARGETS:
        return TARGETS[spec]
    last = transform.columns[-1]
    return [(last, "macro-F1" if last in transform.categorical else "R2")]


def evaluate_generators(synthetic: dict, train: pd.DataFrame, holdout: pd.DataFrame, transform, targets,
                        seed: int = 0, dcr_out: dict | None = None) -> pd.DataFrame:
    """One row per generator (name -> synthetic frame, each as large as `holdout`) plus the reference row
    "real (held-out)": fidelity against the training rows, utility on the held-out rows (and its ratio to the same
    model fitted on as many real training rows), and privacy (DCR to the training rows). `dcr_out`, if given,
    receives each row's array of distances."""
    num, cat = transform.numerical, transform.categorical
    real_subset = train.sample(n=len(holdout), random_state=seed)
    rows = {}
    for name, frame in {REFERENCE: holdout, **synthetic}.items():
        row = fidelity(train, frame, num, cat)
        for target, metric in targets:
            row[f"{target} {metric}"] = ml_score(real_subset if name == REFERENCE else frame, holdout, target, cat,
                                                 transform.categories, seed)
        if name == REFERENCE:
            dcr = closest_distances(encode_for_distance(transform, train), encode_for_distance(transform, holdout))
            priv = {"dcr_median": float(np.median(dcr)), "dcr_p5": float(np.percentile(dcr, 5)),
                    "copies": float(np.mean(dcr < 1e-6)), "closer_to_train": np.nan, "dcr": dcr}
        else:
            priv = privacy(transform, train, holdout, frame, seed)
        if dcr_out is not None:
            dcr_out[name] = priv["dcr"]
        row.update({k: v for k, v in priv.items() if k != "dcr"})
        rows[name] = row
    table = pd.DataFrame(rows).T
    for target, metric in targets:
        table[f"{target} ratio"] = table[f"{target} {metric}"] / table.loc[REFERENCE, f"{target} {metric}"]
    return table.astype(float)


def baselines(transform, train: pd.DataFrame, num: int, seed: int = 0) -> dict:
    """name -> synthetic frame of the three baselines."""
    return {"independent marginals": sample_independent(train, num, seed),
            "Gaussian copula": sample_gaussian_copula(transform, train, num, seed),
            "SMOTE": sample_smote(transform, train, num, seed)}


def generate_all(denoiser, transform, data, num: int | None = None, seed: int = 0, steps: int | None = None,
                 batch_size: int = 2048):
    """The held-out rows (`num` of them, drawn by `seed`; all by default) and as many synthetic rows from the DDPM
    and from each baseline: (holdout, {name: frame}, seconds the DDPM took)."""
    from helpers.tabular.train import sample_frame

    num = num or len(data.test)
    holdout = data.test.sample(n=num, random_state=seed).reset_index(drop=True) if num < len(data.test) else data.test
    start = time.time()
    synthetic = {DDPM: sample_frame(denoiser, transform, num, seed, steps, batch_size)}
    seconds = time.time() - start
    synthetic.update(baselines(transform, data.train, num, seed))
    return holdout, synthetic, seconds


def evaluate_checkpoint(folder, num: int | None = None, seed: int = 0, steps: int | None = None,
                        batch_size: int = 2048) -> dict:
    """The comparison table of a tabular checkpoint against the baselines (see generate_all and
    evaluate_generators), as records and text, with the settings and timings."""
    from helpers.tabular.train import checkpoint_data, load_checkpoint

    denoiser, transform, card = load_checkpoint(folder)
    data = checkpoint_data(card)
    holdout, synthetic, seconds = generate_all(denoiser, transform, data, num, seed, steps, batch_size)
    targets = utility_targets(card["data"]["spec"], transform)
    table = evaluate_generators(synthetic, data.train, holdout, transform, targets, seed)
    records = table.reset_index(names="generator").astype(object)
    return {"table": records.where(records.notna(), None).to_dict(orient="records"),  # NaN -> null in JSON
            "text": table.round(4).to_string(), "rows": len(holdout), "seed": seed,
            "steps": steps or card["schedule"]["T"], "sampling_seconds": round(seconds, 1),
            "checkpoint_step": card["step"]}


def summary(res, card: dict, n_rows: int, sample_steps: int, sweep) -> list[str]:
    """Notebook 08's summary lines from its results table `res` (one row per generator), the model card, and the
    pair trends by number of sampling steps (`sweep`, helpers.studies.tabular.steps_sweep's table)."""
    out = []
    ddpm, ref = res.loc[DDPM], res.loc[REFERENCE]
    base = res.drop(index=[REFERENCE, DDPM])
    best_pairs = res.drop(index=REFERENCE)["pair_trends"].idxmax()
    out.append(f"TabDDPM, {card['step']:,} training steps ({card['wall_time_s'] / 60:.1f} min of one core), "
               f"{n_rows:,} rows sampled with {sample_steps} steps:")
    out.append(f"* utility ratio (synthetic-trained / real-trained, scored on held-out real rows): "
               f"price R2 {ddpm['price R2']:.3f} / {ref['price R2']:.3f} = {ddpm['price ratio']:.3f}; "
               f"cut macro-F1 {ddpm['cut macro-F1']:.3f} / {ref['cut macro-F1']:.3f} = {ddpm['cut ratio']:.3f}")
    for name, row in base.iterrows():
        out.append(f"    {name}: price {row['price ratio']:.3f}, cut {row['cut ratio']:.3f}")
    out.append(f"* fidelity: column shapes {ddpm['column_shapes']:.4f} (real held-out {ref['column_shapes']:.4f}; "
               + ", ".join(f"{n} {r['column_shapes']:.4f}" for n, r in base.iterrows()) + ")")
    out.append(f"  pair trends {ddpm['pair_trends']:.4f} (real held-out {ref['pair_trends']:.4f}; "
               + ", ".join(f"{n} {r['pair_trends']:.4f}" for n, r in base.iterrows()) + f"); best generator: {best_pairs}")
    out.append(f"  mean KS {ddpm['ks']:.4f}, mean TV {ddpm['tv']:.4f}; mean |delta Pearson r| {ddpm['corr_diff']:.4f} "
               f"(copula {res.loc['Gaussian copula', 'corr_diff']:.4f}, SMOTE {res.loc['SMOTE', 'corr_diff']:.4f}), "
               f"mean |delta Spearman rho| {ddpm['rank_corr_diff']:.4f} (copula {res.loc['Gaussian copula', 'rank_corr_diff']:.4f}, "
               f"SMOTE {res.loc['SMOTE', 'rank_corr_diff']:.4f}, real held-out {ref['rank_corr_diff']:.4f})")
    out.append(f"* privacy: median DCR {ddpm['dcr_median']:.3f} vs {ref['dcr_median']:.3f} for held-out real rows "
               f"(SMOTE {res.loc['SMOTE', 'dcr_median']:.3f}); exact copies {100 * ddpm['copies']:.2f}% "
               f"(real held-out {100 * ref['copies']:.2f}%, SMOTE {100 * res.loc['SMOTE', 'copies']:.2f}%); "
               f"closer to train than to held-out: {ddpm['closer_to_train']:.3f} (SMOTE {res.loc['SMOTE', 'closer_to_train']:.3f})")
    beats = [n for n, r in base.iterrows() if ddpm["pair_trends"] > r["pair_trends"]]
    side = lambda other, col: "above" if ddpm[col] > res.loc[other, col] else "below"  # noqa: E731
    out.append(f"* TabDDPM's pair trends beat: {', '.join(beats) or 'none of the baselines'}; its utility ratios are "
               f"{side('Gaussian copula', 'price ratio')} the copula's for price and {side('Gaussian copula', 'cut ratio')} "
               f"for cut, {side('SMOTE', 'price ratio')} SMOTE's for price and {side('SMOTE', 'cut ratio')} for cut")
    gens = res.drop(index=REFERENCE)
    out.append(f"* TabDDPM's column shapes rank {int(gens.column_shapes.rank(ascending=False)[DDPM])} and its mean KS "
               f"{int(gens.ks.rank()[DDPM])} of the {len(gens)} generators (1 = closest to the real marginals)")
    s = sweep.set_index("steps")
    out.append("* sampling steps (mean of the seeds' sets, 95% t-interval): pair trends " + ", ".join(
        f"{k} steps {r.pair_trends:.4f} [{r['pair_trends lo']:.4f}, {r['pair_trends hi']:.4f}]" for k, r in s.iterrows()))
    return out
