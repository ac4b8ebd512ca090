"""The configuration of a synthetic session world (its own module: the generator's parts
import it, and the generator imports them)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["BEHAVIOUR_KINDS", "SessionConfig"]

#: The behaviours the generator knows (``SessionConfig.behaviours`` is a subset).
BEHAVIOUR_KINDS = ("explorer", "deep_dive", "comparison")


@dataclass(frozen=True)
class SessionConfig:
    """Everything that defines a session world (with the seed: same config, same world).

    Parameters
    ----------
    n_users : int
        Sessions (one per user: a "user" of this world is a session).
    n_items, n_categories : int
        Catalogue size and number of categories (``2 <= n_categories <= n_items``).
    category_alpha : float
        Dirichlet concentration of the category size shares (small: very unequal sizes).
    zipf_s : float
        Popularity exponent inside a category (0: uniform).
    behaviours : tuple of str
        Session behaviours, a subset of ``("explorer", "deep_dive", "comparison")``.
    behaviour_probs : tuple of float
        Probability of each behaviour (normalised; same length as ``behaviours``).
    switch_probs : tuple of float
        Per-step probability that the category switches, per behaviour.
    min_length, max_length : int
        Session length is uniform on ``[min_length, max_length]``.
    n_preferred : int
        Preferred categories per session (drawn ∝ category size without replacement).
    comparison_set : tuple of int
        ``(lo, hi)``: a comparison session alternates among ``k ~ U{lo..hi}`` categories.
    step_seconds : tuple of int
        ``(lo, hi)``: seconds between consecutive events of a session (uniform, inclusive).
    start_ts : int
        Earliest session start, seconds since the epoch (default 2026-01-01 00:00 UTC).
    span_days : float
        Session starts are uniform over ``[start_ts, start_ts + span_days days)``.
    """

    n_users: int = 20_000
    n_items: int = 5_000
    n_categories: int = 25
    category_alpha: float = 2.0
    zipf_s: float = 0.8
    behaviours: tuple[str, ...] = BEHAVIOUR_KINDS
    behaviour_probs: tuple[float, ...] = (0.3, 0.5, 0.2)
    switch_probs: tuple[float, ...] = (0.40, 0.15, 0.50)
    min_length: int = 5
    max_length: int = 34
    n_preferred: int = 3
    comparison_set: tuple[int, int] = (2, 3)
    step_seconds: tuple[int, int] = (10, 600)
    start_ts: int = 1_767_225_600
    span_days: float = 30.0

    def __post_init__(self) -> None:
        for name in ("behaviours", "behaviour_probs", "switch_probs", "comparison_set",
                     "step_seconds"):
            value = getattr(self, name)
            if isinstance(value, str) or not hasattr(value, "__len__"):
                raise ValueError(f"SessionConfig.{name} must be a tuple, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        for name in ("n_users", "n_items", "n_categories", "min_length", "max_length",
                     "n_preferred"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SessionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_categories < 2:
            raise ValueError(f"SessionConfig.n_categories must be >= 2 (sessions switch between "
                             f"categories), got {self.n_categories}")
        if self.n_items < self.n_categories:
            raise ValueError(f"SessionConfig: n_items ({self.n_items}) must be >= n_categories "
                             f"({self.n_categories}): every category holds at least one item")
        if not self.category_alpha > 0:
            raise ValueError(f"SessionConfig.category_alpha must be > 0, got {self.category_alpha}")
        if not self.zipf_s >= 0:
            raise ValueError(f"SessionConfig.zipf_s must be >= 0, got {self.zipf_s}")
        nb = len(self.behaviours)
        unknown = [b for b in self.behaviours if b not in BEHAVIOUR_KINDS]
        if not nb or unknown or len(set(self.behaviours)) != nb:
            raise ValueError(f"SessionConfig.behaviours must be distinct names among "
                             f"{BEHAVIOUR_KINDS}, got {self.behaviours}")
        for name in ("behaviour_probs", "switch_probs"):
            if len(getattr(self, name)) != nb:
                raise ValueError(f"SessionConfig.{name} needs one value per behaviour ({nb}), "
                                 f"got {getattr(self, name)}")
        if any(not p >= 0 for p in self.behaviour_probs) or not sum(self.behaviour_probs) > 0:
            raise ValueError(f"SessionConfig.behaviour_probs must be >= 0 with a positive sum, "
                             f"got {self.behaviour_probs}")
        if any(not 0 <= p <= 1 for p in self.switch_probs):
            raise ValueError(f"SessionConfig.switch_probs must be probabilities in [0, 1], "
                             f"got {self.switch_probs}")
        if self.min_length > self.max_length:
            raise ValueError(f"SessionConfig: min_length ({self.min_length}) > max_length "
                             f"({self.max_length})")
        if self.n_preferred > self.n_categories:
            raise ValueError(f"SessionConfig.n_preferred ({self.n_preferred}) exceeds "
                             f"n_categories ({self.n_categories})")
        lo, hi = _pair(self.comparison_set, "comparison_set")
        if not 2 <= lo <= hi <= self.n_categories:
            raise ValueError(f"SessionConfig.comparison_set must be (lo, hi) with 2 <= lo <= hi "
                             f"<= n_categories ({self.n_categories}), got {self.comparison_set}")
        lo, hi = _pair(self.step_seconds, "step_seconds")
        if not 1 <= lo <= hi:
            raise ValueError(f"SessionConfig.step_seconds must be (lo, hi) with 1 <= lo <= hi "
                             f"(timestamps increase within a session), got {self.step_seconds}")
        if not self.span_days > 0:
            raise ValueError(f"SessionConfig.span_days must be > 0, got {self.span_days}")
        if self.start_ts < 0:
            raise ValueError(f"SessionConfig.start_ts must be >= 0, got {self.start_ts}")

    @property
    def behaviour_p(self) -> np.ndarray:
        """Normalised behaviour probabilities, shape (n_behaviours,) float64."""
        p = np.asarray(self.behaviour_probs, dtype=np.float64)
        return p / p.sum()

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _pair(value: tuple, name: str) -> tuple[int, int]:
    if len(value) != 2 or any(int(v) != v for v in value):
        raise ValueError(f"SessionConfig.{name} must be two integers (lo, hi), got {value}")
    return int(value[0]), int(value[1])
