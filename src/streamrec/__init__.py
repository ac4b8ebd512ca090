"""StreamRec: an end-to-end deep-learning recommender system for content streaming."""
__version__ = "0.1.0"
