"""Content embeddings of items from their text: TF-IDF, then truncated SVD (LSA).

:func:`content_embeddings` fits a :class:`ContentEmbedder` on the given texts (e.g. the
catalogue's titles and descriptions, :func:`item_texts`) and returns their L2-normalised
vectors; :meth:`ContentEmbedder.transform` embeds new texts (cold items) in the same space.

:class:`ContentProjector` maps an item's content (text, categorical and numeric metadata) into
a model's item-vector space by ridge regression, so that a new item with no interactions gets
a vector at once (cold start) and can be added to the retrieval index.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np
import polars as pl
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["ContentEmbedder", "ContentProjector", "content_embeddings", "item_texts"]


class ContentEmbedder:
    """TF-IDF (sublinear tf, unigrams and bigrams) followed by truncated SVD.

    Parameters
    ----------
    dim : int
        Output dimension. When the fitted vocabulary is too small for ``dim`` SVD components
        (``dim >= n_terms``), the SVD keeps ``n_terms - 1`` components and the remaining
        columns are 0, so the output always has ``dim`` columns.
    seed : int
        Seed of the randomised SVD.
    min_df : int
        Terms in fewer fitted texts are ignored.
    max_features : int or None
        Keep at most this many terms (the most frequent).
    """

    def __init__(self, dim: int = 32, *, seed: int = 0, min_df: int = 1,
                 max_features: int | None = 50_000) -> None:
        self.dim = dim
        self.seed = seed
        self.min_df = min_df
        self.max_features = max_features

    def fit(self, texts: Sequence[str]) -> ContentEmbedder:
        """Fit the vocabulary, IDF weights and SVD basis on ``texts`` (N strings)."""
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        docs = _clean(texts)
        if not any(docs):
            raise ValueError("content_embeddings: every text is empty")
        self.vectorizer_ = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2),
                                           min_df=self.min_df, max_features=self.max_features)
        tfidf = self.vectorizer_.fit_transform(docs)
        n_comp = max(1, min(self.dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=n_comp, random_state=self.seed)
        self.svd_.fit(tfidf)
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with the fitted model.

        Returns
        -------
        ndarray of float32, shape (N, dim)
            L2-normalised rows (all-zero rows for texts with no known term).
        """
        if not hasattr(self, "svd_"):
            raise RuntimeError("ContentEmbedder.transform: call fit first")
        z = self.svd_.transform(self.vectorizer_.transform(_clean(texts)))
        out = np.zeros((z.shape[0], self.dim), np.float32)
        out[:, : z.shape[1]] = z
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)

    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted state as plain arrays (for ``np.savez``; no pickle needed to load).

        Returns
        -------
        dict of str to ndarray
            ``terms`` (n_terms,) str, ordered by column; ``idf`` (n_terms,) float64;
            ``components`` (n_comp, n_terms) float64 SVD basis; ``params`` (4,) int64:
            dim, seed, min_df, max_features (-1 for None).
        """
        if not hasattr(self, "svd_"):
            raise RuntimeError("ContentEmbedder.get_state: call fit first")
        vocab = self.vectorizer_.vocabulary_
        terms = np.empty(len(vocab), dtype=object)
        terms[np.fromiter(vocab.values(), np.int64, count=len(vocab))] = list(vocab.keys())
        max_features = -1 if self.max_features is None else int(self.max_features)
        return {"terms": terms.astype(str), "idf": np.asarray(self.vectorizer_.idf_),
                "components": np.asarray(self.svd_.components_),
                "params": np.array([self.dim, self.seed, self.min_df, max_features], np.int64)}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> ContentEmbedder:
        """Rebuild a fitted embedder from :meth:`get_state`; it transforms identically."""
        missing = {"terms", "idf", "components", "params"} - set(state)
        if missing:
            raise ValueError(f"ContentEmbedder.from_state: missing array(s) {sorted(missing)}")
        dim, seed, min_df, max_features = (int(v) for v in state["params"])
        self = cls(dim, seed=seed, min_df=min_df,
                   max_features=None if max_features < 0 else max_features)
        terms, idf = np.asarray(state["terms"]).astype(str), np.asarray(state["idf"], np.float64)
        components = np.asarray(state["components"], np.float64)
        if not len(terms) == len(idf) == components.shape[1]:
            raise ValueError(f"ContentEmbedder.from_state: {len(terms)} terms, {len(idf)} idf "
                             f"weights and {components.shape[1]} SVD columns do not match")
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df,
                                     max_features=self.max_features)
        vectorizer.vocabulary_ = dict(zip(terms.tolist(), range(len(terms)), strict=True))
        vectorizer.idf_ = idf
        svd = TruncatedSVD(n_components=components.shape[0], random_state=seed)
        svd.components_ = components
        svd.n_features_in_ = components.shape[1]
        self.vectorizer_, self.svd_ = vectorizer, svd
        return self


def content_embeddings(texts: Sequence[str], dim: int = 32, *, seed: int = 0,
                       ) -> tuple[np.ndarray, ContentEmbedder]:
    """Fit TF-IDF + truncated SVD on ``texts`` and embed them.

    Parameters
    ----------
    texts : sequence of str, length N
        Nulls count as empty texts.
    dim : int
    seed : int

    Returns
    -------
    embeddings : ndarray of float32, shape (N, dim)
        L2-normalised rows; cosine similarity is their dot product.
    embedder : ContentEmbedder
        The fitted model (``embedder.transform(new_texts)`` for cold items).
    """
    embedder = ContentEmbedder(dim, seed=seed).fit(texts)
    return embedder.transform(texts), embedder


def item_texts(items: pl.DataFrame, columns: Sequence[str] = ("title", "description")) -> list[str]:
    """One text per item row: the given columns joined by spaces (nulls skipped)."""
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise ValueError(f"items: missing text column(s) {missing}; has {items.columns}")
    joined = items.select(pl.concat_str([pl.col(c).cast(pl.String) for c in columns],
                                        separator=" ", ignore_nulls=True).alias("t"))["t"]
    return joined.fill_null("").to_list()


class ContentProjector:
    """Maps item content (text + categorical + numeric metadata) into a model's item-vector
    space, so an item with no interactions gets a vector at once (cold start).

    Features of an item: the TF-IDF + SVD embedding of its text columns (a
    :class:`ContentEmbedder`, L2-normalised rows), one-hot codes of each categorical column
    (levels seen in :meth:`fit`; unknown or null -> all zeros) and each numeric column as
    ``log1p(max(x, 0))`` standardised with the fit mean and standard deviation (null -> 0,
    the mean). A ridge regression (closed form, unpenalised intercept) maps them to the
    item vectors of a trained model, e.g. ``ImplicitALS.item_factors_``.

    Parameters
    ----------
    text_dim : int
        Dimension of the text embedding (0 or no ``text_columns``: no text features).
    alpha : float
        Ridge penalty, ``> 0``.
    text_columns : sequence of str
        Columns joined into each item's text (nulls skipped).
    categorical : sequence of str
        Columns one-hot encoded (cast to string, so integer codes work too).
    numeric : sequence of str
        Non-negative numeric columns (durations, counts), log-transformed and standardised.
    seed : int
        Seed of the text SVD.

    Attributes
    ----------
    embedder_ : ContentEmbedder or None
        The fitted text model (None without text features).
    levels_ : dict of str to list of str
        Levels of each categorical column, in one-hot column order.
    num_mean_, num_std_ : ndarray of float64, shape (n_numeric,)
        Standardisation of the log1p numeric columns.
    coef_ : ndarray of float64, shape (n_features, d)
    intercept_ : ndarray of float64, shape (d,)
    dim_ : int
        Dimension ``d`` of the item vectors.
    """

    def __init__(self, *, text_dim: int = 32, alpha: float = 1.0,
                 text_columns: Sequence[str] = ("title", "description"),
                 categorical: Sequence[str] = ("category",),
                 numeric: Sequence[str] = ("length_seconds",), seed: int = 0) -> None:
        self.text_dim = text_dim
        self.alpha = alpha
        self.text_columns = tuple(text_columns)
        self.categorical = tuple(categorical)
        self.numeric = tuple(numeric)
        self.seed = seed

    def fit(self, items: pl.DataFrame, vectors: np.ndarray) -> Self:
        """Fit the feature encoders on ``items`` and the ridge map to ``vectors``.

        Parameters
        ----------
        items : polars.DataFrame, n rows
            Items table with the configured columns; row ``i`` describes ``vectors[i]``.
        vectors : ndarray of float, shape (n, d)
            The model's item vectors (finite).

        Returns
        -------
        ContentProjector
            ``self``.
        """
        if not float(self.alpha) > 0:
            raise ValueError(f"ContentProjector: alpha must be > 0, got {self.alpha}")
        if self.text_dim < 0:
            raise ValueError(f"ContentProjector: text_dim must be >= 0, got {self.text_dim}")
        y = np.asarray(vectors, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] == 0:
            raise ValueError(f"ContentProjector.fit: vectors must be 2-d (n, d) with d >= 1, "
                             f"got shape {y.shape}")
        if len(items) != len(y):
            raise ValueError(f"ContentProjector.fit: items has {len(items)} rows but vectors "
                             f"has {len(y)}; rows must be aligned (row i describes vector i)")
        if len(y) < 2:
            raise ValueError("ContentProjector.fit: need at least 2 items")
        if not np.isfinite(y).all():
            bad = np.flatnonzero(~np.isfinite(y).all(axis=1))
            raise ValueError(f"ContentProjector.fit: vectors has NaN/inf in {len(bad)} row(s) "
                             f"(e.g. {bad[:5].tolist()}); drop those items first")
        _require_columns(items, self._columns(), "fit")
        use_text = self.text_dim > 0 and bool(self.text_columns)
        if not (use_text or self.categorical or self.numeric):
            raise ValueError("ContentProjector: no features configured (text_dim=0 or no "
                             "text_columns, and no categorical or numeric columns)")
        self.embedder_ = (ContentEmbedder(self.text_dim, seed=self.seed)
                          .fit(item_texts(items, self.text_columns)) if use_text else None)
        self.levels_ = {c: sorted(items[c].cast(pl.String).drop_nulls().unique().to_list())
                        for c in self.categorical}
        raw = self._numeric_raw(items)  # (n, n_numeric), NaN for nulls
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(raw, axis=0) if raw.shape[1] else np.zeros(0)
            std = np.nanstd(raw, axis=0) if raw.shape[1] else np.zeros(0)
        self.num_mean_ = np.nan_to_num(mean)
        self.num_std_ = np.where(np.isfinite(std) & (std > 0), std, 1.0)
        x = self._design(items)  # (n, p)
        x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
        xc, yc = x - x_mean, y - y_mean
        gram = xc.T @ xc + float(self.alpha) * np.eye(x.shape[1])  # (p, p)
        self.coef_ = np.linalg.solve(gram, xc.T @ yc)  # (p, d)
        self.intercept_ = y_mean - x_mean @ self.coef_  # (d,)
        self.dim_ = y.shape[1]
        return self

    def features(self, items: pl.DataFrame) -> np.ndarray:
        """The design matrix of ``items``: [text | one-hot | numeric].

        Returns
        -------
        ndarray of float64, shape (m, n_features)
        """
        self._check_fitted("features")
        _require_columns(items, self._columns(), "features")
        return self._design(items)

    def transform(self, items: pl.DataFrame) -> np.ndarray:
        """Item vectors predicted from content.

        Parameters
        ----------
        items : polars.DataFrame, m rows
            Items with the columns used in :meth:`fit` (extra columns are ignored).

        Returns
        -------
        ndarray of float32, shape (m, d)
        """
        self._check_fitted("transform")
        _require_columns(items, self._columns(), "transform")
        return (self._design(items) @ self.coef_ + self.intercept_).astype(np.float32)

    def save(self, path: str | Path) -> None:
        """Write ``path/params.json`` (hyperparameters, categorical levels) and
        ``path/arrays.npz`` (ridge weights, numeric scaling, text model). No pickle."""
        self._check_fitted("save")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": self.coef_, "intercept": self.intercept_,
                  "num_mean": self.num_mean_, "num_std": self.num_std_}
        if self.embedder_ is not None:
            arrays |= {f"text_{k}": v for k, v in self.embedder_.get_state().items()}
        np.savez(path / "arrays.npz", **arrays)
        params = {"format": 1, "class": type(self).__name__, "text_dim": self.text_dim,
                  "alpha": self.alpha, "text_columns": list(self.text_columns),
                  "categorical": list(self.categorical), "numeric": list(self.numeric),
                  "seed": self.seed, "levels": self.levels_, "dim": self.dim_,
                  "has_text": self.embedder_ is not None}
        (path / "params.json").write_text(json.dumps(params, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a projector written by :meth:`save`."""
        path = Path(path)
        params_file, arrays_file = path / "params.json", path / "arrays.npz"
        for f in (params_file, arrays_file):
            if not f.is_file():
                raise FileNotFoundError(f"{f}: missing; expected a directory written by "
                                        "ContentProjector.save")
        params = json.loads(params_file.read_text())
        if params.get("class") != cls.__name__ or params.get("format") != 1:
            raise ValueError(f"{params_file}: not a ContentProjector save (format 1); got "
                             f"class={params.get('class')!r} format={params.get('format')!r}")
        self = cls(text_dim=params["text_dim"], alpha=params["alpha"],
                   text_columns=params["text_columns"], categorical=params["categorical"],
                   numeric=params["numeric"], seed=params["seed"])
        with np.load(arrays_file, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        self.embedder_ = (ContentEmbedder.from_state(
            {k.removeprefix("text_"): v for k, v in arrays.items() if k.startswith("text_")})
            if params["has_text"] else None)
        self.levels_ = {c: list(params["levels"][c]) for c in self.categorical}
        self.num_mean_, self.num_std_ = arrays["num_mean"], arrays["num_std"]
        self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]
        self.dim_ = int(params["dim"])
        return self

    # ------------------------------------------------------------------ helpers

    def _columns(self) -> list[str]:
        text = list(self.text_columns) if self.text_dim > 0 else []
        return text + list(self.categorical) + list(self.numeric)

    def _check_fitted(self, what: str) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError(f"ContentProjector.{what}: call fit (or load) first")

    def _numeric_raw(self, items: pl.DataFrame) -> np.ndarray:
        """log1p(max(x, 0)) of the numeric columns, NaN for nulls; shape (m, n_numeric)."""
        if not self.numeric:
            return np.zeros((len(items), 0))
        raw = np.column_stack([items[c].cast(pl.Float64, strict=False).to_numpy()
                               for c in self.numeric]).astype(np.float64)
        with np.errstate(invalid="ignore"):
            return np.log1p(np.maximum(raw, 0.0))  # NaN stays NaN

    def _design(self, items: pl.DataFrame) -> np.ndarray:
        """[text (m, text_dim) | one-hot (m, sum levels) | numeric (m, n_numeric)]."""
        m = len(items)
        blocks = []
        if self.embedder_ is not None:
            blocks.append(self.embedder_.transform(item_texts(items, self.text_columns))
                          .astype(np.float64))
        for c, levels in self.levels_.items():
            onehot = np.zeros((m, len(levels)))
            codes = (items[c].cast(pl.String)
                     .replace_strict(levels, list(range(len(levels))), default=-1,
                                     return_dtype=pl.Int64)
                     .fill_null(-1).to_numpy())
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(onehot)
        num = (self._numeric_raw(items) - self.num_mean_) / self.num_std_
        blocks.append(np.nan_to_num(num, nan=0.0))
        return np.hstack(blocks) if blocks else np.zeros((m, 0))


def _require_columns(items: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in items.columns]
    if missing:
        raise ValueError(f"ContentProjector.{what}: items is missing column(s) {missing} "
                         f"(has {items.columns}); pass an items table with them or configure "
                         "the projector without them")


def _clean(texts: Sequence[str]) -> list[str]:
    return ["" if t is None else str(t) for t in texts]  # sklearn wants a list of str
