"""The session world (issue 5): generator, exact oracle, sessionising and session protocols."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats

from streamrec.data import splits
from streamrec.data.dataset import Dataset
from streamrec.data.spec import SpecError, load_raw, parse_spec
from streamrec.data.synthetic.sessions import (
    SessionConfig,
    SessionWorld,
    generate_sessions,
    oracle_hit_mass,
)
from tests.data._frames import events_dataset

SMALL = SessionConfig(n_users=400, n_items=150, n_categories=8)


@pytest.fixture(scope="module")
def world() -> SessionWorld:
    """5,000 sessions over 200 items (every item drawn, so dataset index = all items)."""
    return generate_sessions(SessionConfig(n_users=5_000, n_items=200, n_categories=10), seed=7)


def _lengths(w: SessionWorld) -> np.ndarray:
    return np.bincount(w.dataset.interactions.users, minlength=w.dataset.n_users)


# ---------------------------------------------------------------------------- generator
def test_deterministic_for_a_seed():
    a, b = generate_sessions(SMALL, seed=1), generate_sessions(SMALL, seed=1)
    c = generate_sessions(SMALL, seed=2)
    assert a.dataset.log.equals(b.dataset.log)
    assert a.dataset.items.equals(b.dataset.items) and a.dataset.users.equals(b.dataset.users)
    for name in ("world_item_prob", "user_pref", "user_compare", "event_category"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not a.dataset.log.equals(c.dataset.log)
    # the catalogue depends only on the catalogue options and the seed
    more = generate_sessions(SessionConfig(n_users=900, n_items=150, n_categories=8), seed=1)
    assert np.array_equal(more.world_item_prob, a.world_item_prob)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_users": 0}, "n_users"),
    ({"n_categories": 1}, "n_categories"),
    ({"n_items": 5, "n_categories": 6}, "n_items"),
    ({"category_alpha": 0.0}, "category_alpha"),
    ({"zipf_s": -1.0}, "zipf_s"),
    ({"behaviours": ("explorer", "surfer"), "behaviour_probs": (1, 1),
      "switch_probs": (0.1, 0.1)}, "behaviours"),
    ({"behaviour_probs": (0.5, 0.5)}, "behaviour_probs"),
    ({"behaviour_probs": (0.0, 0.0, 0.0)}, "behaviour_probs"),
    ({"switch_probs": (0.4, 1.5, 0.5)}, "switch_probs"),
    ({"min_length": 10, "max_length": 5}, "min_length"),
    ({"n_preferred": 30}, "n_preferred"),
    ({"comparison_set": (1, 3)}, "comparison_set"),
    ({"comparison_set": (2, 40)}, "comparison_set"),
    ({"step_seconds": (0, 10)}, "step_seconds"),
    ({"span_days": 0.0}, "span_days"),
])
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SessionConfig(**kwargs)


def test_schema_lengths_and_time():
    w = generate_sessions(SMALL, seed=3)
    ds, cfg = w.dataset, w.config
    log = ds.log
    assert log.schema["timestamp"] == pl.Int64 and log.schema["user_id"] == pl.Int64
    assert (log["value"] == 1.0).all()
    lengths = _lengths(w)
    assert ds.n_users == cfg.n_users
    assert lengths.min() >= cfg.min_length and lengths.max() <= cfg.max_length
    inter = ds.interactions
    same = inter.users[1:] == inter.users[:-1]  # rows are in (session, step) order
    gap = np.diff(inter.timestamps)[same]
    assert gap.min() >= cfg.step_seconds[0] and gap.max() <= cfg.step_seconds[1]
    starts = splits.session_starts(inter)
    assert starts.max() - starts.min() > 20 * 86_400  # spread over ~30 days
    # items table: category string and int; truth aligned with the vocabularies
    items = ds.items
    assert items["category"][0].startswith("c") and items.schema["category_id"] == pl.Int32
    assert np.array_equal(items["category_id"].to_numpy(), w.item_category)
    assert np.array_equal(w.event_category, w.item_category[inter.items])
    assert ds.users["behaviour"].to_list() == [cfg.behaviours[b] for b in w.user_behaviour]
    # category sizes and Zipf probabilities
    assert w.category_sizes.min() >= 1 and w.category_sizes.sum() == cfg.n_items
    per_cat = np.bincount(w.world_item_category, weights=w.world_item_prob)
    assert np.allclose(per_cat, 1.0)
    # preferences and comparison sets
    assert np.allclose(w.user_pref.sum(axis=1), 1.0)
    assert ((w.user_pref > 0).sum(axis=1) == cfg.n_preferred).all()
    is_cmp = np.asarray(cfg.behaviours)[w.user_behaviour] == "comparison"
    k = w.user_compare.sum(axis=1)
    assert (k[~is_cmp] == 0).all() and set(np.unique(k[is_cmp])) <= {2, 3}
    assert w.describe()["events"] == len(inter)


def test_behaviour_shares_and_switch_rates(world):
    d = world.describe()
    share = d["behaviour_share"]
    for name, p in zip(world.config.behaviours, world.config.behaviour_probs, strict=True):
        assert abs(share[name] - p) < 0.025
    for name, s in zip(world.config.behaviours, world.config.switch_probs, strict=True):
        assert abs(d["switch_rate"][name] - s) < 0.015
    # deep dives stay in their preferred categories; comparisons in their comparison set
    inter = world.dataset.interactions
    beh = np.asarray(world.config.behaviours)[world.user_behaviour[inter.users]]
    cat = world.event_category
    dd, cmp_ = beh == "deep_dive", beh == "comparison"
    assert (world.user_pref[inter.users[dd], cat[dd]] > 0).all()
    assert world.user_compare[inter.users[cmp_], cat[cmp_]].all()


# ---------------------------------------------------------------------------- oracle
def test_next_item_probs_rows_sum_to_one(world):
    ds = world.dataset
    assert ds.n_items == world.config.n_items  # every item drawn
    rows = np.arange(0, len(ds), 7)
    p = world.next_item_probs(rows)
    assert p.shape == (len(rows), ds.n_items) and p.dtype == np.float32
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    full = world.next_item_probs(rows, item_ids=np.arange(world.config.n_items))
    assert np.allclose(full.sum(axis=1), 1.0, atol=1e-5)
    # columns in another id order, unknown ids get 0
    ids = np.array([5, 3, 10_000])
    sub = world.next_item_probs(rows[:4], item_ids=ids)
    assert np.allclose(sub[:, :2], full[:4][:, [5, 3]]) and (sub[:, 2] == 0).all()
    # the drawn item always has positive probability
    assert (p[np.arange(len(rows)), ds.interactions.items[rows]] > 0).all()
    assert np.allclose(oracle_hit_mass(p, 10), np.sort(p, axis=1)[:, -10:].sum(axis=1))


def test_next_item_probs_match_empirical_frequencies_for_one_state():
    # explorers only: the state after an event is just its category, the same for every session
    cfg = SessionConfig(n_users=6_000, n_items=40, n_categories=3, behaviours=("explorer",),
                        behaviour_probs=(1.0,), switch_probs=(0.4,))
    w = generate_sessions(cfg, seed=11)
    inter = w.dataset.interactions
    for state in range(3):
        rows = np.flatnonzero(w.event_prev_category == state)
        assert len(rows) > 10_000
        p = w.next_item_probs(rows[:1]).astype(np.float64)[0]
        assert np.allclose(w.next_item_probs(rows[-5:]), p, atol=1e-7)  # one state
        counts = np.bincount(inter.items[rows], minlength=w.dataset.n_items)
        assert 0.5 * np.abs(counts / len(rows) - p).sum() < 0.02  # TV distance
        assert stats.chisquare(counts, p / p.sum() * len(rows)).pvalue > 1e-3
    first = np.flatnonzero(w.event_prev_category < 0)
    assert len(first) == cfg.n_users


def test_category_probs_match_empirical_transitions(world):
    # every behaviour: in each cell (behaviour, previous category, next category) the number
    # of transitions matches the sum of the oracle's probabilities (Pearson chi-square); a
    # 20% error in the deep-dive switch targets fails this with p ~ 1e-25
    inter = world.dataset.interactions
    rows = np.flatnonzero(world.event_prev_category >= 0)
    c, nb = world.n_categories, len(world.config.behaviours)
    group = world.user_behaviour[inter.users[rows]] * c + world.event_prev_category[rows]
    expected = np.zeros((nb * c, c))
    for lo in range(0, len(rows), 5_000):
        r = rows[lo: lo + 5_000]
        np.add.at(expected, group[lo: lo + 5_000],
                  world.category_probs(inter.users[r], world.event_prev_category[r]))
    observed = np.zeros((nb * c, c))
    np.add.at(observed, (group, world.event_category[rows]), 1)
    ok = expected >= 5
    chi2 = ((observed - expected) ** 2 / np.where(ok, expected, 1.0))[ok].sum()
    df = ok.sum() - ok.any(axis=1).sum()
    assert stats.chi2.sf(chi2, df) > 1e-3
    # step 0 by behaviour: preference weights / uniform over the comparison set
    first = np.flatnonzero(world.event_prev_category < 0)
    p0 = world.category_probs(inter.users[first], world.event_prev_category[first])
    counts = np.bincount(world.event_category[first], minlength=c)
    assert stats.chisquare(counts, p0.sum(axis=0) / p0.sum() * counts.sum()).pvalue > 1e-3


def test_category_probs_by_behaviour():
    cfg = SessionConfig(n_users=300, n_items=60, n_categories=6, n_preferred=1,
                        comparison_set=(3, 3))
    w = generate_sessions(cfg, seed=4)
    names = np.asarray(cfg.behaviours)[w.user_behaviour]
    s = dict(zip(cfg.behaviours, cfg.switch_probs, strict=True))
    dd = int(np.flatnonzero(names == "deep_dive")[0])
    home = int(np.argmax(w.user_pref[dd]))
    other = (home + 1) % 6
    p = w.category_probs(np.array([dd, dd, dd]), np.array([-1, home, other]))
    assert np.allclose(p[0], np.eye(6)[home])  # step 0: the only preferred category
    # single preferred category: switching goes uniformly anywhere else
    assert np.isclose(p[1, home], 1 - s["deep_dive"])
    assert np.allclose(np.delete(p[1], home), s["deep_dive"] / 5)
    # elsewhere: switching returns to the preferred category
    assert np.isclose(p[2, other], 1 - s["deep_dive"]) and np.isclose(p[2, home], s["deep_dive"])
    cm = int(np.flatnonzero(names == "comparison")[0])
    cset = np.flatnonzero(w.user_compare[cm])
    q = w.category_probs(np.array([cm, cm]), np.array([-1, cset[0]]))
    assert np.allclose(q[0][cset], 1 / 3)
    assert np.isclose(q[1, cset[0]], 1 - s["comparison"])
    assert np.allclose(q[1, cset[1:]], s["comparison"] / 2) and np.isclose(q[1].sum(), 1)
    ex = int(np.flatnonzero(names == "explorer")[0])
    r = w.category_probs(np.array([ex]), np.array([2]))[0]
    assert np.isclose(r[2], 1 - s["explorer"]) and np.allclose(np.delete(r, 2), s["explorer"] / 5)


# ---------------------------------------------------------------------------- sessions


def test_session_ids_gap_boundaries_two_users():
    # user "b" rows come first in the file; gap exactly 1800 stays, 1801 splits
    ds = events_dataset(["b", "a", "a", "a", "a", "b", "b"],
             [1, 2, 3, 4, 5, 6, 7],
             [100, 0, 1800, 3601, 3700, 2000, 10])
    sid = splits.session_ids(ds.interactions, gap=1800)
    # a: t=0, 1800 (gap 1800: same), 3601 (gap 1801: new), 3700 -> sessions 0, 0, 1, 1
    # b: t=10, 100 (same), 2000 (gap 1900: new) -> sessions 2, 2, 3
    assert sid.tolist() == [2, 0, 0, 1, 1, 3, 2]
    assert splits.session_ids(ds.interactions, gap=10_000).tolist() == [1, 0, 0, 0, 0, 1, 1]


def test_sessions_dataset_counts_dropped_short_sessions():
    ds = events_dataset(["a"] * 5 + ["b"] * 4,
             [1, 2, 3, 4, 5, 1, 2, 3, 4],
             [0, 10, 20, 5000, 5010, 0, 9000, 9010, 9020])
    res = splits.sessions_dataset(ds, gap=1800, min_length=3)
    # a: [0,10,20] kept, [5000,5010] dropped; b: [0] dropped, [9000..9020] kept
    assert res.stats["sessions"] == 4 and res.stats["sessions_kept"] == 2
    assert res.stats["sessions_dropped"] == 2
    assert res.stats["rows_dropped"] == 3 and res.stats["rows_kept"] == 6
    assert sorted(res.dropped_rows.tolist()) == [3, 4, 5]
    out = res.dataset
    assert out.n_users == 2 and len(out) == 6
    users = out.users
    assert users["user_id_orig"].to_list() == ["a", "b"]
    assert users["session_index"].to_list() == [0, 1]
    assert users["length"].to_list() == [3, 3] and users["start_ts"].to_list() == [0, 9000]
    assert out.log["user_id_orig"].to_list() == ["a", "a", "a", "b", "b", "b"]


def test_sessions_dataset_recovers_generated_sessions():
    w = generate_sessions(SMALL, seed=5)
    res = splits.sessions_dataset(w.dataset, gap=1800, min_length=1)
    assert res.stats["sessions"] == SMALL.n_users and res.stats["rows_dropped"] == 0
    assert np.array_equal(res.dataset.interactions.items, w.dataset.interactions.items)


# ---------------------------------------------------------------------------- protocols
def test_case_study_whole_sessions_ratios_deterministic():
    w = generate_sessions(SessionConfig(n_users=1_000, n_items=300, n_categories=8), seed=2)
    ds = w.dataset
    a = splits.make_split(ds, "case_study", seed=3)
    b = splits.case_study(ds, seed=3)
    c = splits.case_study(ds, seed=4)
    assert a.protocol == "case_study"
    assert np.array_equal(a.test.users, b.test.users) and np.array_equal(a.test.items, b.test.items)
    assert not np.array_equal(a.user_vocab.ids, c.user_vocab.ids)
    ids = {name: set(a.user_vocab.decode(getattr(a, name).users).tolist())
           for name in ("train", "valid", "test")}
    assert not (ids["train"] & ids["valid"] or ids["train"] & ids["test"]
                or ids["valid"] & ids["test"])
    assert [len(v) for v in ids.values()] == [800, 100, 100]
    # whole sessions: every part holds each of its sessions' full length
    lengths = _lengths(w)
    for name in ("train", "valid", "test"):
        part = getattr(a, name)
        orig = ds.user_vocab.encode(a.user_vocab.decode(part.users))
        assert np.array_equal(np.bincount(orig, minlength=ds.n_users)[np.unique(orig)],
                              lengths[np.unique(orig)])
    # held-out sessions are cold users, kept even with cold="drop" (which applies to items)
    assert a.valid.users.min() >= a.n_users and a.test.users.min() >= a.n_users
    d = splits.case_study(ds, seed=3, cold="drop")
    assert len(d.test.users) > 0 and d.test.items.max() < d.n_items
    part = splits.assign_case_study(ds.interactions, seed=3)
    assert np.array_equal(ds.interactions.items[part == splits.TEST],
                          a.item_vocab.ids[a.test.items])


def test_session_temporal_orders_sessions_by_start():
    w = generate_sessions(SessionConfig(n_users=1_000, n_items=300, n_categories=8), seed=2)
    ds = w.dataset
    s = splits.make_split(ds, "session_temporal")
    assert s.protocol == "session_temporal"
    start = splits.session_starts(ds.interactions)
    first = {}
    for name in ("train", "valid", "test"):
        orig = ds.user_vocab.encode(s.user_vocab.decode(np.unique(getattr(s, name).users)))
        first[name] = start[orig]
    assert first["train"].max() < first["valid"].min()
    assert first["valid"].max() < first["test"].min()
    assert abs(len(first["test"]) - 100) <= 2 and abs(len(first["valid"]) - 100) <= 2
    with pytest.raises(ValueError, match="session_temporal"):
        splits.session_temporal(ds, 0.6, 0.5)


def test_protocols_registered():
    assert {"case_study", "session_temporal", "leave_last_out"} <= set(splits.PROTOCOLS)


# ---------------------------------------------------------------------------- spec
def test_spec_parsing_and_load_raw():
    spec = parse_spec("synthetic-sessions:users=300,items=100,seed=3")
    assert spec.kind == "synthetic-sessions" and spec.path is None
    assert spec.options == {"users": "300", "items": "100", "seed": "3"}
    assert str(spec) == "synthetic-sessions:users=300,items=100,seed=3"
    assert parse_spec("synthetic-sessions").options == {}
    raw = load_raw(spec)
    assert raw.name == "synthetic-sessions"
    assert raw.events["user_id"].n_unique() == 300 and raw.events["item_id"].max() < 100
    assert {"category", "category_id"} <= set(raw.items.columns)
    assert "behaviour" in raw.users.columns
    w = generate_sessions(SessionConfig(n_users=300, n_items=100), seed=3)
    assert raw.events.equals(w.dataset.log)
    ds = Dataset.from_raw(raw)  # the pipeline's dataset has the world's index spaces
    assert ds.item_vocab == w.dataset.item_vocab and ds.user_vocab == w.dataset.user_vocab
    tup = load_raw("synthetic-sessions:users=50,items=60,categories=4,switch_probs=0.1/0.2/0.3")
    assert tup.events["user_id"].n_unique() == 50
    with pytest.raises(SpecError, match="unknown synthetic-sessions option"):
        load_raw("synthetic-sessions:nope=1")
    with pytest.raises(SpecError, match="expected int"):
        load_raw("synthetic-sessions:users=1.5")
    with pytest.raises(SpecError, match="key=value"):
        parse_spec("synthetic-sessions:users")
    with pytest.raises(SpecError, match="n_categories"):
        load_raw("synthetic-sessions:items=3,categories=5")
