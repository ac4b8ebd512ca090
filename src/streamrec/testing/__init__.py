"""Shipped test helpers: the model conformance suites.

``check_recommender`` runs every check and stops at the first failure;
:class:`RecommenderSuite` runs one named check at a time (a test suite parametrised over
models x checks reports every failing behaviour). The click-model suite is
:mod:`streamrec.testing.ctr_conformance` (``check_ctr_model``, ``CTRSuite``; it imports
torch).
"""

from streamrec.testing.conformance import (
    CONFORMANCE_PARAMS,
    RECOMMENDER_CHECKS,
    RecommenderSuite,
    check_all,
    check_recommender,
    conformance_params,
    recommender_checks,
    tiny_interactions,
)

__all__ = [
    "CONFORMANCE_PARAMS",
    "RECOMMENDER_CHECKS",
    "RecommenderSuite",
    "check_all",
    "check_recommender",
    "conformance_params",
    "recommender_checks",
    "tiny_interactions",
]
