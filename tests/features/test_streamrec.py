"""StreamRec features: labels, point-in-time correctness (brute force), encoders, content
embeddings, MI ranking and the ``features rank`` command."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from streamrec.data.clean import drop_duplicates
from streamrec.data.synthetic.world import WorldConfig, generate_world
from streamrec.features.content import content_embeddings, item_texts
from streamrec.features.encoders import CTREncoder, hash_codes, one_hot, to_ctr_data
from streamrec.features.selection import frame_matrix, rank_features
from streamrec.features.streamrec import (
    DENSE_FEATURES,
    FEATURES,
    FeatureConfig,
    impressions_from_events,
    resolve_mf_cutoff,
    streamrec_encoder,
    streamrec_features,
    streamrec_impressions,
)

TINY = WorldConfig(n_users=150, n_items=120, n_days=10, seed=3)
L = 5


@pytest.fixture(scope="module")
def world():
    return generate_world(TINY)


@pytest.fixture(scope="module")
def events(world):
    return drop_duplicates(world.events, subset=["event_id"])[0]  # exact duplicates out


@pytest.fixture(scope="module")
def impressions(events):
    return impressions_from_events(events, dedupe=False)


@pytest.fixture(scope="module")
def frame(world, events, impressions):
    return streamrec_features(events, world.users, world.items, impressions, history_len=L)


# ---------------------------------------------------------------------------- labels
def test_labels_attribute_each_click_to_the_latest_impression(events, impressions):
    assert impressions.height == (events["event"] == "impression").sum()
    assert set(impressions["label"].unique().to_list()) <= {0, 1}
    clicks = events.filter(pl.col("event") == "click")
    rng = np.random.default_rng(0)
    imp_rows = impressions.to_dicts()
    for k in rng.choice(len(imp_rows), size=40, replace=False):  # a loop over sampled rows
        r = imp_rows[int(k)]
        same = (pl.col("user_id") == r["user_id"]) & (pl.col("item_id") == r["item_id"]) & (
            pl.col("session_id") == r["session_id"])
        later_imp = impressions.filter(same & (pl.col("timestamp") > r["timestamp"]))
        nxt = later_imp["timestamp"].min() if later_imp.height else math.inf
        hit = clicks.filter(same & (pl.col("timestamp") >= r["timestamp"])
                            & (pl.col("timestamp") < nxt))
        assert r["label"] == int(hit.height > 0), r
    # every click that follows an impression makes exactly that impression positive
    assert impressions["label"].sum() > 0


def test_hand_made_log_priors_and_counts():
    ev = pl.DataFrame({
        "event_id": [1, 2, 3, 4, 5, 6, 7],
        "user_id": [1, 1, 1, 1, 2, 2, 2],
        "item_id": [10, 11, 10, 10, 10, 11, 11],
        "session_id": [1, 1, 1, 1, 2, 2, 2],
        "timestamp": [100, 100, 105, 106, 200, 200, 210],
        "event": ["impression", "impression", "click", "play", "impression", "impression",
                  "click"],
        "value": [1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0],
    })
    users = pl.DataFrame({"user_id": [1, 2], "tier": ["free", "premium"],
                          "platform": ["web", "tv"], "signup_ts": [0, 150]})
    items = pl.DataFrame({"item_id": [10, 11], "category": ["a", "b"], "creator_id": [7, 7],
                          "length_seconds": [600, None], "release_ts": [50, 0]})
    imp = impressions_from_events(ev)
    assert imp["label"].to_list() == [1, 0, 0, 1]  # (u1, i10), (u1, i11), (u2, i10), (u2, i11)
    cfg = FeatureConfig()
    f = streamrec_features(ev, users, items, imp, mf_cutoff=0, history_len=3, config=cfg)
    assert f.height == 4
    first, second = f.row(0, named=True), f.row(2, named=True)
    w, p = cfg.item_prior_weight, cfg.prior_ctr
    # the first impressions see nothing: priors, zero counts, recency since sign-up
    assert first["item_engagement_rate"] == pytest.approx(p)
    assert first["item_completion_rate"] == pytest.approx(cfg.prior_completion)
    assert first["item_creator_reputation"] == pytest.approx(p)
    assert first["user_session_count"] == 0 and first["item_popularity"] == 0
    assert first["user_recency"] == pytest.approx(math.log1p(100))
    assert first["history"] == []
    assert first["item_length_minutes"] == pytest.approx(10.0)
    assert f.row(1, named=True)["item_length_minutes"] is None
    # u2 at t=200 sees u1's impression, click and play of item 10 (creator 7: 2 imps, 1 click)
    assert second["item_engagement_rate"] == pytest.approx((1 + w * p) / (1 + w))
    assert second["item_completion_rate"] == pytest.approx((0.8 + w * 0.5) / (1 + w))
    assert second["item_creator_reputation"] == pytest.approx((1 + w * p) / (2 + w))
    assert second["item_popularity"] == pytest.approx(math.log1p(1))
    assert second["user_recency"] == pytest.approx(math.log1p(50))  # since sign-up at 150
    assert second["user_platform"] == "tv" and second["user_subscription_tier"] == "premium"
    assert second["item_freshness"] == pytest.approx(150 / 86400)
    assert second["history"] == []
    assert f.row(3, named=True)["history"] == []  # the same slate: nothing seen yet


# ---------------------------------------------------------------------------- point in time
def _reference(ev: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame, row: dict,
               cfg: FeatureConfig, n_cat: int) -> dict:
    """The features of one impression by brute force from the events strictly before it."""
    u, i, t = row["user_id"], row["item_id"], row["timestamp"]
    past = ev.filter(pl.col("timestamp") < t)
    it = items.filter(pl.col("item_id") == i).row(0, named=True)
    us = users.filter(pl.col("user_id") == u).row(0, named=True)
    pu = past.filter(pl.col("user_id") == u)
    pi = past.filter(pl.col("item_id") == i)
    pc = past.filter(pl.col("creator_id") == it["creator_id"])
    puc = pu.filter(pl.col("category") == it["category"])
    plays_u = pu.filter(pl.col("event") == "play")
    n = lambda f, e: f.filter(pl.col("event") == e).height  # noqa: E731
    out = {}
    days = (pu["timestamp"] // 86400).n_unique()
    out["user_activity_level"] = pu.height / max(days, 1)
    sessions = pu.group_by("session_id").agg(
        (pl.col("timestamp").max() - pl.col("timestamp").min()).alias("span"))
    out["user_session_count"] = sessions.height
    out["user_avg_session_length"] = sessions["span"].sum() / max(sessions.height, 1) / 60
    if plays_u.height:
        counts = plays_u["category"].value_counts()["count"].to_numpy().astype(float)
        prob = counts / counts.sum()
        out["user_content_diversity"] = float(-(prob * np.log(prob)).sum())
    else:
        out["user_content_diversity"] = 0.0
    since = t - pu["timestamp"].max() if pu.height else max(t - us["signup_ts"], 0)
    out["user_recency"] = math.log1p(since)
    out["user_tenure_days"] = max(t - us["signup_ts"], 0) / 86400
    out["item_popularity"] = math.log1p(n(pi, "play"))
    out["item_freshness"] = max(t - it["release_ts"], 0) / 86400
    w, p = cfg.item_prior_weight, cfg.prior_ctr
    out["item_creator_reputation"] = (n(pc, "click") + w * p) / (n(pc, "impression") + w)
    out["item_length_minutes"] = (None if it["length_seconds"] is None
                                  else it["length_seconds"] / 60)
    out["item_engagement_rate"] = (n(pi, "click") + w * p) / (n(pi, "impression") + w)
    plays_i = pi.filter(pl.col("event") == "play")
    out["item_completion_rate"] = ((plays_i["value"].cast(pl.Float64).sum() + w * cfg.prior_completion)
                                   / (plays_i.height + w))
    short = plays_i.filter(pl.col("timestamp") >= t - cfg.trending_short).height
    long = plays_i.filter(pl.col("timestamp") >= t - cfg.trending_long).height
    out["item_trending_score"] = math.log(
        (short + 1) / (long * cfg.trending_short / cfg.trending_long + 1))
    wc = cfg.category_prior_weight
    out["category_match"] = (n(puc, "play") + wc / n_cat) / (plays_u.height + wc)
    angle = 2 * math.pi * (t % 86400) / 86400
    out["time_of_day_sin"], out["time_of_day_cos"] = math.sin(angle), math.cos(angle)
    wu = cfg.user_prior_weight
    out["historical_ctr_user_category"] = (n(puc, "click") + wu * p) / (n(puc, "impression") + wu)
    out["user_subscription_tier"] = us["tier"]
    clicks = pu.filter(pl.col("event") == "click")  # events keep the log's time order
    out["history"] = clicks.sort("timestamp", maintain_order=True)["item_id"].to_list()[-L:]
    return out


def test_point_in_time_matches_brute_force(world, events, frame):
    cfg = FeatureConfig()
    ev = events.join(world.items.select("item_id", "category", "creator_id"), on="item_id",
                     how="left")
    n_cat = world.items["category"].n_unique()
    rng = np.random.default_rng(1)
    rows = frame.to_dicts()
    picks = list(rng.choice(len(rows), size=12, replace=False))
    picks.append(int(np.argmax(frame["user_session_count"].to_numpy())))  # a long history
    for k in picks:  # a loop over a handful of sampled impressions (reference is slow)
        got = rows[int(k)]
        ref = _reference(ev, world.users, world.items, got, cfg, n_cat)
        for name, want in ref.items():  # a loop over features
            if isinstance(want, float):
                assert got[name] == pytest.approx(want, rel=1e-9, abs=1e-9), (name, got)
            else:
                assert got[name] == want, (name, got)


def test_future_events_change_nothing(world, events, impressions, frame):
    last = int(impressions["timestamp"].max())
    future = events.with_columns(pl.col("timestamp") - int(events["timestamp"].min())
                                 + last + 1, pl.col("event_id") + 10**9)
    more = pl.concat([events, future])
    again = streamrec_features(more, world.users, world.items, impressions, history_len=L)
    assert again.equals(frame)


def test_collaborative_score_uses_only_clicks_before_the_cutoff(world, events, impressions,
                                                                frame):
    cutoff = resolve_mf_cutoff(impressions, FeatureConfig().mf_share)
    assert frame["timestamp"].min() >= cutoff
    assert frame.height == (impressions["timestamp"] >= cutoff).sum()
    assert frame["collaborative_score"].abs().max() > 0
    # drop every click after the cutoff: the MF feature is unchanged, click counts are not
    fewer = events.filter((pl.col("event") != "click") | (pl.col("timestamp") < cutoff))
    other = streamrec_features(fewer, world.users, world.items, impressions, history_len=0)
    np.testing.assert_array_equal(other["collaborative_score"].to_numpy(),
                                  frame["collaborative_score"].to_numpy())
    assert not np.array_equal(other["item_engagement_rate"].to_numpy(),
                              frame["item_engagement_rate"].to_numpy())


def test_frame_columns_and_errors(world, events, impressions, frame):
    assert frame.columns[:4] == ["user_id", "item_id", "timestamp", "label"]
    assert set(FEATURES) <= set(frame.columns) and len(FEATURES) == 20
    assert frame["history"].list.len().max() <= L
    dense = frame.select(DENSE_FEATURES).drop("item_length_minutes")
    assert dense.null_count().sum_horizontal().item() == 0
    with pytest.raises(ValueError, match="items: missing column"):
        streamrec_features(events, world.users, world.items.drop("category"), impressions)
    with pytest.raises(ValueError, match="mf_cutoff"):
        streamrec_features(events, world.users, world.items, impressions, mf_cutoff=2**40)


# ---------------------------------------------------------------------------- encoders
def test_encoder_fitted_on_train_only_and_applied_unchanged(frame):
    n = frame.height // 2
    train, test = frame[:n], frame[n:]
    enc = streamrec_encoder(train, bins={"item_popularity": 4})
    data = to_ctr_data(test, enc)
    s = data.schema
    assert s.item_field == "item_id" and s.n_history_items == s.cardinalities[2]
    assert s.categorical[-1] == "item_popularity_bucket"
    # dense: log1p for the LOG features, standardised with the *train* mean/std, clipped
    col = "user_session_count"
    tr = np.log1p(train[col].to_numpy())
    want = np.clip((np.log1p(test[col].to_numpy()) - tr.mean()) / tr.std(), -5, 5)
    np.testing.assert_allclose(data.dense[:, s.dense.index(col)], want, rtol=1e-5, atol=1e-5)
    # items unseen in train get the unknown code 0, seen ones a code >= 1
    seen = set(train["item_id"].to_list())
    codes = data.categorical[:, s.categorical.index("item_id")]
    is_seen = np.array([v in seen for v in test["item_id"].to_list()])
    assert (codes[~is_seen] == 0).all() and (codes[is_seen] >= 1).all()
    assert data.labels is not None and data.timestamps is not None and data.groups is not None
    # history codes share the item_id code space, right-aligned with 0 padding on the left
    hist = data.history
    assert hist.shape == (test.height, L)
    row = int(np.argmax(test["history"].list.len().to_numpy() > 1))
    items = test["history"][row].to_list()
    item_codes = enc.transform(pl.DataFrame({**{c: test[c][row:row + 1] for c in test.columns},
                                             "item_id": [items[-1]]})).categorical[0, 2]
    assert hist[row, -1] == item_codes
    assert hist[row, : L - len(items)].sum() == 0


def test_encoder_unknown_hashing_and_json_round_trip():
    train = pl.DataFrame({"x": [1.0, 2.0, 3.0, None], "tier": ["a", "b", "a", None],
                          "user": [5, 6, 7, 8], "label": [0, 1, 0, 1],
                          "item": [1, 2, 3, 2], "hist": [[1], [1, 2], [], None]})
    enc = CTREncoder.fit(train, dense=["x"], categorical=["tier", "user", "item"],
                         hash_buckets={"user": 16}, history="hist", history_len=3,
                         item_field="item", group=None, timestamp=None)
    new = pl.DataFrame({"x": [10.0, None], "tier": ["zzz", "b"], "user": [5, 12345],
                        "label": [1, 0], "item": [9, 3], "hist": [[3, 9, 1, 2], [2]]})
    d = enc.transform(new)
    assert d.categorical[0, 0] == 0 and d.categorical[1, 0] == 2  # unseen tier -> 0
    assert d.categorical[0, 2] == 0  # unseen item -> 0
    assert d.dense[0, 0] == pytest.approx(5.0) and d.dense[1, 0] == 0.0  # clipped; null -> mean
    assert d.history.tolist() == [[0, 1, 2], [0, 0, 2]]  # last 3, unseen item 9 -> 0
    # hashing: stable crc32 buckets in [1, 16]
    assert d.categorical[0, 1] == 1 + zlib.crc32(b"5") % 16
    assert d.categorical[1, 1] == 1 + zlib.crc32(b"12345") % 16
    codes = hash_codes(pl.Series(np.arange(1000)), 7)
    assert codes.min() >= 1 and codes.max() <= 7 and len(np.unique(codes)) == 7
    np.testing.assert_array_equal(codes, hash_codes(pl.Series(np.arange(1000)), 7))
    assert hash_codes(pl.Series([None, "a"]), 5)[0] == 0
    # JSON round trip: the same encoding
    back = CTREncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    d2 = back.transform(new)
    np.testing.assert_array_equal(d.categorical, d2.categorical)
    np.testing.assert_array_equal(d.dense, d2.dense)
    np.testing.assert_array_equal(d.history, d2.history)
    assert back.schema == enc.schema
    with pytest.raises(ValueError, match="'tier'"):
        enc.transform(new.drop("tier"))
    with pytest.raises(ValueError, match="'tier' is String, not numeric"):
        CTREncoder.fit(train, dense=["tier"])


def test_one_hot():
    m = one_hot(np.array([[0, 2], [1, 0]]), (2, 3))
    assert m.shape == (2, 5)
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 0, 0, 1], [0, 1, 1, 0, 0]])
    with pytest.raises(ValueError, match="field 1"):
        one_hot(np.array([[0, 3]]), (2, 3))


# ---------------------------------------------------------------------------- content, MI
def test_content_embeddings_group_by_category(world):
    items = world.items
    emb, model = content_embeddings(item_texts(items), dim=16, seed=0)
    assert emb.shape == (items.height, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    sim = emb @ emb.T
    cat = items["category"].to_numpy()
    same = cat[:, None] == cat[None, :]
    off = ~np.eye(len(cat), dtype=bool)
    assert sim[same & off].mean() > sim[~same].mean() + 0.1
    np.testing.assert_allclose(model.transform(item_texts(items[:3])), emb[:3], atol=1e-5)


def test_rank_features_puts_signal_above_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    signal = y + rng.normal(0, 0.5, 2000)
    noise = rng.normal(0, 1, 2000)
    codes = np.where(rng.random(2000) < 0.8, y, 1 - y)  # a discrete informative feature
    ranking = rank_features(np.stack([noise, signal, codes], 1), y, ["noise", "signal", "cat"],
                            discrete_mask=[False, False, True], seed=0)
    names = [n for n, _ in ranking]
    assert names[-1] == "noise" and ranking[0][1] > 0.1 > ranking[-1][1]
    X, discrete = frame_matrix(pl.DataFrame({"a": [1.0, None, 3.0], "b": ["x", None, "y"]}),
                               ["a", "b"])
    np.testing.assert_array_equal(X, [[1, 1], [2, 0], [3, 2]])  # null -> median; null -> 0
    assert discrete.tolist() == [False, True]


def test_streamrec_impressions_one_call():
    f = streamrec_impressions(generate_world(WorldConfig(n_users=80, n_items=60, n_days=6,
                                                         seed=1)), history_len=0)
    assert "history" not in f.columns and f.height > 100
    assert f.select(FEATURES).columns == list(FEATURES)


RANK_ARGS = ["features", "rank", "--data", "synthetic:users=80,items=60,days=6,seed=1",
             "--top", "5", "--max-rows", "2000"]


def test_features_rank_cli():
    from streamrec.cli.main import app

    res = CliRunner().invoke(app, RANK_ARGS)
    assert res.exit_code == 0, res.output
    assert "MI (nats)" in res.output and "impressions ranked" in res.output
    assert "Usage" in CliRunner().invoke(app, ["features", "rank", "--help"]).output
    bad = CliRunner().invoke(app, ["features", "rank", "--data", "movielens:/nope"])
    assert bad.exit_code == 2


@pytest.mark.slow  # matplotlib's import and the PNG: ~2 s on a busy 2-core machine
def test_features_rank_cli_writes_json_and_png(tmp_path: Path):
    from streamrec.cli.main import app

    res = CliRunner().invoke(app, [*RANK_ARGS, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "feature_ranking.json").read_text())
    assert len(doc["ranking"]) == 20 and doc["rows"] > 100
    mis = [r["mi"] for r in doc["ranking"]]
    assert mis == sorted(mis, reverse=True)
    assert (tmp_path / "feature_ranking.png").stat().st_size > 1000
