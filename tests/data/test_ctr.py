"""Click data: CTRData and its schema, the random and temporal splits, and the case-study
click generator (streamrec.data.ctr, streamrec.data.synthetic.clicks)."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.data.ctr import CTRData, FeatureSchema, random_split, temporal_split
from streamrec.data.spec import SpecError, click_config_from_options, load_raw
from streamrec.data.synthetic.clicks import ClickConfig, generate_clicks


def _data(n: int = 50, seed: int = 0) -> CTRData:
    rng = np.random.default_rng(seed)
    schema = FeatureSchema(("a", "b"), ("c",), (4,))
    return CTRData(schema, rng.standard_normal((n, 2)), rng.integers(0, 4, (n, 1)),
                   labels=(rng.random(n) < 0.4).astype(np.float32),
                   timestamps=rng.permutation(n))


# ---------------------------------------------------------------------------- data
def test_ctrdata_errors_name_row_and_field():
    schema = FeatureSchema(("a", "b"), ("c",), (4,))
    dense = np.zeros((3, 2))
    with pytest.raises(ValueError, match="categorical row 1, field 'c': code 4"):
        CTRData(schema, dense, np.array([[0], [4], [1]]))
    bad = dense.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="dense row 2, field 'b'"):
        CTRData(schema, bad, np.zeros((3, 1)))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        CTRData(schema, dense, np.zeros((3, 1)), labels=np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        CTRData(schema, np.zeros((3, 3)), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="item_field"):
        FeatureSchema((), ("c",), (3,), item_field="d")


def test_schema_round_trip_and_take():
    d = _data()
    s = FeatureSchema(("a",), ("u", "i"), (3, 7), n_history_items=7, item_field="i")
    assert FeatureSchema.from_array(s.to_array()) == s
    part = d.take(np.array([3, 1]))
    np.testing.assert_array_equal(part.dense, d.dense[[3, 1]])
    np.testing.assert_array_equal(part.labels, d.labels[[3, 1]])
    assert len(d.take(d.labels == 1)) == int(d.labels.sum())


def test_splits_partition_rows():
    d = _data(101)
    sp = random_split(d, (0.6, 0.2, 0.2), seed=1)
    assert [len(p) for p in sp] == [61, 20, 20]
    rows = np.concatenate([p.timestamps for p in sp])
    assert sorted(rows) == list(range(101))  # every row exactly once
    again = random_split(d, (0.6, 0.2, 0.2), seed=1)
    np.testing.assert_array_equal(again.test.timestamps, sp.test.timestamps)
    t = temporal_split(d, (0.8, 0.1, 0.1))
    assert t.train.timestamps.max() < t.valid.timestamps.min() <= t.valid.timestamps.max() < \
        t.test.timestamps.min()
    with pytest.raises(ValueError, match="sum"):
        random_split(d, (0.5, 0.2, 0.2))


# ---------------------------------------------------------------------------- generator
def test_click_generator_is_the_documented_model():
    cfg = ClickConfig(n_samples=4000, seed=7)
    d = generate_clicks(cfg)
    assert d.dense.shape == (4000, 20) and d.schema.dense[0] == "x0"
    x = d.dense.astype(np.float64)
    logit = (cfg.bias + x[:, 4:12] @ np.asarray(cfg.main) + cfg.interaction * x[:, 0] * x[:, 1]
             + cfg.square * (x[:, 2] ** 2 - 1) + cfg.periodic * np.sin(np.pi * x[:, 3]))
    np.testing.assert_allclose(d.truth, 1 / (1 + np.exp(-logit)), rtol=1e-5)
    assert abs(d.labels.mean() - d.truth.mean()) < 0.03  # Bernoulli(p)
    np.testing.assert_array_equal(generate_clicks(cfg).labels, d.labels)  # seeded
    assert click_config_from_options({"n": "100", "seed": "3", "main": "1/2"}) == ClickConfig(
        n_samples=100, seed=3, main=(1.0, 2.0))
    with pytest.raises(SpecError, match="unknown synthetic-clicks option"):
        click_config_from_options({"rows": "3"})
    with pytest.raises(SpecError, match="click models"):
        load_raw("synthetic-clicks")
