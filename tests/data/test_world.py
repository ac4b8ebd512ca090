"""The synthetic StreamRec world: schema, determinism, injected anomalies, behaviour, signal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from streamrec.data.synthetic._world_catalog import GENRES
from streamrec.data.synthetic.world import WorldConfig, generate_world, write_world

SMALL = WorldConfig(n_users=600, n_items=300, n_days=30, seed=7)


@pytest.fixture(scope="module")
def world():
    return generate_world(SMALL)


def _humans(world) -> pl.DataFrame:
    bots = world.truth["truth"]["bot_user_ids"]
    return world.events.filter(~pl.col("user_id").is_in(bots))


def test_schema_and_dtypes(world):
    assert world.events.schema == pl.Schema({
        "event_id": pl.Int64, "user_id": pl.Int64, "item_id": pl.Int64, "session_id": pl.Int64,
        "timestamp": pl.Int64, "event": pl.String, "value": pl.Float32, "duration": pl.Float32,
        "position": pl.Int16, "platform": pl.String,
    })
    assert world.users.schema == pl.Schema({
        "user_id": pl.Int64, "tier": pl.String, "platform": pl.String, "country": pl.String,
        "signup_ts": pl.Int64, "activity": pl.Float32, "top_category": pl.String,
    })
    assert world.items.schema == pl.Schema({
        "item_id": pl.Int64, "title": pl.String, "description": pl.String, "category": pl.String,
        "creator_id": pl.Int64, "length_seconds": pl.Int64, "release_ts": pl.Int64,
    })
    ev = world.events
    assert world.users["user_id"].to_list() == list(range(1, SMALL.n_users + 1))
    assert world.items["item_id"].to_list() == list(range(1, SMALL.n_items + 1))
    assert set(ev["event"].unique()) == {"impression", "click", "play", "skip", "like"}
    assert set(ev["platform"].unique()) <= {"tv", "mobile", "web", "tablet"}
    assert set(world.users["tier"].unique()) == {"free", "basic", "premium"}
    # duration only on play/skip, position only on impression/click
    has_dur = ev["duration"].is_not_null()
    assert ev.filter(has_dur)["event"].unique().sort().to_list() == ["play", "skip"]
    assert ev.filter(~has_dur)["event"].is_in(["play", "skip"]).sum() == 0
    human = _humans(world)
    pos = human.filter(pl.col("position").is_not_null())
    assert pos["event"].unique().sort().to_list() == ["click", "impression"]
    assert pos["position"].min() == 1 and pos["position"].max() == SMALL.slate_size
    plays = ev.filter(pl.col("event") == "play")
    assert plays["value"].min() > 0 and plays["value"].max() < 1
    assert ev.filter(pl.col("event") != "play")["value"].unique().to_list() == [1.0]
    t = world.truth["truth"]
    assert ev["timestamp"].min() >= t["time_start"] == SMALL.start_ts
    assert ev["timestamp"].max() < t["time_end"] == SMALL.start_ts + 30 * 86_400
    assert world.truth["rows"] == t["rows"] == ev.height


def test_ordering_and_causality(world):
    ev = world.events
    # rows ordered by (user, time); ids follow the file order (duplicates share the id)
    assert ev.select((pl.col("user_id").diff() >= 0).all()).item()
    same_user = pl.col("user_id").diff() == 0
    assert ev.select(((pl.col("timestamp").diff() >= 0) | ~same_user).all()).item()
    assert ev.select((pl.col("event_id").diff() >= 0).all()).item()
    # nobody watches before sign-up or before the release; plays never exceed the length
    j = (ev.join(world.users.select("user_id", "signup_ts"), on="user_id")
         .join(world.items.select("item_id", "release_ts"), on="item_id"))
    assert (j["timestamp"] < j["signup_ts"]).sum() == 0
    assert (j["timestamp"] < j["release_ts"]).sum() == 0
    lengths = world.items.select("item_id", "length_seconds").drop_nulls()
    d = ev.filter(pl.col("duration") > 0).join(lengths, on="item_id")
    assert (d["duration"] > d["length_seconds"]).sum() == 0
    # sessions of a user never overlap, and every session belongs to one user
    s = ev.group_by("session_id").agg(pl.col("user_id").n_unique().alias("n_users"),
                                      pl.col("user_id").first(), pl.col("timestamp").min().alias("a"),
                                      pl.col("timestamp").max().alias("b"))
    assert s["n_users"].max() == 1
    s = s.sort("user_id", "a").with_columns(prev=pl.col("b").shift(1).over("user_id"))
    assert (s["a"] < s["prev"]).sum() == 0
    assert set(s["session_id"]) == set(world.sessions["session_id"])


def test_same_seed_same_world_other_seed_other_world():
    cfg = WorldConfig(n_users=150, n_items=80, n_days=8, seed=11)
    a, b = generate_world(cfg), generate_world(cfg)
    for name in ("events", "users", "items", "sessions", "user_truth"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert a.truth == b.truth
    c = generate_world(WorldConfig(n_users=150, n_items=80, n_days=8, seed=12))
    assert not a.events.equals(c.events)
    assert not a.items.equals(c.items)


def test_anomaly_counts_equal_truth(world):
    ev, t = world.events, world.truth["truth"]
    an = t["anomalies"]
    # exact duplicate rows: each injected copy sits right after its original
    assert ev.height - ev.unique().height == an["duplicate_rows"] > 0
    assert ev.height - ev["event_id"].n_unique() == an["duplicate_rows"]
    assert an["duplicate_rows"] == pytest.approx(0.005 * ev.height, rel=0.5)
    assert ev.filter(pl.col("duration") < 0)["event"].unique().to_list() == ["play"]
    assert (ev["duration"] < 0).sum() == an["negative_durations"] > 0
    assert world.users["country"].null_count() == an["null_country"] > 0
    assert world.users["platform"].null_count() == an["null_platform"] > 0
    assert world.items["length_seconds"].null_count() == an["null_length_seconds"] == 3
    assert ev.filter(pl.col("user_id").is_in(t["bot_user_ids"])).height == an["bot_events"] > 0
    assert len(t["bot_user_ids"]) == an["bot_users"] == int(world.user_truth["is_bot"].sum())
    counts = dict(ev["event"].value_counts().iter_rows())
    assert counts == t["events"]
    assert sum(t["behaviours"].values()) == t["sessions"] == world.sessions.height


def test_bots_exist_and_are_fast(world):
    bots = world.truth["truth"]["bot_user_ids"]
    assert len(bots) >= 1
    per_minute = (world.events.group_by("user_id", (pl.col("timestamp") // 60).alias("minute"))
                  .len().group_by("user_id").agg(pl.col("len").max().alias("peak")))
    bot_peak = per_minute.filter(pl.col("user_id").is_in(bots))["peak"]
    human_peak = per_minute.filter(~pl.col("user_id").is_in(bots))["peak"]
    assert bot_peak.min() >= 100  # hundreds of clicks per minute
    assert human_peak.max() <= 30  # below the default bot threshold of cleaning
    assert set(world.events.filter(pl.col("user_id").is_in(bots))["event"].unique()) == {"click"}


def test_churn_happens_and_follows_low_click_rate():
    w = generate_world(WorldConfig(n_users=1500, n_items=400, n_days=40, seed=2))
    ev = _humans(w)
    per_user = ev.group_by("user_id").agg(
        (pl.col("event") == "impression").sum().alias("imps"),
        (pl.col("event") == "click").sum().alias("clicks"))
    u = (per_user.filter(pl.col("imps") >= 12)
         .join(w.user_truth.select("user_id", "churned", "churn_day"), on="user_id")
         .with_columns(ctr=pl.col("clicks") / pl.col("imps")))
    churned, kept = u.filter(pl.col("churned")), u.filter(~pl.col("churned"))
    assert w.truth["truth"]["churned_users"] == int(w.user_truth["churned"].sum())
    assert 0.02 < churned.height / u.height < 0.5
    assert churned["ctr"].mean() < 0.75 * kept["ctr"].mean()
    # a churned user starts no session after the churn day
    last = w.sessions.group_by("user_id").agg(pl.col("start_ts").max().alias("last"))
    c = churned.join(last, on="user_id")
    day_end = SMALL.start_ts + (c["churn_day"] + 1) * 86_400
    assert c.height == churned.height and (c["last"] < day_end).all()


def test_behaviour_switching_rates():
    w = generate_world(WorldConfig(n_users=1500, n_items=400, n_days=20, seed=4))
    s = w.sessions.filter(pl.col("behaviour") != "bot")
    shares = s["behaviour"].value_counts(normalize=True)
    share = dict(shares.iter_rows())
    assert share["explorer"] == pytest.approx(0.3, abs=0.03)
    assert share["deep_dive"] == pytest.approx(0.5, abs=0.03)
    assert share["comparison"] == pytest.approx(0.2, abs=0.03)
    rates = (s.group_by("behaviour")
             .agg((pl.col("n_switches").sum() / (pl.col("n_steps") - 1).sum()).alias("rate")))
    rate = dict(rates.iter_rows())
    assert rate["explorer"] == pytest.approx(0.40, abs=0.03)
    assert rate["deep_dive"] == pytest.approx(0.15, abs=0.03)
    assert rate["comparison"] == pytest.approx(0.50, abs=0.03)
    for b, r in w.truth["truth"]["switch_rate"].items():
        assert r == pytest.approx(rate[b])
    # observable in the log: consecutive plays of a deep-dive session share the category
    # more often than those of an explorer session
    plays = (w.events.filter(pl.col("event") == "play")
             .join(w.items.select("item_id", "category"), on="item_id")
             .join(s.select("session_id", "behaviour"), on="session_id")
             .with_columns(same=(pl.col("category") == pl.col("category").shift(1))
                           .over("session_id")))
    same = dict(plays.drop_nulls("same").group_by("behaviour")
                .agg(pl.col("same").mean()).iter_rows())
    assert same["deep_dive"] > same["explorer"] + 0.1


def _ndcg_recall(scores: np.ndarray, train: sp.csr_array, test: sp.csr_array,
                 users: np.ndarray) -> tuple[float, float]:
    s = scores.astype(np.float64).copy()
    s[train[users].toarray() > 0] = -np.inf
    top = np.argsort(-s, axis=1)[:, :10]
    truth = test[users].toarray() > 0
    hit = np.take_along_axis(truth, top, axis=1)
    disc = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(disc)[np.minimum(truth.sum(1), 10) - 1]
    ndcg = ((hit * disc).sum(1) / ideal).mean()
    recall = (hit.sum(1) / np.minimum(truth.sum(1), 10)).mean()
    return float(ndcg), float(recall)


def test_item_knn_beats_popularity():
    cfg = WorldConfig(n_users=1200, n_items=500, n_days=40, seed=0)
    w = generate_world(cfg)
    plays = (_humans(w).filter(pl.col("event") == "play")
             .unique(["user_id", "item_id"], keep="first", maintain_order=True)
             .with_columns(r=pl.int_range(pl.len()).over("user_id"), n=pl.len().over("user_id"))
             .filter(pl.col("n") >= 5))
    cut = (pl.col("n") * 0.8).floor()
    tr, te = plays.filter(pl.col("r") < cut), plays.filter(pl.col("r") >= cut)
    shape = (cfg.n_users + 1, cfg.n_items + 1)

    def matrix(df: pl.DataFrame) -> sp.csr_array:
        return sp.csr_array((np.ones(df.height), (df["user_id"].to_numpy(),
                                                  df["item_id"].to_numpy())), shape=shape)

    train, test = matrix(tr), matrix(te)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    pop = np.asarray(train.sum(axis=0)).ravel()
    norm = np.sqrt(np.maximum(pop, 1.0))
    sim = (train.T @ train).toarray() / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    pop_ndcg, pop_recall = _ndcg_recall(np.tile(pop, (len(users), 1)), train, test, users)
    knn_ndcg, knn_recall = _ndcg_recall(train[users] @ sim, train, test, users)
    assert len(users) > 500
    assert knn_ndcg > 1.4 * pop_ndcg
    assert knn_recall > 1.3 * pop_recall


def test_heavy_tails(world):
    plays = _humans(world).filter(pl.col("event") == "play")
    per_user = plays.group_by("user_id").len()["len"].to_numpy()
    per_item = plays.group_by("item_id").len()["len"].to_numpy()
    assert per_user.max() > 8 * np.median(per_user)
    assert per_item.max() > 10 * np.median(per_item)
    # the top 10% of items get most of the plays
    top = np.sort(per_item)[::-1][: len(per_item) // 10].sum()
    assert top > 0.4 * per_item.sum()


def test_descriptions_carry_category_words(world):
    vocab = {name: set(words) for name, _, words in GENRES}
    items = world.items
    predicted = [max(vocab, key=lambda c: len(vocab[c] & set(d.split())))
                 for d in items["description"].to_list()]
    accuracy = float(np.mean(np.array(predicted) == items["category"].to_numpy()))
    assert accuracy > 0.9
    assert items["title"].str.len_chars().min() > 3
    # generic filler words are shared across categories
    assert items["description"].str.contains("story|world|life|new").mean() > 0.3


def test_write_world_is_chunk_size_independent(tmp_path: Path):
    base = dict(n_users=450, n_items=120, n_days=10, seed=3, block_users=100)
    calls: list[tuple[int, int]] = []
    info_a = write_world(WorldConfig(**base, chunk_users=100), tmp_path / "a",
                         progress=lambda d, t: calls.append((d, t)))
    info_b = write_world(WorldConfig(**base, chunk_users=1_000), tmp_path / "b")
    assert calls[0] == (0, 50) and calls[-1] == (50, 50)  # 5 chunks x 10 days
    assert info_a["truth"] == info_b["truth"]
    for f in ("events.parquet", "users.parquet", "items.parquet", "truth/sessions.parquet",
              "truth/users.parquet"):
        a, b = pl.read_parquet(tmp_path / "a" / f), pl.read_parquet(tmp_path / "b" / f)
        assert a.height > 0 and a.equals(b), f
    # the files hold the same world as generate_world, and world.json is what was returned
    w = generate_world(WorldConfig(**base))
    assert pl.read_parquet(tmp_path / "a" / "events.parquet").equals(w.events)
    assert pl.read_parquet(tmp_path / "a" / "users.parquet").equals(w.users)
    on_disk = json.loads((tmp_path / "a" / "world.json").read_text())
    assert on_disk == info_a and on_disk["truth"] == w.truth["truth"]
    assert on_disk["rows"] == w.events.height
    assert on_disk["config"]["chunk_users"] == 100


def test_log_impressions_off_and_tiny_world():
    w = generate_world(WorldConfig(n_users=40, n_items=30, n_days=5, log_impressions=False))
    assert "impression" not in set(w.events["event"])
    assert w.events.height > 0
    one = generate_world(WorldConfig(n_users=1, n_items=1, n_days=2))
    assert one.users.height == 1 and one.items.height == 1


@pytest.mark.parametrize("bad", [dict(n_users=0), dict(p_explorer=1.5), dict(duplicate_rate=1.5),
                                 dict(bot_burst_min=10, bot_burst_max=5), dict(steps_per_session=0.5)])
def test_bad_config_is_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        WorldConfig(**bad)
