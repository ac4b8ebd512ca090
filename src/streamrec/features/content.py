"""Content embeddings of items from their text: TF-IDF, then truncated SVD (LSA).

:func:`content_embeddings` fits a :class:`ContentEmbedder` on the given texts (e.g. the
catalogue's titles and descriptions, :func:`item_texts`) and returns their L2-normalised
vectors; :meth:`ContentEmbedder.transform` embeds new texts (cold items) in the same space.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

__all__ = ["ContentEmbedder", "content_embeddings", "item_texts"]


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


def _clean(texts: Sequence[str]) -> list[str]:
    return ["" if t is None else str(t) for t in texts]  # a loop over texts (sklearn input)
