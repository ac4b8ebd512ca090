"""The model zoo: every model is created by name from :mod:`streamrec.models.registry`."""

from streamrec.models.base import Recommendations, Recommender
from streamrec.models.registry import ModelSpec, available, create, get_class, register, spec

__all__ = ["ModelSpec", "Recommendations", "Recommender", "available", "create", "get_class",
           "register", "spec"]
