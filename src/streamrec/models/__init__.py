"""The model zoo: every model is created by name from :mod:`streamrec.models.zoo`."""

from streamrec.models.base import Recommendations, Recommender
from streamrec.models.zoo import ModelSpec, available, create, get_class, register, spec

__all__ = ["ModelSpec", "Recommendations", "Recommender", "available", "create", "get_class",
           "register", "spec"]
