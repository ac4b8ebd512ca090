"""Where an ``lstm_attention`` model looks: its attention over the items of every test
session, each session classified by :func:`streamrec.plots.attention_patterns`, and a
heatmap of a few sessions of each pattern (``streamrec plot attention``)::

    data = prepare("synthetic-sessions:users=3000,items=600").dataset
    study = attention_study(data, "attention.png")
    study.shares          # {"recency-dominant": 0.41, "anchor-item": ..., ...}
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import Split

__all__ = ["ATTENTION_MODEL", "AttentionInputError", "AttentionStudy",
           "attention_study"]

#: the small lstm_attention trained when no saved model is given
ATTENTION_MODEL = {"embed": 32, "hidden": 64, "layers": 1, "max_len": 20, "lr": 1e-2,
                   "batch_size": 128}
#: sessions scored per call of ``model.attention`` (bounds memory, not results)
_BATCH = 2048


class AttentionInputError(ValueError):
    """A model or data the study cannot use; the message says which and why."""


@dataclass
class AttentionStudy:
    """The patterns of all test sessions and what the heatmap shows.

    Attributes
    ----------
    model_name : str
    trained : bool
        Whether the model was trained by the study (else loaded).
    kind : ndarray of int64, shape (n_sessions,)
        Pattern code of every test session (index into ``ATTENTION_PATTERNS``).
    shares : dict
        Share of the test sessions per pattern.
    shown : int
        Sessions (rows) in the heatmap.
    positions : int
        Longest history among the rows shown.
    path : Path
        The PNG written.
    history : object or None
        The training history (``losses``, ``best_value``) of a model trained now.
    """

    model_name: str
    trained: bool
    kind: np.ndarray
    shares: dict[str, float]
    shown: int
    positions: int
    path: Path
    history: Any = None

    @property
    def n_sessions(self) -> int:
        return len(self.kind)


def attention_study(dataset: Dataset, out: str | Path, *, model_dir: Path | None = None,
                    epochs: int = 8, sessions: int = 8, seed: int = 0, data: str = "",
                    step: Callable[[str], AbstractContextManager[Any]] = nullcontext,
                    ) -> AttentionStudy:
    """Split ``dataset`` by case_study (seed 0), load the lstm_attention in ``model_dir`` or
    train :data:`ATTENTION_MODEL` for ``epochs`` (early stopping on valid, with the model's
    progress bar), classify the attention of every test session and draw ``sessions`` rows.

    ``data`` names the dataset in messages (its SPEC); ``step(what)`` wraps the slow part
    without a progress bar of its own. Raises :class:`AttentionInputError` for a model that
    cannot be read, has no attention, or was trained on other items, and for test sessions
    without a known item.
    """
    from streamrec.data.splits import make_split
    from streamrec.plots import (
        ATTENTION_PATTERNS,
        attention_patterns,
        category_codes,
        item_labels,
        pattern_shares,
        pick_attention_rows,
        plot_attention,
    )

    try:
        sp = make_split(dataset, "case_study")
        model = _load_or_train(sp, model_dir, epochs, seed)
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        raise AttentionInputError(str(exc)) from exc
    if not hasattr(model, "attention"):
        raise AttentionInputError(f"{model_dir} holds a {type(model).__name__}, which has no "
                                  "attention weights; save an lstm_attention model")
    n_items = int(model.n_items_)
    if n_items != sp.train.n_items:
        raise AttentionInputError(f"the model has {n_items} items but the case_study split of "
                                  f"{data} has {sp.train.n_items} train items: pass the --data "
                                  "the model was trained on")
    rows, hist = _test_histories(sp, int(model.max_len), n_items)
    if len(rows) == 0:
        raise AttentionInputError(f"the test part of {data} has no session with an item known "
                                  "at training time")
    lengths = (hist >= 0).sum(axis=1)
    with step("attention weights"):
        weights = np.concatenate([model.attention(hist[lo:lo + _BATCH])
                                  for lo in range(0, len(hist), _BATCH)])
    labels = item_labels(dataset, sp.item_vocab.ids[:n_items], top=n_items)
    names, codes = np.unique(labels, return_inverse=True)
    cats = category_codes(np.where(labels == "?", -1, codes), hist)
    kind, strength = attention_patterns(weights, hist, cats)
    shares = pattern_shares(kind)
    pick = pick_attention_rows(kind, strength, lengths, sessions, seed=seed)
    users = sp.user_vocab.ids[rows[pick]]
    row_labels = [f"{ATTENTION_PATTERNS[k]} · session {u}" for k, u in
                  zip(kind[pick].tolist(), users.tolist(), strict=True)]
    share_text = ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
    name = getattr(model, "name", "") or type(model).__name__
    title = (f"{name}: attention of the last position · {dataset.name} · "
             f"{len(rows):,} test sessions\n{share_text}")
    path = plot_attention(weights[pick], hist[pick], cats[pick], names, out,
                          row_labels=row_labels, title=title)
    trained = model_dir is None
    return AttentionStudy(name, trained, kind, shares, len(pick), int(lengths[pick].max()), path,
                          getattr(model, "history_", None) if trained else None)


def _load_or_train(sp: Split, model_dir: Path | None, epochs: int, seed: int) -> Any:
    from streamrec.models.base import Recommender
    from streamrec.models.zoo import create

    if model_dir is not None:
        return Recommender.load(model_dir)
    model = create("lstm_attention", None, **ATTENTION_MODEL, epochs=epochs, progress=True)
    model.fit(sp.train, valid=sp.valid, rng=np.random.default_rng(seed))
    return model


def _test_histories(sp: Split, max_len: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Test sessions with at least one item the model knows (their row numbers) and their
    left-padded histories, latest item last, unknown items dropped."""
    from streamrec.models.sequential.base import pad_sequences

    seqs, _ = sp.test.sequences(max_len, offset=1)  # item + 1, 0 = padding
    hist = pad_sequences(seqs - 1, max_len, n_items)
    rows = np.flatnonzero((hist >= 0).sum(axis=1) > 0)
    return rows, hist[rows]
