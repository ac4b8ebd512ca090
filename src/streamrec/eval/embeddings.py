"""A model's item embeddings in 2-D on a dataset (``streamrec plot embeddings``): a saved
model or one fitted now on the train part of a split, checked against the split's items,
drawn with :func:`streamrec.plots.plot_item_embeddings`::

    shown = embedding_plot(prepare("recbole:DIR").dataset, "items.png", model="two_tower")
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

__all__ = ["EmbeddingInputError", "EmbeddingPlot", "embedding_plot"]


class EmbeddingInputError(ValueError):
    """A model the plot cannot use (unreadable, no item vectors, other items)."""


@dataclass(frozen=True)
class EmbeddingPlot:
    model_name: str
    n_items: int
    dims: int
    path: Path


def embedding_plot(dataset: Dataset, out: str | Path, *, protocol: str = "temporal_user",
                   model_dir: Path | None = None, model: str | None = None,
                   params: dict[str, Any] | None = None, color_by: str | None = None,
                   max_items: int = 3000, seed: int = 0, data: str = "",
                   step: Callable[[str], AbstractContextManager[Any]] = nullcontext,
                   ) -> EmbeddingPlot:
    """Split ``dataset`` by ``protocol``, load the model in ``model_dir`` or fit ``model``
    (with ``params``) on the train part, early stopping on valid, and write the PCA/t-SNE
    PNG of its item vectors coloured by ``color_by`` (default: the genre/category column).

    ``data`` names the dataset in messages (its SPEC); ``step(what)`` wraps the slow parts.
    Raises :class:`EmbeddingInputError` when the model cannot be read or fitted, has no item
    vectors, or has another number of items than the split's train part.
    """
    from streamrec.data.splits import make_split
    from streamrec.plots import item_embeddings, item_labels, plot_item_embeddings

    if (model_dir is None) == (model is None):
        raise ValueError("give exactly one of model_dir and model")
    sp = make_split(dataset, protocol)
    try:
        fitted = _load_or_fit(dataset, sp, model_dir, model, params or {}, seed, step)
        vectors = item_embeddings(fitted)
    except (FileNotFoundError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingInputError(str(exc)) from exc
    if len(vectors) != sp.n_items:
        raise EmbeddingInputError(f"the model has {len(vectors)} items but the {protocol} "
                                  f"split of {data} has {sp.n_items} train items: pass the "
                                  "--data/--protocol the model was trained on")
    labels = item_labels(dataset, sp.item_vocab.ids[: sp.n_items], color_by)
    name = model or getattr(fitted, "name", "") or type(fitted).__name__
    with step("PCA and t-SNE"):
        path = plot_item_embeddings(vectors, labels, out, title=f"{name} · {dataset.name}",
                                    max_items=max_items, seed=seed)
    return EmbeddingPlot(name, len(vectors), int(vectors.shape[1]), path)


def _load_or_fit(dataset: Dataset, sp: Split, model_dir: Path | None, model: str | None,
                 params: dict[str, Any], seed: int,
                 step: Callable[[str], AbstractContextManager[Any]]) -> Any:
    from streamrec.models.base import Recommender
    from streamrec.models.zoo import spec

    if model_dir is not None:
        return Recommender.load(model_dir)
    if model is None:
        raise ValueError("give exactly one of model_dir and model")
    model_spec = spec(model)
    fitted = model_spec.create(**params)
    side = None
    if model_spec.uses_side_features:
        from streamrec.features.side import side_features

        side = side_features(dataset, sp)
    with step(f"fitting {model}"):
        fitted.fit(sp.train, valid=sp.valid, rng=np.random.default_rng(seed),
                   **model_spec.fit_kwargs(side=side))
    return fitted
