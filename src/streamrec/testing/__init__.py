"""Shipped test helpers: the model conformance suite (DESIGN.md §6.6)."""

from streamrec.testing.conformance import (
    CONFORMANCE_PARAMS,
    check_all,
    check_recommender,
    conformance_params,
    tiny_interactions,
)

__all__ = [
    "CONFORMANCE_PARAMS",
    "check_all",
    "check_recommender",
    "conformance_params",
    "tiny_interactions",
]
