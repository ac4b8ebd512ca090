"""Plots of fitted models: item embeddings in 2-D (PCA and t-SNE side by side), and the
attention of a session model over the items of sessions.

Embeddings work for every model that exposes item vectors: ``item_vectors()`` (two-tower),
``item_factors_`` (ALS, MF) or an ``nn.Embedding`` named ``item`` in ``module_`` (BPR-MF).
Figures are drawn on matplotlib's Agg canvas (no display, no global pyplot state)::

    vecs = item_embeddings(model)                     # (n_items, D)
    labels = item_labels(dataset, split.item_vocab.ids[: model.n_items_])
    plot_item_embeddings(vecs, labels, "items.png", title="two_tower on ML-100K")

Attention maps (``lstm_attention``): the weights of the last position over a session's
items, each session classified into one of :data:`ATTENTION_PATTERNS` by
:func:`attention_patterns`::

    hist = pad_sequences(sessions, model.max_len, model.n_items_)   # (B, T) left-padded
    w = model.attention(hist)                                       # (B, T)
    cats = category_codes(labels, hist)                             # (B, T), -1 = none
    kind, strength = attention_patterns(w, hist, cats)
    rows = pick_attention_rows(kind, strength, (hist >= 0).sum(1), 8, seed=0)
    plot_attention(w[rows], hist[rows], cats[rows], names, "att.png", row_labels=...)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from streamrec.data.dataset import Dataset

__all__ = [
    "ATTENTION_PATTERNS",
    "attention_patterns",
    "category_codes",
    "item_embeddings",
    "item_labels",
    "pattern_shares",
    "pick_attention_rows",
    "plot_attention",
    "plot_item_embeddings",
]

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
    from streamrec.models.capabilities import ItemVectors

    if not isinstance(model, ItemVectors):
        raise TypeError(f"{type(model).__name__} has no item vectors; embedding plots need a "
                        "factor model such as two_tower, bprmf, ials or biased_mf")
    return np.ascontiguousarray(np.asarray(model.item_vectors(), dtype=np.float32))


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
    for ax, xy, name in panels:
        for k, label in enumerate(order):
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


# ---------------------------------------------------------------------------- attention
#: the attention patterns of :func:`attention_patterns`, by code (0, 1, 2, 3)
ATTENTION_PATTERNS = ("recency-dominant", "anchor-item", "category-coherent", "mixed")
RECENCY, ANCHOR, COHERENT, MIXED = range(4)


def category_codes(item_categories: np.ndarray, hist: np.ndarray) -> np.ndarray:
    """Category code of every history cell, shape (B, T) int64; -1 for padding and unknown.

    Parameters
    ----------
    item_categories : ndarray of int, shape (n_items,)
        Category code of each item index (-1: unknown).
    hist : ndarray of int, shape (B, T)
        Item indices, ``-1`` = padding.
    """
    cats = np.asarray(item_categories, dtype=np.int64)
    h = np.asarray(hist, dtype=np.int64)
    return np.where(h >= 0, cats[np.maximum(h, 0)], -1)


def attention_patterns(weights: np.ndarray, hist: np.ndarray, categories: np.ndarray, *,
                       recency: float = 0.5, anchor: float = 0.35, coherent: float = 0.8,
                       spread: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Classify each session's attention into one of :data:`ATTENTION_PATTERNS`.

    Rules, first match wins (the latest item is the last column of the left-padded layout):

    1. ``recency-dominant``: the latest item holds at least ``recency`` of the weight;
    2. ``anchor-item``: one earlier item (a distinct item other than the latest, its
       repeats' weights summed) holds at least ``anchor`` of the weight and more than the
       latest item;
    3. ``category-coherent``: items of the latest item's category hold at least
       ``coherent`` of the weight, spread over at least two of them with ``spread`` or more;
    4. ``mixed``: everything else.

    Parameters
    ----------
    weights : ndarray, shape (B, T)
        Attention of the last position, rows summing to 1 (0 on padding).
    hist : ndarray of int, shape (B, T)
        Item indices, ``-1`` = padding, latest item last.
    categories : ndarray of int, shape (B, T)
        Category codes of the cells (:func:`category_codes`; -1 = none: never coherent).
    recency, anchor, coherent, spread : float
        Thresholds of the rules.

    Returns
    -------
    kind : ndarray of int64, shape (B,)
        Index into :data:`ATTENTION_PATTERNS`.
    strength : ndarray of float64, shape (B,)
        How clearly the row shows its pattern: the latest item's weight, the anchor's
        weight, the same-category weight, or the largest weight (mixed).
    """
    w = np.asarray(weights, dtype=np.float64)
    h = np.asarray(hist, dtype=np.int64)
    c = np.asarray(categories, dtype=np.int64)
    if not w.shape == h.shape == c.shape or w.ndim != 2:
        raise ValueError(f"weights, hist and categories must share one (B, T) shape, got "
                         f"{w.shape}, {h.shape}, {c.shape}")
    b, t = w.shape
    kind = np.full(b, MIXED, dtype=np.int64)
    strength = w.max(axis=1, initial=0.0)
    if b == 0 or t == 0:
        return kind, strength
    valid = h >= 0
    latest_item, latest_cat = h[:, -1:], c[:, -1:]
    w_last = np.where(valid[:, -1], w[:, -1], 0.0)
    # weight of each cell's item, its repeats summed: (B, T, T) comparisons, T is small
    same_item = (h[:, :, None] == h[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    item_w = np.einsum("btk,bk->bt", same_item, w)  # (B, T)
    earlier = valid & (h != latest_item)
    w_anchor = np.where(earlier, item_w, 0.0).max(axis=1)
    same_cat = valid & (c == latest_cat) & (latest_cat >= 0)
    w_cat = np.where(same_cat, w, 0.0).sum(axis=1)
    n_spread = (same_cat & (w >= spread)).sum(axis=1)
    is_recency = valid[:, -1] & (w_last >= recency)
    is_anchor = ~is_recency & (w_anchor >= anchor) & (w_anchor > w_last)
    is_coherent = ~is_recency & ~is_anchor & (w_cat >= coherent) & (n_spread >= 2)
    kind[is_recency], strength[is_recency] = RECENCY, w_last[is_recency]
    kind[is_anchor], strength[is_anchor] = ANCHOR, w_anchor[is_anchor]
    kind[is_coherent], strength[is_coherent] = COHERENT, w_cat[is_coherent]
    return kind, strength


def pattern_shares(kind: np.ndarray) -> dict[str, float]:
    """Share of rows in each of :data:`ATTENTION_PATTERNS` (sums to 1 for a non-empty input)."""
    counts = np.bincount(np.asarray(kind, dtype=np.int64), minlength=len(ATTENTION_PATTERNS))
    total = max(int(counts.sum()), 1)
    return {name: float(counts[i] / total) for i, name in enumerate(ATTENTION_PATTERNS)}


def pick_attention_rows(kind: np.ndarray, strength: np.ndarray, lengths: np.ndarray, n: int,
                        *, seed: int = 0) -> np.ndarray:
    """Rows to show: about ``n / 3`` of each of the three named patterns (mixed fills in).

    Within a pattern, long sessions come first, then clear examples (high ``strength``),
    ties broken at random (seeded). A pattern with too few rows leaves its slots to the
    others.

    Parameters
    ----------
    kind, strength : ndarray, shape (B,)
        From :func:`attention_patterns`.
    lengths : ndarray of int, shape (B,)
        Items in each row.
    n : int
        Rows wanted.
    seed : int

    Returns
    -------
    ndarray of int64, shape (min(n, B),)
        Row indices grouped by pattern (recency, anchor, coherent, then mixed).
    """
    kind = np.asarray(kind, dtype=np.int64)
    n = min(int(n), len(kind))
    jitter = np.random.default_rng(seed).random(len(kind))
    # preference order inside each pattern: longer, stronger, random
    order = np.lexsort((jitter, -np.round(np.asarray(strength, np.float64), 2),
                        -np.asarray(lengths)))
    by_kind = [order[kind[order] == k] for k in range(len(ATTENTION_PATTERNS))]
    quota = np.zeros(len(ATTENTION_PATTERNS), dtype=np.int64)
    avail = np.array([len(x) for x in by_kind])
    named = avail[:MIXED]
    left = n
    while left > 0 and (quota[:MIXED] < named).any():  # at most n rounds of three patterns
        for k in range(MIXED):
            if left > 0 and quota[k] < named[k]:
                quota[k] += 1
                left -= 1
    quota[MIXED] = min(left, avail[MIXED])
    picked = [by_kind[k][: quota[k]] for k in range(len(ATTENTION_PATTERNS))]
    return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, np.int64)


def plot_attention(weights: np.ndarray, hist: np.ndarray, categories: np.ndarray,
                   category_names: np.ndarray, out: str | Path, *,
                   row_labels: list[str] | None = None, title: str = "attention",
                   max_cols: int = 30) -> Path:
    """Write a heatmap PNG of attention weights: rows = sessions, columns = positions.

    Each cell is annotated with its item's category (bold where it is the latest item's
    category); empty cells (no item) are left blank.

    Parameters
    ----------
    weights : ndarray, shape (B, T)
        Left-padded layout, latest item in the last column.
    hist : ndarray of int, shape (B, T)
        Item indices, ``-1`` = padding.
    categories : ndarray of int, shape (B, T)
        Category code per cell (-1: none).
    category_names : ndarray of str, shape (n_categories,)
        Name of each category code.
    out : path
        The PNG to write (parent folders are created).
    row_labels : list of str, optional
        One label per row (e.g. pattern and session id).
    title : str
    max_cols : int
        Show at most this many of the latest positions (only the width the rows use).

    Returns
    -------
    Path
        ``out``.
    """
    from matplotlib.figure import Figure

    w = np.asarray(weights, dtype=np.float64)
    h = np.asarray(hist, dtype=np.int64)
    if w.ndim != 2 or w.shape != h.shape or len(w) == 0:
        raise ValueError(f"need (B, T) weights and histories with B >= 1, got {w.shape}, {h.shape}")
    used = int((h >= 0).sum(axis=1).max(initial=1))
    width = max(1, min(used, int(max_cols), w.shape[1]))
    w, h = w[:, -width:], h[:, -width:]
    cats = np.asarray(categories, dtype=np.int64)[:, -width:]
    names = np.asarray(category_names, dtype=str)
    shown = np.ma.masked_where(h < 0, w)  # (B, W)
    b = len(w)
    fig = Figure(figsize=(max(6.0, 0.55 * width + 3.5), 0.55 * b + 2.0), dpi=110,
                 layout="constrained")
    ax = fig.subplots()
    vmax = max(float(w.max()), 1e-6)
    im = ax.imshow(shown, aspect="auto", cmap="viridis", vmin=0.0, vmax=vmax,
                   interpolation="nearest")
    ax.set_facecolor("#f0f0f0")
    r, col = np.nonzero(h >= 0)
    same = cats[r, col] == cats[r, -1]
    dark = w[r, col] < 0.6 * vmax  # light text on the dark end of viridis
    for i in range(len(r)):  # at most B * max_cols texts: cheap enough one by one
        code = cats[r[i], col[i]]
        ax.text(col[i], r[i], names[code] if 0 <= code < len(names) else "?", ha="center",
                va="center", fontsize=7, fontweight="bold" if same[i] else "normal",
                color="white" if dark[i] else "black")
    ax.set_xticks(np.arange(width))
    ax.set_xticklabels([f"{k - width + 1}" if k < width - 1 else "latest" for k in range(width)],
                       fontsize=7)
    ax.set_xlabel("position relative to the latest item; text: item category (bold: the "
                  "latest item's category)")
    ax.set_yticks(np.arange(b))
    ax.set_yticklabels(row_labels if row_labels is not None else [str(i) for i in range(b)],
                       fontsize=8)
    fig.colorbar(im, ax=ax, label="attention weight", shrink=0.9)
    ax.set_title(title, fontsize=9)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
