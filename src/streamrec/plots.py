"""Plots of fitted models: item embeddings in 2-D (PCA and t-SNE side by side).

Works for every model that exposes item vectors: ``item_vectors()`` (two-tower),
``item_factors_`` (ALS, MF) or an ``nn.Embedding`` named ``item`` in ``module_`` (BPR-MF).
Figures are drawn on matplotlib's Agg canvas (no display, no global pyplot state)::

    vecs = item_embeddings(model)                     # (n_items, D)
    labels = item_labels(dataset, split.item_vocab.ids[: model.n_items_])
    plot_item_embeddings(vecs, labels, "items.png", title="two_tower on ML-100K")
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from streamrec.data.dataset import Dataset

__all__ = ["item_embeddings", "item_labels", "plot_item_embeddings"]

#: columns holding an item's genre/category, in order of preference
CATEGORY_COLUMNS = ("genres", "genre", "class", "category", "categories", "top_category")
_OTHER = "other"


def item_embeddings(model: Any) -> np.ndarray:
    """The item vectors of a fitted model, shape (n_items, D) float32.

    Raises
    ------
    TypeError
        When the model has no item vectors (e.g. EASE, ItemKNN, popularity).
    """
    if hasattr(model, "item_vectors"):
        vecs = model.item_vectors()
    elif getattr(model, "item_factors_", None) is not None:
        vecs = model.item_factors_
    elif hasattr(getattr(model, "module_", None), "item") and hasattr(model.module_.item,
                                                                      "weight"):
        vecs = model.module_.item.weight.detach().float().cpu().numpy()
    else:
        raise TypeError(f"{type(model).__name__} has no item vectors (needs item_vectors(), "
                        "item_factors_ or module_.item.weight); embedding plots need a "
                        "factor model such as two_tower, bprmf, ials or mf")
    return np.ascontiguousarray(np.asarray(vecs, dtype=np.float32))


def item_labels(dataset: Dataset, item_ids: np.ndarray, column: str | None = None,
                *, top: int = 12) -> np.ndarray:
    """One label per item: its first genre/category token; the rarest ones become "other".

    Parameters
    ----------
    dataset : Dataset
        Its ``items`` table provides the labels.
    item_ids : ndarray, shape (n,)
        External item ids in the model's index order (``split.item_vocab.ids[:n_items_]``).
    column : str, optional
        The label column (default: the first of :data:`CATEGORY_COLUMNS` present).
    top : int
        Keep the ``top`` most frequent labels, the rest are "other".

    Returns
    -------
    ndarray of str, shape (n,)
        ``"?"`` where an item has no label.
    """
    n = len(item_ids)
    table = dataset.items
    if table is None:
        return np.full(n, "?")
    col = column or next((c for c in CATEGORY_COLUMNS if c in table.columns), None)
    if col is None:
        return np.full(n, "?")
    c = pl.col(col)
    if isinstance(table.schema[col], pl.List):  # token_seq columns (RecBole genres)
        c = c.list.first()
    first = table.select(c.cast(pl.String).str.split("|").list.first().str.strip_chars()
                         .fill_null("?").alias("label"))["label"].to_numpy().astype(str)
    idx, found = dataset.item_vocab.lookup(np.asarray(item_ids))
    found &= idx < len(first)
    labels = np.where(found, first[np.where(found, idx, 0)], "?")
    names, counts = np.unique(labels, return_counts=True)
    keep = set(names[np.argsort(-counts, kind="stable")[:top]].tolist())
    return np.where(np.isin(labels, list(keep)), labels, _OTHER)


def plot_item_embeddings(vectors: np.ndarray, labels: np.ndarray | None, out: str | Path, *,
                         title: str = "item embeddings", max_items: int | None = 3000,
                         perplexity: float = 30.0, seed: int = 0) -> Path:
    """Write a PNG with a PCA and a t-SNE projection of ``vectors``, coloured by ``labels``.

    Parameters
    ----------
    vectors : ndarray, shape (n, D)
    labels : ndarray of str, shape (n,), optional
        A category per item (legend); None draws one colour.
    out : path
        The PNG to write (parent folders are created).
    title : str
    max_items : int, optional
        Plot a seeded random sample of at most this many items (t-SNE is quadratic).
    perplexity : float
        t-SNE perplexity (lowered automatically for few items).
    seed : int

    Returns
    -------
    Path
        ``out``.
    """
    from matplotlib.figure import Figure
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need at least 3 item vectors of shape (n, D), got {x.shape}")
    lab = np.full(len(x), "items") if labels is None else np.asarray(labels, dtype=str)
    if len(lab) != len(x):
        raise ValueError(f"{len(lab)} labels for {len(x)} item vectors")
    gen = np.random.default_rng(seed)
    if max_items is not None and len(x) > max_items:
        keep = np.sort(gen.choice(len(x), size=max_items, replace=False))
        x, lab = x[keep], lab[keep]
    x = np.where(np.isfinite(x), x, 0.0)
    n_comp = min(2, x.shape[1])
    pca = PCA(n_components=n_comp, random_state=seed).fit(x)
    p2 = _two_columns(pca.transform(x))
    tsne = TSNE(n_components=2, perplexity=float(min(perplexity, max((len(x) - 1) / 3, 1.0))),
                init="pca" if x.shape[1] >= 2 else "random", random_state=seed)
    t2 = tsne.fit_transform(x)

    names, counts = np.unique(lab, return_counts=True)
    order = names[np.argsort(-counts, kind="stable")].tolist()
    if _OTHER in order:  # "other" and unknown last, in grey
        order.remove(_OTHER)
        order.append(_OTHER)
    fig = Figure(figsize=(13, 6), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    ratio = pca.explained_variance_ratio_
    panels = ((axes[0], p2, "PCA (explained variance " + ", ".join(f"{r:.0%}" for r in ratio)
               + ")"), (axes[1], t2, f"t-SNE (perplexity {tsne.perplexity:g})"))
    palette = _palette(len(order))
    for ax, xy, name in panels:  # two panels
        for k, label in enumerate(order):  # a loop over categories
            m = lab == label
            grey = label in (_OTHER, "?")
            ax.scatter(xy[m, 0], xy[m, 1], s=9, alpha=0.45 if grey else 0.8, linewidths=0,
                       color="#b0b0b0" if grey else palette[k], label=f"{label} ({int(m.sum())})")
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, texts = axes[1].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside right center", fontsize=8, markerscale=2,
               frameon=False)
    fig.suptitle(f"{title} · {len(x):,} items, {vectors.shape[1]} dims")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _two_columns(xy: np.ndarray) -> np.ndarray:
    """(n, 1) -> (n, 2) with a zero second column (one-dimensional embeddings)."""
    return xy if xy.shape[1] == 2 else np.column_stack([xy[:, 0], np.zeros(len(xy))])


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(k % cmap.N) for k in range(n)]
