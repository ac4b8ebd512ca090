"""Paths the tests read: the source tree, the benchmark scripts and the shared data sets
beside the checkout (``../shared/data``; tests that need them skip when they are absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
BENCHMARKS = REPO / "benchmarks"
SHARED_DATA = REPO.parent / "shared" / "data"
ML100K = SHARED_DATA / "ml-100k"

#: for tests that read ML-100K (RecBole atomic files): skipped when it is absent
needs_ml100k = pytest.mark.skipif(not ML100K.exists(), reason="../shared/data/ml-100k absent")
