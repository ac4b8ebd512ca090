"""The serving bundle's files (streamrec.serve.layout): the names and formats are a contract
with every registry already written, so they are spelled out literally here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from streamrec.serve.layout import (
    CatalogLayout,
    RankerLayout,
    RetrievalLayout,
    SessionLayout,
    catalog_meta,
)
from streamrec.serve.registry import ModelRegistry

#: the top-level files and directories of each entry (what registries hold on disk)
EXPECTED = {
    "retrieval": {"model", "ids.npz", "item_vectors.npy", "index", "covisit.npz", "content"},
    "ranker": {"model", "encoder.json", "features.json", "mf", "clicks.npz"},
    "session": {"manifest.json", "arrays.npz"},
    "catalog": {"items.parquet", "users.parquet", "state", "meta.json"},
}


def test_paths_are_the_registered_names(tmp_path: Path) -> None:
    r, k, c = RetrievalLayout(tmp_path), RankerLayout(tmp_path), CatalogLayout(tmp_path)
    names = {p.name for p in (r.model, r.ids, r.item_vectors, r.index, r.covisit, r.content)}
    assert names == EXPECTED["retrieval"]
    assert {p.name for p in (k.model, k.encoder, k.features, k.mf, k.clicks)} == EXPECTED["ranker"]
    assert {p.name for p in (c.items, c.users, c.state, c.meta)} == EXPECTED["catalog"]


def test_built_system_has_exactly_the_layout(tiny_registry: Path) -> None:
    reg = ModelRegistry(tiny_registry)
    for name, expected in EXPECTED.items():
        art = reg.resolve(name).artifacts
        assert {p.name for p in art.iterdir()} == expected, name
    meta = json.loads((reg.resolve("catalog").artifacts / "meta.json").read_text())
    assert list(meta) == ["data_start", "data_end", "events", "users", "items"]


def test_arrays_written_the_old_way_still_read(tmp_path: Path) -> None:
    """The readers accept files written by the code before the layout module (the same
    numpy calls, spelled out here)."""
    rng = np.random.default_rng(0)
    clicks = sp.random_array((7, 11), density=0.3, format="csr", rng=rng, dtype=np.float32)
    np.savez(tmp_path / "clicks.npz", data=clicks.data, indices=clicks.indices,
             indptr=clicks.indptr, shape=np.array(clicks.shape))
    vectors = rng.normal(size=(11, 4))
    np.save(tmp_path / "item_vectors.npy", vectors.astype(np.float32))
    got = RankerLayout(tmp_path).read_clicks()
    assert got.shape == (7, 11) and (got != clicks).nnz == 0
    back = RetrievalLayout(tmp_path).read_item_vectors()
    assert back.dtype == np.float32 and np.array_equal(back, vectors.astype(np.float32))


def test_writers_round_trip(tmp_path: Path) -> None:
    lay = RankerLayout(tmp_path)
    clicks = sp.csr_array(np.array([[0, 1, 0], [1, 0, 1]], np.float32))
    lay.write_clicks(clicks)
    with np.load(lay.clicks, allow_pickle=False) as z:
        assert sorted(z.files) == ["data", "indices", "indptr", "shape"]
    assert (lay.read_clicks() != clicks).nnz == 0
    ret = RetrievalLayout(tmp_path)
    ret.write_ids(np.array([5, 6]), np.array([7, 8, 9]))
    with np.load(ret.ids, allow_pickle=False) as z:
        assert z["user_ids"].tolist() == [5, 6] and z["item_ids"].tolist() == [7, 8, 9]
    ret.write_item_vectors(np.ones((3, 2), np.float64))
    assert np.load(ret.item_vectors).dtype == np.float32


def test_session_model_at_the_top_or_in_model_dir(tmp_path: Path) -> None:
    assert SessionLayout(tmp_path).model == tmp_path
    (tmp_path / "model").mkdir()
    assert SessionLayout(tmp_path).model == tmp_path / "model"


def test_catalog_meta_and_check(tmp_path: Path) -> None:
    events = pl.DataFrame({"timestamp": [30, 10, None, 20]})
    users, items = pl.DataFrame({"user_id": [1, 2]}), pl.DataFrame({"item_id": [1, 2, 3]})
    meta = catalog_meta(events, users, items)
    assert meta == {"data_start": 10, "data_end": 30, "events": 4, "users": 2, "items": 3}
    lay = CatalogLayout(tmp_path)
    lay.write_meta(meta)
    assert lay.read_meta() == meta
    with pytest.raises(FileNotFoundError, match="items.parquet"):
        lay.check()
    lay.write_tables(items, users)
    with pytest.raises(FileNotFoundError, match="state"):
        lay.check()
    assert lay.read_items().equals(items) and lay.read_users().equals(users)
