"""Shipped test helpers: the model conformance suites.

``check_recommender`` runs every check and stops at the first failure;
:class:`RecommenderSuite` runs one named check at a time (a test suite parametrised over
models x checks reports every failing behaviour). The click-model suite is
:mod:`streamrec.testing.ctr_conformance` (``check_ctr_model``, ``CTRSuite``; it imports
torch).
"""

from streamrec.testing.conformance import *  # noqa: F403  (the suite's public names)
from streamrec.testing.conformance import __all__  # noqa: F401
