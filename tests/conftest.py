"""Fixtures shared across the test packages (the service's are in ``tests/serve/conftest.py``).

Helpers that are not fixtures are imported by their package path: ``tests._paths`` (the
source tree, the benchmark scripts, ``../shared/data``), ``tests.serve._system`` and
``tests.serve._redis``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures import what they need when they run
    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import Split

PreparedSplit = Callable[..., "tuple[Dataset, Split]"]


@pytest.fixture(scope="session")
def prepared_split() -> PreparedSplit:
    """``prepared_split(spec, protocol="temporal_user", **prepare_kwargs)``: the dataset
    ``prepare(spec, **prepare_kwargs)`` reads and its split by ``protocol``, made once per
    session for each set of arguments. Every caller gets the same objects: read them, never
    change them."""
    from streamrec.data.pipeline import prepare
    from streamrec.data.splits import make_split

    made: dict[str, tuple[Dataset, Split]] = {}

    def get(spec: str, protocol: str = "temporal_user", **prepare_kwargs: Any,
            ) -> tuple[Dataset, Split]:
        key = repr((spec, protocol, sorted(prepare_kwargs.items())))
        if key not in made:
            ds = prepare(spec, **prepare_kwargs).dataset
            made[key] = ds, make_split(ds, protocol)
        return made[key]

    return get


@pytest.fixture(scope="session")
def side_world(prepared_split: PreparedSplit) -> tuple[Dataset, Split]:
    """A synthetic StreamRec dataset with its user and item tables (500 users, 300 items,
    20 days) and its temporal_user split: the side-feature and two-tower tests."""
    return prepared_split("synthetic:users=500,items=300,days=20,seed=0")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch intra-op thread for a module of tiny models (faster on tiny data, and immune
    to spinning threads on a busy machine); the previous count is restored after it.
    Modules take it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
