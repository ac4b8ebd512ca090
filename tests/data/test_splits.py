"""Split protocols: exact rounding, stable ties, train-only vocabularies, cold handling."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streamrec.data import splits
from streamrec.data.dataset import Dataset
from tests._paths import ML100K, needs_ml100k
from tests.data._frames import events_dataset


def test_temporal_user_floor_rounding_and_ties():
    # user 1 has 10 events -> 8/1/1; user 2 has 5 -> floor(4.0)=4 train, floor(4.5)=4 -> 0 valid, 1 test
    u = [1] * 10 + [2] * 5
    it = list(range(10)) + [0, 1, 2, 3, 4]
    ts = [9, 8, 7, 6, 5, 4, 3, 2, 1, 1] + [1, 1, 1, 1, 1]
    s = splits.temporal_user(events_dataset(u, it, ts))
    f = splits.split_frames(s)
    assert s.counts() == {"train": 12, "valid": 1, "test": 2}
    # user 1 in time order: items 8, 9 (both t=1, file order kept), 7, 6, ..., 0
    assert f["valid"]["item_id"].to_list() == [1]
    assert sorted(f["test"].filter(pl.col("user_id") == 1)["item_id"].to_list()) == [0]
    assert f["test"].filter(pl.col("user_id") == 2)["item_id"].to_list() == [4]


def test_vocab_fitted_on_train_only_and_cold_policy():
    # item 99 occurs only in user 1's last event -> cold
    u = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    it = [0, 1, 2, 3, 4, 5, 6, 7, 8, 99]
    s = splits.temporal_user(events_dataset(u, it, list(range(10))))
    assert s.n_items == 8 and s.train.n_items == 8
    assert s.stats["cold_items"]["test"] == 1 and s.stats["cold_rows"]["test"] == 1
    assert s.test.items.tolist() == [9]  # kept, with an index after the train ones
    assert s.item_vocab.decode([9]).tolist() == [99]
    d = splits.temporal_user(events_dataset(u, it, list(range(10))), cold="drop")
    assert len(d.test) == 0 and len(d.item_vocab) == 8


def test_leave_last_out_and_short_users():
    s = splits.leave_last_out(events_dataset([1, 1, 1, 1, 2, 2],
                                             [0, 1, 2, 3, 0, 1], [4, 3, 2, 1, 1, 2]))
    f = splits.split_frames(s)
    assert f["test"]["item_id"].to_list() == [0]  # user 1's latest (t=4)
    assert f["valid"]["item_id"].to_list() == [1]
    assert len(f["train"].filter(pl.col("user_id") == 2)) == 2  # fewer than 3 events


def test_temporal_global_one_cut():
    ts = list(range(100))
    s = splits.temporal_global(events_dataset([i % 5 for i in ts],
                                              [i % 7 for i in ts], ts), 0.1, 0.2)
    assert s.counts() == {"train": 70, "valid": 10, "test": 20}
    f = splits.split_frames(s)
    assert f["train"]["timestamp"].max() < f["valid"]["timestamp"].min()
    assert f["valid"]["timestamp"].max() < f["test"]["timestamp"].min()


def test_random_user_is_seeded_and_per_user():
    rng = np.random.default_rng(1)
    ds = events_dataset(rng.integers(0, 30, 600).tolist(),
                        rng.integers(0, 50, 600).tolist(), list(range(600)))
    a, b = splits.random_user(ds, seed=3), splits.random_user(ds, seed=3)
    c = splits.random_user(ds, seed=4)
    assert np.array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.test.timestamps, c.test.timestamps)
    assert a.counts() == splits.temporal_user(ds).counts()  # same floor rule


def test_parquet_roundtrip(tmp_path):
    rng = np.random.default_rng(2)
    ds = events_dataset(rng.integers(0, 30, 400).tolist(),
                        rng.integers(0, 60, 400).tolist(), list(range(400)))
    s = splits.temporal_user(ds)
    splits.write_split(s, tmp_path)
    r = splits.read_split(tmp_path)
    for part in ("train", "valid", "test"):
        assert np.array_equal(getattr(r, part).users, getattr(s, part).users)
        assert np.array_equal(getattr(r, part).items, getattr(s, part).items)
    assert r.protocol == "temporal_user"


def test_bad_arguments():
    ds = events_dataset([1, 1], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="sum"):
        splits.temporal_user(ds, (0.5, 0.1, 0.1))
    with pytest.raises(ValueError, match="unknown split protocol"):
        splits.make_split(ds, "nope")


@pytest.mark.slow
@needs_ml100k
def test_ml100k_temporal_user_counts_match_the_peers():
    from streamrec.data.sources import read_source

    ds = Dataset.from_raw(read_source("recbole", ML100K))
    s = splits.temporal_user(ds)
    assert s.counts() == {"train": 79_619, "valid": 9_942, "test": 10_439}
    assert s.n_users == 943
