"""The ``Model`` base of every registered model and the ``Recommender`` interface every
ranking model implements.

Conventions: ``__init__`` stores hyperparameters only (``self._set_params(locals())``),
``fit`` validates and returns ``self``, learned state ends in ``_``. What a class can do
beyond the interface is declared (:mod:`streamrec.models.capabilities`) and read into a
:class:`~streamrec.models.zoo.ModelSpec`. Persistence writes ``manifest.json`` (class,
registry name, hyperparameters) and ``arrays.npz`` (learned arrays, loaded with
``allow_pickle=False``): never pickle.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.models.capabilities import Capabilities
from streamrec.models.zoo import get_class
from streamrec.retrieval.topk import mask_rows, topk

FORMAT_VERSION = 1
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@dataclass(frozen=True)
class Recommendations:
    """Top-k lists for a batch of users.

    Attributes
    ----------
    users : ndarray of int64, shape (U,)
    items : ndarray of int64, shape (U, k)
        Item indices, best first; ``-1`` pads rows with fewer than ``k`` candidates.
    scores : ndarray of float32, shape (U, k)
        Model scores of ``items`` (``-inf`` where padded).
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray


class Model(Capabilities, ABC):
    """What every registered model shares: hyperparameters from ``__init__``, the registry
    name, a tuning space, capability flags (:class:`~streamrec.models.capabilities.Capabilities`)
    and persistence (``manifest.json`` + ``arrays.npz``, no pickle).

    Subclasses implement :meth:`_check_fitted`, :meth:`_get_state` and :meth:`_set_state`.
    """

    #: registry name and kind ("ranking" or "ctr"), set by
    #: :func:`streamrec.models.zoo.register`
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "ranking"
    #: declared tuning space: hyperparameter -> candidate values (used by ``benchmark --tune``)
    search_space: ClassVar[dict[str, list[Any]]] = {}
    #: whether ``fit`` uses randomness (the benchmark runs several seeds only then)
    stochastic: ClassVar[bool] = False

    # ------------------------------------------------------------------ hyperparameters
    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """Names of the hyperparameters ``__init__`` takes, in signature order.

        An ``__init__`` that passes ``**kwargs`` on to its parent's also takes the parent's
        named parameters (listed after its own); ``*args``/``**kwargs`` themselves are not
        hyperparameters.
        """
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            params = list(inspect.signature(init).parameters.values())[1:]  # without self
            names += [p.name for p in params if p.kind not in _VARIADIC and p.name not in names]
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
                break
        return tuple(names)

    def _set_params(self, values: dict[str, Any]) -> None:
        """Store the hyperparameters among ``values`` (an ``__init__``'s ``locals()``) as
        attributes, where :meth:`get_params` reads them back."""
        for name in type(self).param_names():
            if name in values:
                setattr(self, name, values[name])

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters by name (:meth:`param_names`), as stored on the instance."""
        return {p: getattr(self, p) for p in type(self).param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def _check_fitted(self) -> None:
        """Raise RuntimeError unless fitted."""

    # ------------------------------------------------------------------ persistence
    @abstractmethod
    def _get_state(self) -> dict[str, np.ndarray]:
        """Learned arrays (numeric dtypes only), enough to restore predictions."""

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the learned state from :meth:`_get_state`'s arrays."""

    def save(self, path: str | Path) -> None:
        """Write ``path/manifest.json`` and ``path/arrays.npz`` (no pickle)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = self._get_state()
        for key, arr in state.items():
            if np.asarray(arr).dtype == object:
                raise TypeError(f"{type(self).__name__}._get_state()[{key!r}] has dtype object")
        np.savez(path / "arrays.npz", **state)
        manifest = {
            "format": FORMAT_VERSION,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "name": self.name,
            "kind": self.kind,
            "params": self.get_params(),
        }
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, default=_jsonable))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Load a model written by :meth:`save` (``cls`` may be a base class)."""
        path = Path(path)
        manifest_file = path / "manifest.json"
        if not manifest_file.exists():
            raise FileNotFoundError(f"{manifest_file}: no saved model here (expected manifest.json)")
        manifest = json.loads(manifest_file.read_text())
        klass = (get_class(manifest["name"], manifest.get("kind", "ranking"))
                 if manifest.get("name") else cls)
        if not issubclass(klass, cls):
            raise TypeError(f"{path} holds a {klass.__name__}, not a {cls.__name__}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in manifest["params"].items()}
        model = klass(**params)
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            model._set_state({k: z[k] for k in z.files})
        return model


class Recommender(Model):
    """A model that scores (user, item) pairs for top-k ranking.

    Subclasses implement :meth:`fit`, :meth:`score`, :meth:`_get_state` and
    :meth:`_set_state`; :meth:`recommend`, :meth:`save` and :meth:`load` are shared.
    """

    n_users_: int
    n_items_: int

    # ------------------------------------------------------------------ learning
    @abstractmethod
    def fit(self, train: Interactions, *, valid: Interactions | None = None,
            rng: np.random.Generator | int | None = None) -> Self:
        """Learn from ``train`` (user/item indices in the train vocabularies).

        Parameters
        ----------
        train : Interactions
        valid : Interactions, optional
            For models with early stopping; never used to pick items.
        rng : numpy Generator or int seed, optional
            All randomness comes from here; the same seed gives the same model.
        """

    @abstractmethod
    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores, shape (len(users), n_items_) or (len(users), len(items)); float32.

        Users outside ``[0, n_users_)`` (cold) get the model's cold-start scores.
        """

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) first")

    @staticmethod
    def _check_train(train: Interactions) -> None:
        if not isinstance(train, Interactions):
            raise TypeError(f"fit expects Interactions, got {type(train).__name__}")
        if len(train) == 0:
            raise ValueError("fit: the training interactions are empty")

    # ------------------------------------------------------------------ ranking
    def recommend(
        self,
        users: np.ndarray,
        k: int = 10,
        *,
        exclude: sp.csr_array | sp.csr_matrix | None = None,
        candidates: np.ndarray | None = None,
        batch_size: int = 1024,
    ) -> Recommendations:
        """Top-``k`` items per user.

        Parameters
        ----------
        users : ndarray of int, shape (U,)
        k : int
        exclude : csr, shape (n_users, n_items), optional
            Items not to recommend per user (typically what the user already has in train).
        candidates : ndarray of int, shape (C,), optional
            Rank only these items (``exclude`` still applies).
        batch_size : int
            Users scored at once; the result does not depend on it.

        Returns
        -------
        Recommendations
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        cand = None if candidates is None else np.asarray(candidates, dtype=np.int64)
        width = self.n_items_ if cand is None else len(cand)
        kk = min(int(k), width)
        out_i = np.full((len(users), kk), -1, np.int64)
        out_s = np.full((len(users), kk), -np.inf, np.float32)
        ex = None if exclude is None else sp.csr_array(exclude)
        if ex is not None and cand is not None:
            inside = cand < ex.shape[1]  # candidates beyond exclude's width exclude nothing
            ex = sp.csr_array(ex[:, np.where(inside, cand, 0)].multiply(inside[None, :]))
            ex.eliminate_zeros()  # only stored entries are excluded
        for lo in range(0, len(users), batch_size):
            ub = users[lo:lo + batch_size]
            s = np.array(self.score(ub, cand), dtype=np.float32)
            mask_rows(s, ex, ub)
            idx, vals = topk(s, kk)
            if cand is not None:
                idx = np.where(idx >= 0, cand[np.maximum(idx, 0)], -1)
            out_i[lo:lo + len(ub)] = idx
            out_s[lo:lo + len(ub)] = vals
        return Recommendations(users, out_i, out_s)


class RatingPredictor(ABC):
    """A model of explicit feedback: predicted ratings of (user, item) pairs."""

    @abstractmethod
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings, shape (N,) float32, for pairs ``(users[n], items[n])``."""


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed or None (seed 0: results stay reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def _jsonable(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, tuple | set):
        return list(x)
    raise TypeError(f"hyperparameter of type {type(x).__name__} is not JSON serialisable")
