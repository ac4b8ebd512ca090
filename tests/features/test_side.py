"""Side features (streamrec.features.side): the entity tables, the encoder's unknown codes,
datasets without side tables, and the features of the synthetic world."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streamrec.data.dataset import Dataset
from streamrec.data.splits import make_split
from streamrec.features.side import EntityFeatures, FeatureEncoder, side_features


def test_entity_features_validate() -> None:
    with pytest.raises(ValueError, match="cardinalit"):
        EntityFeatures(3, categorical=np.zeros((3, 2), np.int64), cardinalities=(2,))
    with pytest.raises(ValueError, match="codes"):
        EntityFeatures(3, categorical=np.array([[0], [1], [5]]), cardinalities=(3,))
    with pytest.raises(ValueError, match="shape"):
        EntityFeatures(3, numeric=np.zeros((4, 1)))
    e = EntityFeatures(3)
    assert e.is_empty and e.categorical.shape == (3, 0) and e.multi_hot.dtype == np.float32


def test_side_features_on_the_synthetic_world(side_world) -> None:
    ds, sp = side_world
    side = side_features(ds, sp)
    assert side.n_users == len(sp.user_vocab) and side.n_items == len(sp.item_vocab)
    u, i = side.users, side.items
    assert {"tier", "platform", "country", "top_category"} <= set(u.cat_names)
    assert {"category", "creator_id", "length_seconds_bucket"} <= set(i.cat_names)
    assert "title" not in i.cat_names and "description" not in i.cat_names  # free text
    assert set(i.num_names) == {"length_seconds", "release_ts"}
    for e in (u, i):
        assert e.categorical.dtype == np.int64 and e.numeric.dtype == np.float32
        assert (e.categorical >= 0).all()
        assert (e.categorical < np.asarray(e.cardinalities)).all()
        assert np.isfinite(e.numeric).all() and np.abs(e.numeric).max() <= 5.0
    # nulls (platform/country, length_seconds in the world) get the unknown code 0
    plat = u.categorical[:, u.cat_names.index("platform")]
    row_of = ds.user_vocab.lookup(sp.user_vocab.ids)[0]
    is_null = ds.users["platform"].is_null().to_numpy()[row_of]
    assert is_null.any() and (plat[is_null] == 0).all() and (plat[~is_null] > 0).all()
    # rows follow the split's vocabulary: the category codes agree with the table
    cat = i.categorical[:, i.cat_names.index("category")]
    levels = dict(i.encoder.categorical)["category"]
    rows = ds.item_vocab.lookup(sp.item_vocab.ids)[0]
    want = ds.items["category"].to_numpy()[rows]
    assert all(levels[c - 1] == w for c, w in zip(cat, want, strict=True))


def test_unseen_and_null_values_map_to_unknown() -> None:
    table = pl.DataFrame({"user_id": [1, 2, 3, 4, 5, 6],
                          "tier": ["free", "free", "paid", "paid", None, "gold"],
                          "age": ["20", "30", "40", "35", None, "x"],
                          "tags": [["a", "b"], ["a"], ["b"], ["a"], None, ["b", "z"]]})
    enc = FeatureEncoder.fit(table, key="user_id", rows=np.arange(4), n_buckets=2)
    assert dict(enc.categorical)["tier"] == ("free", "paid")  # "gold" is not in rows 0-3
    new = pl.DataFrame({"user_id": [7, 8, 9], "tier": ["free", "vip", None],
                        "age": ["35", "old", None], "tags": [["a", "q"], [], None]})
    out = enc.transform(new)
    tier = out.categorical[:, out.cat_names.index("tier")]
    assert tier.tolist() == [1, 0, 0]  # unseen "vip" and null -> unknown
    assert out.numeric[1:, 0].tolist() == [0.0, 0.0]  # unparsable and null -> the mean
    assert out.categorical[1:, out.cat_names.index("age_bucket")].tolist() == [0, 0]
    assert out.multi_hot.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert out.multi_names == ("tags=a", "tags=b")
    # a missing column encodes as unknown instead of crashing
    assert (enc.transform(new.drop("tier")).categorical[:, 0] == 0).all()


def test_side_features_without_tables_and_with_missing_rows() -> None:
    events = pl.DataFrame({"user_id": np.repeat([1, 2, 3, 4], 5),
                           "item_id": np.tile([10, 11, 12, 13, 14], 4),
                           "timestamp": np.arange(20)})
    ds = Dataset.from_frames(events)
    sp = make_split(ds, "temporal_user")
    side = side_features(ds, sp)
    assert side.users.is_empty and side.items.is_empty
    users = pl.DataFrame({"user_id": [1, 2, 4], "tier": ["a", "b", "a"]})  # 3 has no row
    ds2 = Dataset.from_frames(events, users=users)
    side2 = side_features(ds2, make_split(ds2, "temporal_user"), min_count=1)
    tier = side2.users.categorical[:, 0]
    row3 = int(np.flatnonzero(make_split(ds2, "temporal_user").user_vocab.ids == 3)[0])
    assert tier[row3] == 0 and (np.delete(tier, row3) > 0).all()
