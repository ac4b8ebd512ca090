"""The evaluation metrics, re-exported from :mod:`streamrec.metrics` (where they live, below
the models layer, so that models can stop early on them); import from there in new code."""

from streamrec.metrics import *  # noqa: F403  (every public name of streamrec.metrics)
from streamrec.metrics import __all__  # noqa: F401
