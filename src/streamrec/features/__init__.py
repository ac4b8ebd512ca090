"""Features for models: side features of users and items (:mod:`streamrec.features.side`)."""

from streamrec.features.side import EntityFeatures, FeatureEncoder, SideFeatures, side_features

__all__ = ["EntityFeatures", "FeatureEncoder", "SideFeatures", "side_features"]
