"""Top-k selection and approximate nearest-neighbour retrieval."""
