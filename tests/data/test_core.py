"""Vocabulary, Interactions and Dataset: hand-computed cases."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streamrec.data.dataset import Dataset
from streamrec.data.interactions import Interactions
from streamrec.data.vocab import UnknownIdError, Vocabulary


def test_vocab_roundtrip_ints_and_strings(tmp_path):
    v = Vocabulary.fit([30, 10, 20, 10])
    assert v.ids.tolist() == [10, 20, 30]
    assert v.encode([20, 30, 10]).tolist() == [1, 2, 0]
    assert v.decode([2, 0]).tolist() == [30, 10]
    s = Vocabulary.fit(np.array(["b", "a", "c"]), name="item")
    assert s.encode(["c", "a"]).tolist() == [2, 0]
    s.save(tmp_path / "v.npz")
    assert Vocabulary.load(tmp_path / "v.npz") == s


def test_vocab_unknown_policies():
    v = Vocabulary.fit([1, 2, 3], name="user")
    with pytest.raises(UnknownIdError, match="2 user id"):
        v.encode([1, 7, 9])
    assert v.encode([1, 7, 3], unknown="reserved").tolist() == [0, 3, 2]
    assert v.unknown_index == 3
    assert v.contains([3, 4]).tolist() == [True, False]
    with pytest.raises(IndexError):
        v.decode([3])
    with pytest.raises(ValueError, match="duplicate"):
        Vocabulary([1, 1])


def test_vocab_extend_and_subset():
    v = Vocabulary.fit([5, 1])
    e = v.extend([9, 1, 7, 9])
    assert e.ids.tolist() == [1, 5, 7, 9]
    assert v.subset(np.array([1])).ids.tolist() == [5]


def _small() -> Interactions:
    # user 0: items 2 (t=5), 0 (t=1), 1 (t=5, after item 2 in file order); user 2: item 1
    return Interactions.from_arrays(
        users=[0, 0, 2, 0], items=[2, 0, 1, 1], timestamps=[5, 1, 9, 5],
        values=[1.0, 2.0, 3.0, 4.0], n_users=3, n_items=4,
    )


def test_interactions_are_immutable_and_validated():
    x = _small()
    with pytest.raises(ValueError):
        x.users[0] = 1
    with pytest.raises(ValueError, match="item index"):
        Interactions.from_arrays([0], [5], n_users=1, n_items=3)
    with pytest.raises(ValueError, match="rows"):
        Interactions(np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2), n_users=1, n_items=1)
    src = np.array([0, 1], dtype=np.int32)
    y = Interactions.from_arrays(src, src, n_users=2, n_items=2)
    src[0] = 1  # the caller's array is not shared
    assert y.users.tolist() == [0, 1]


def test_to_csr_modes():
    x = Interactions.from_arrays([0, 0, 1], [1, 1, 0], values=[2.0, 3.0, 4.0], n_users=2, n_items=2)
    assert x.to_csr().toarray().tolist() == [[0, 1], [1, 0]]
    assert x.to_csr(values="count").toarray().tolist() == [[0, 2], [1, 0]]
    assert x.to_csr(values="values").toarray().tolist() == [[0, 5], [4, 0]]


def test_sequences_left_padded_chronological_stable():
    seqs, lengths = _small().sequences(max_len=4)
    # user 0 in time order: item 0 (t=1), item 2 (t=5), item 1 (t=5, later in file); +1 offset
    assert seqs.tolist() == [[0, 1, 3, 2], [0, 0, 0, 0], [0, 0, 0, 2]]
    assert lengths.tolist() == [3, 0, 1]
    seqs2, lengths2 = _small().sequences(max_len=2, offset=0, users=np.array([0]))
    assert seqs2.tolist() == [[2, 1]] and lengths2.tolist() == [2]


def test_sequences_match_a_python_reference():
    rng = np.random.default_rng(0)
    n = 500
    x = Interactions.from_arrays(rng.integers(0, 20, n), rng.integers(0, 30, n),
                                 rng.integers(0, 50, n), n_users=20, n_items=30)
    seqs, _ = x.sequences(max_len=7)
    for u in range(20):
        rows = [k for k in range(n) if x.users[k] == u]
        rows.sort(key=lambda k: (x.timestamps[k], k))
        hist = [int(x.items[k]) + 1 for k in rows][-7:]
        assert seqs[u].tolist() == [0] * (7 - len(hist)) + hist


def test_save_load_roundtrip(tmp_path):
    x = Interactions.from_arrays([0, 1], [1, 0], n_users=2, n_items=2,
                                 events=np.array([0, 1]), event_names=("click", "play"))
    x.save(tmp_path / "x.npz")
    y = Interactions.load(tmp_path / "x.npz")
    assert y.event_names == ("click", "play") and y.events.tolist() == [0, 1]
    assert y.to_polars()["event"].to_list() == ["click", "play"]


def test_dataset_from_frames_aligns_side_tables(tmp_path):
    ev = pl.DataFrame({"user_id": ["u3", "u1", "u3"], "item_id": [7, 5, 5],
                       "timestamp": [3, 1, 2], "event": ["play", "click", "play"]})
    users = pl.DataFrame({"user_id": ["u1", "u9"], "age": [31, 40]})
    ds = Dataset.from_frames(ev, users=users)
    assert ds.user_vocab.ids.tolist() == ["u1", "u3"]
    assert ds.users["age"].to_list() == [31, None]
    assert ds.interactions.events.tolist() == [1, 0, 1]
    d = ds.describe()
    assert (d["interactions"], d["users"], d["items"]) == (3, 2, 2)
    assert d["event_types"] == {"click": 1, "play": 2}
    assert ds.events_frame()["user_id"].to_list() == ["u3", "u1", "u3"]
    with pytest.raises(ValueError, match="null"):
        Dataset.from_frames(pl.DataFrame({"user_id": [1, None], "item_id": [1, 2]}))
