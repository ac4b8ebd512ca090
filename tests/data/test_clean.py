"""Tests of streamrec.data.clean on tiny hand-built frames with hand-computed answers."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streamrec.data.clean import (
    CleanConfig,
    add_completion_ratio,
    apply_rating_threshold,
    clean,
    clean_raw,
    drop_bots,
    drop_duplicates,
    fix_impossible,
    impute_missing,
    k_core,
    keep_event_types,
)
from streamrec.data.dataset import Dataset, RawData
from tests._paths import ML100K, needs_ml100k

T0 = 28_333_334 * 60  # 1_700_000_040: a whole minute, so minute buckets start at T0


def events(users, items, ts=None, value=None, event=None, duration=None) -> pl.DataFrame:
    """A canonical event frame; columns given as None are left out."""
    cols: dict[str, pl.Series] = {
        "user_id": pl.Series(users),
        "item_id": pl.Series(items),
    }
    if ts is not None:
        cols["timestamp"] = pl.Series(ts, dtype=pl.Int64)
    if value is not None:
        cols["value"] = pl.Series(value, dtype=pl.Float32)
    if event is not None:
        cols["event"] = pl.Series(event, dtype=pl.String)
    if duration is not None:
        cols["duration"] = pl.Series(duration, dtype=pl.Float32)
    return pl.DataFrame(cols)


# ------------------------------------------------------------------------------- dedupe
def test_drop_duplicates_keeps_first_and_reports() -> None:
    ev = events([1, 2, 1, 1, 2, 1], [10, 20, 10, 10, 20, 11], ts=[5, 6, 5, 5, 7, 5],
                value=[1, 1, 1, 2, 1, 1])
    # row 2 == row 0 (removed); row 3 differs in value, row 4 in timestamp, row 5 in item
    out, rep, removed = drop_duplicates(ev)
    assert out.height == 5 and removed.height == 1
    assert out.equals(ev[[0, 1, 3, 4, 5]])
    assert (rep.rows_before, rep.rows_after, rep.removed, rep.changed) == (6, 5, 1, 0)
    assert rep.details == {"duplicate_rows": 1, "duplicated_rows_distinct": 1}
    assert removed["reason"].to_list() == ["exact duplicate"]
    assert removed["step"].to_list() == ["drop_duplicates"]

    # three copies of one row -> two removed, one distinct duplicated row
    out, rep, _ = drop_duplicates(pl.concat([ev[:1]] * 3))
    assert out.height == 1 and rep.details == {"duplicate_rows": 2, "duplicated_rows_distinct": 1}

    # duplicates on a subset of columns only
    out, rep, _ = drop_duplicates(ev, subset=["user_id", "item_id"])
    assert rep.removed == 3  # (1,10) x3 -> 2 removed, (2,20) x2 -> 1 removed


def test_drop_duplicates_treats_nulls_as_equal() -> None:
    ev = events([1, 1, 1], [10, 10, 10], ts=[5, 5, 5], duration=[None, None, 3.0])
    out, rep, _ = drop_duplicates(ev)
    assert rep.removed == 1 and out["duration"].to_list() == [None, 3.0]


# --------------------------------------------------------------------------------- bots
def _bot_frame() -> pl.DataFrame:
    """Users and their peak counts in a 60 s window [t, t+60), threshold 30:

    "bot": 31 clicks 1 s apart (+2 impressions)          -> peak 31 > 30: bot
    "edge": 30 clicks 2 s apart                          -> peak 30: not a bot
    "straddle": 31 clicks 1 s apart from T0+50 (across a minute boundary: 10 + 21 per
                 minute bucket)                           -> peak 31: bot
    "slow": 31 clicks 2 s apart (span 60 s)              -> peak 30 (half-open): not a bot
    "scroller": 100 impressions in one second + 1 click   -> impressions ignored: not a bot
    """
    parts = []

    def add(user: str, ts: list[int], event: str) -> None:
        parts.append(pl.DataFrame({
            "user_id": [user] * len(ts), "item_id": list(range(len(ts))),
            "timestamp": pl.Series(ts, dtype=pl.Int64),
            "value": pl.Series([1.0] * len(ts), dtype=pl.Float32), "event": [event] * len(ts),
        }))

    add("bot", [T0 + i for i in range(31)], "click")
    add("bot", [T0, T0], "impression")
    add("edge", [T0 + 2 * i for i in range(30)], "click")
    add("straddle", [T0 + 50 + i for i in range(31)], "click")
    add("slow", [T0 + 2 * i for i in range(31)], "click")
    add("scroller", [T0] * 100, "impression")
    add("scroller", [T0], "click")
    return pl.concat(parts)


def test_drop_bots_sliding_window() -> None:
    ev = _bot_frame()
    out, rep, removed = drop_bots(ev, max_events_per_minute=30)
    assert rep.details["bot_users"] == 2
    assert rep.details["bot_rows"] == 33 + 31 == rep.removed == removed.height
    assert rep.details["events_in_60s_to_flag"] == 31
    assert rep.details["peak_events_per_minute"] == {"bot": 31, "straddle": 31}
    assert set(removed["user_id"].unique()) == {"bot", "straddle"}
    assert set(out["user_id"].unique()) == {"edge", "slow", "scroller"}
    assert out.height == ev.height - 64 and not rep.skipped
    # the straddling burst is never more than 21 in one minute bucket: only a sliding
    # window sees it
    straddle = ev.filter(pl.col("user_id") == "straddle")
    assert straddle.group_by(pl.col("timestamp") // 60).len()["len"].max() == 21


def test_drop_bots_threshold_and_ignored_events() -> None:
    ev = _bot_frame()
    # threshold 29.5 -> 30 events in 60 s are enough: "edge" and "slow" become bots
    _, rep, _ = drop_bots(ev, max_events_per_minute=29.5)
    assert rep.details["bot_users"] == 4
    # counting impressions too: the scroller (101 events in a second) is a bot
    _, rep, _ = drop_bots(ev, max_events_per_minute=30, ignore_events=())
    assert rep.details["bot_users"] == 3
    assert rep.details["peak_events_per_minute"]["scroller"] == 101


def test_drop_bots_skips_without_seconds() -> None:
    ev = _bot_frame()
    ordinal = ev.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("timestamp"))
    out, rep, removed = drop_bots(ordinal)
    assert rep.skipped and "ordinal" in rep.reason and out.height == ev.height
    assert removed.height == 0
    _, rep, _ = drop_bots(ev.drop("timestamp"))
    assert rep.skipped and rep.reason == "skipped: no timestamp column"
    millis = ev.with_columns(pl.col("timestamp") * 1000)
    _, rep, _ = drop_bots(millis)
    assert rep.skipped and "milliseconds" in rep.reason
    # an explicit override runs it on small timestamps (MovieLens-era values are < 1e9)
    early = ev.with_columns(pl.col("timestamp") - T0 + 880_000_000)
    _, rep, _ = drop_bots(early, timestamps_are_seconds=True)
    assert rep.details["bot_users"] == 2


# --------------------------------------------------------------------------- impossible
def _impossible_case() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    ev = pl.DataFrame({
        "user_id": pl.Series([1, None, 1, 1, 1, 1, 1, 2, 1, 1, 1], dtype=pl.Int64),
        "item_id": pl.Series([10, 10, 10, 10, 10, 10, 10, 10, 11, 12, 13], dtype=pl.Int64),
        "timestamp": pl.Series([T0, T0, -1, None, T0, T0, T0, T0, T0 - 100, T0, T0],
                               dtype=pl.Int64),
        "value": pl.Series([4, 4, 4, 4, 4, 4, 6, 4, 4, 4, 4], dtype=pl.Float32),
        "duration": pl.Series([50, None, None, None, -5, 150, None, None, None, 999, 120],
                              dtype=pl.Float32),
    })
    # row: 0 fine | 1 null user | 2 negative ts | 3 null ts | 4 negative duration
    #      5 duration 150 > 100 | 6 value 6 outside [1, 5] | 7 user 2 before signup
    #      8 item 11 before release | 9 item 12 length unknown: fine | 10 item 13: 120 > 60
    items = pl.DataFrame({"item_id": [10, 11, 12, 13],
                          "length_seconds": [100.0, 100.0, None, 60.0],
                          "release_ts": [0, T0 - 50, 0, 0]})
    users = pl.DataFrame({"user_id": [1, 2], "signup_ts": [0, T0 + 10]})
    return ev, items, users


def test_fix_impossible_quarantine() -> None:
    ev, items, users = _impossible_case()
    out, rep, removed = fix_impossible(ev, items, users, rating_range=(1, 5))
    assert out.equals(ev[[0, 9]])
    assert removed["reason"].to_list() == [
        "null user_id", "negative timestamp", "null timestamp", "negative duration",
        "duration longer than 1 x item length", "value outside rating range [1, 5]",
        "event before user signup", "event before item release",
        "duration longer than 1 x item length",
    ]
    assert removed.columns == [*ev.columns, "reason", "step"]
    assert rep.details["removed_by_reason"]["duration longer than 1 x item length"] == 2
    assert (rep.removed, rep.changed, rep.rows_after) == (9, 0, 2)
    assert rep.details["not_checked"] == {}


def test_fix_impossible_clip() -> None:
    ev, items, users = _impossible_case()
    out, rep, removed = fix_impossible(ev, items, users, mode="clip", rating_range=(1, 5))
    # unclippable faults are still removed
    assert removed["reason"].to_list() == [
        "null user_id", "negative timestamp", "null timestamp", "event before user signup",
        "event before item release"]
    assert out["duration"].to_list() == [50.0, 0.0, 100.0, None, 999.0, 60.0]
    assert out["value"].to_list() == [4.0, 4.0, 4.0, 5.0, 4.0, 4.0]
    assert out["duration"].dtype == pl.Float32 and out["value"].dtype == pl.Float32
    assert out.columns == ev.columns
    assert rep.changed == 4
    assert rep.details["clipped_by_field"] == {
        "negative duration": 1, "duration longer than 1 x item length": 2,
        "value outside rating range [1, 5]": 1}


def test_fix_impossible_ratio_minutes_and_missing_tables() -> None:
    ev = events([1, 1, 1], [10, 10, 10], ts=[T0] * 3, duration=[59.0, 61.0, 121.0])
    items = pl.DataFrame({"item_id": [10], "length_minutes": [1.0]})
    _, rep, _ = fix_impossible(ev, items)
    assert rep.removed == 2  # 61 and 121 s > 60 s
    _, rep, _ = fix_impossible(ev, items, max_duration_ratio=2.0)
    assert rep.removed == 1  # only 121 s > 120 s
    # no items table: the length check is reported as not done, nothing removed
    _, rep, _ = fix_impossible(ev)
    assert rep.removed == 0
    assert "duration longer than item" in rep.details["not_checked"]
    # item key typed differently in the side table is still matched
    _, rep, _ = fix_impossible(ev, items.with_columns(pl.col("item_id").cast(pl.String)))
    assert rep.removed == 2


def test_fix_impossible_release_needs_real_seconds() -> None:
    ev = events([1], [10], ts=[5])  # ordinal timestamps: no release check possible
    items = pl.DataFrame({"item_id": [10], "release_ts": [T0]})
    out, rep, _ = fix_impossible(ev, items)
    assert out.height == 1 and "ordinal" in rep.details["not_checked"]["event before item release"]


# ------------------------------------------------------------------------------- impute
def test_impute_missing() -> None:
    users = pl.DataFrame({
        "user_id": [1, 2, 3, 4],
        "age": pl.Series([10, None, 30, 40], dtype=pl.Int32),
        "country": ["se", None, "no", "se"],
        "tier": pl.Series(["free", "paid", None, "paid"], dtype=pl.Categorical),
        "complete": [1.0, 2.0, 3.0, 4.0],
    })
    items = pl.DataFrame({"item_id": [7, 8, 9], "length_seconds": [100.0, None, 300.0],
                          "genres": [["a"], None, ["b", "c"]]})
    u, i, rep = impute_missing(users, items)
    assert u is not None and i is not None
    assert u["age"].to_list() == [10, 30, 30, 40] and u["age"].dtype == pl.Int32
    assert u["country"].to_list() == ["se", "se", "no", "se"]
    assert u["tier"].to_list() == ["free", "paid", "paid", "paid"]
    assert u["tier"].dtype == pl.Categorical
    assert u["age_missing"].to_list() == [False, True, False, False]
    assert u["tier_missing"].to_list() == [False, False, True, False]
    assert "complete_missing" not in u.columns
    assert i["length_seconds"].to_list() == [100.0, 200.0, 300.0]
    assert i["genres"].to_list() == [["a"], [], ["b", "c"]]
    assert i["length_seconds_missing"].to_list() == [False, True, False]
    assert rep.changed == 2 + 1  # users 2 and 3, item 8
    assert (rep.rows_before, rep.rows_after, rep.removed) == (7, 7, 0)
    assert rep.details["users"]["age"] == {"nulls": 1, "filled": 1, "with": "median", "value": 30}
    assert rep.details["users"]["country"]["value"] == "se"
    assert rep.details["items"]["length_seconds"]["value"] == 200.0

    u, _, _ = impute_missing(users, None, categorical="unknown")
    assert u is not None
    assert u["country"].to_list() == ["se", "unknown", "no", "se"]
    assert u["tier"].to_list() == ["free", "paid", "unknown", "paid"]

    _, _, rep = impute_missing(None, None)
    assert rep.skipped


def test_impute_mode_ties_and_all_null() -> None:
    users = pl.DataFrame({"user_id": [1, 2, 3, 4, 5], "c": ["b", "a", "a", "b", None],
                          "x": pl.Series([None] * 5, dtype=pl.Float64)})
    u, _, rep = impute_missing(users)
    assert u is not None
    assert u["c"].to_list() == ["b", "a", "a", "b", "a"]  # tie: the smallest value
    assert u["x"].null_count() == 5 and "x_missing" not in u.columns
    assert rep.details["users"]["x"]["filled"] == 0


# ---------------------------------------------------------------------------- completion
def test_add_completion_ratio() -> None:
    ev = events([1, 1, 1, 1, 1, 1], [10, 10, 10, 11, 12, 13], ts=[1] * 6,
                duration=[30.0, None, 150.0, 10.0, 5.0, 30.0])
    items = pl.DataFrame({"item_id": [10, 11, 12, 13],
                          "length_seconds": [60.0, None, 0.0, 300.0],
                          "length_seconds_missing": [False, False, False, True]})
    out, rep, removed = add_completion_ratio(ev, items)
    # 30/60; null duration; 150/60 capped; unknown length; zero length; imputed length
    assert out["completion"].to_list() == [0.5, None, 1.0, None, None, None]
    assert out["completion"].dtype == pl.Float32
    assert out.columns == [*ev.columns, "completion"] and removed.height == 0
    assert rep.details == {"with_completion": 2, "null_duration": 1, "unknown_length": 3,
                           "capped_at_1": 1}
    assert rep.changed == 2

    minutes = pl.DataFrame({"item_id": [10], "length_minutes": [2.0]})
    out, _, _ = add_completion_ratio(ev[:1], minutes)
    assert out["completion"].to_list() == [0.25]
    # re-running replaces the column rather than duplicating it
    out2, _, _ = add_completion_ratio(out, minutes)
    assert out2.columns == out.columns

    _, rep, _ = add_completion_ratio(ev.drop("duration"), items)
    assert rep.skipped and rep.reason == "skipped: no duration column"
    _, rep, _ = add_completion_ratio(ev, None)
    assert rep.skipped


# ----------------------------------------------------------------------------- threshold
def test_apply_rating_threshold() -> None:
    ev = events([1, 1, 2, 2, 3], [1, 2, 1, 2, 1], ts=[1] * 5, value=[1, 4, 5, 3.5, None])
    out, rep, removed = apply_rating_threshold(ev, 4.0)
    assert out["value"].to_list() == [4.0, 5.0]
    assert rep.removed == 3
    assert removed["reason"].to_list() == ["below rating threshold 4", "below rating threshold 4",
                                           "null value"]
    assert rep.details["removed_by_reason"] == {"below rating threshold 4": 2, "null value": 1}


# --------------------------------------------------------------------------------- k-core
def _core_frame() -> pl.DataFrame:
    # u1: i1 i2 | u2: i1 i2 | u3: i3 i3 (a repeat) | u4: i3 i1
    return events(["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4"],
                  ["i1", "i2", "i1", "i2", "i3", "i3", "i3", "i1"], ts=list(range(8)))


def test_k_core_cascades() -> None:
    ev = _core_frame()
    out, rep, removed = k_core(ev, 2)
    # it1: u3 has 1 distinct item -> out; it2: i3 left with u4 only -> out;
    # it3: u4 left with i1 only -> out; it4: stable
    assert out.equals(ev[:4])
    assert removed["user_id"].to_list() == ["u3", "u3", "u4", "u4"]
    assert rep.details["iterations"] == 4
    assert (rep.details["users_before"], rep.details["users_after"]) == (4, 2)
    assert (rep.details["items_before"], rep.details["items_after"]) == (3, 2)
    assert removed["reason"][0] == "outside the k-core (users >= 2, items >= 2 pairs)"


def test_k_core_rows_and_item_k() -> None:
    ev = _core_frame()
    # counting rows, u3's repeat counts twice: everyone has 2 rows, i3 has 3 -> all stay
    out, rep, _ = k_core(ev, 2, count="rows")
    assert out.height == 8 and rep.removed == 0 and rep.details["iterations"] == 1
    # only an item minimum: i1 has 3 users, i2 and i3 have 2 -> only i1 rows stay
    out, rep, _ = k_core(ev, None, k_items=3)
    assert out["item_id"].to_list() == ["i1", "i1", "i1"]
    assert (rep.details["k_users"], rep.details["k_items"]) == (1, 3)
    _, rep, _ = k_core(ev, None)
    assert rep.skipped


# --------------------------------------------------------------------------------- driver
def _world() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    base = [  # user, item, ts offset, event, value, duration
        (1, 10, 0, "play", 4.0, 30.0),
        (1, 10, 0, "play", 4.0, 30.0),     # 1: duplicate of 0
        (1, 11, 10, "play", 2.0, 20.0),    # below threshold 3
        (2, 10, 20, "play", 5.0, -1.0),    # 3: negative duration
        (2, 11, 30, "click", 5.0, None),
        (2, 10, 40, "play", 5.0, 45.0),
        (3, 12, 50, "play", 5.0, 10.0),    # 6: user 3 and item 12 have one pair: k-core
        (1, 11, 60, "click", 5.0, None),
    ]
    bot = [(9, 10 + j % 2, 100 + j, "click", 1.0, None) for j in range(40)]  # rows 8..47
    rows = base + bot
    ev = pl.DataFrame({
        "user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
        "timestamp": pl.Series([T0 + r[2] for r in rows], dtype=pl.Int64),
        "event": [r[3] for r in rows],
        "value": pl.Series([r[4] for r in rows], dtype=pl.Float32),
        "duration": pl.Series([r[5] for r in rows], dtype=pl.Float32),
        "session_id": [0] * len(rows),
    })
    users = pl.DataFrame({"user_id": [1, 2, 3, 9], "country": ["se", None, "se", "no"]})
    items = pl.DataFrame({"item_id": [10, 11, 12], "length_seconds": [60.0, 40.0, None]})
    return ev, users, items


def test_clean_runs_steps_in_order() -> None:
    ev, users, items = _world()
    res = clean(ev, users, items, CleanConfig(rating_threshold=3.0, k_core=2,
                                              keep_events=("play", "click")))
    summary = res.summary()
    assert summary["step"].to_list() == [
        "drop_duplicates", "drop_bots", "fix_impossible", "impute_missing",
        "add_completion_ratio", "apply_rating_threshold", "keep_event_types", "k_core"]
    assert summary["removed"].to_list() == [1, 40, 1, 0, 0, 1, 0, 1]
    assert summary["rows_before"].to_list() == [48, 47, 7, 6, 6, 6, 5, 5]
    # impute: user 2's country, item 12's length; completion: rows 0, 2 and 5 (row 6's
    # item length was imputed, so it gets none)
    assert summary["changed"].to_list() == [0, 0, 0, 2, 3, 0, 0, 0]
    assert not summary["skipped"].any()

    # data errors in the quarantine, modelling filters apart; every input row accounted for
    assert res.quarantine.columns[:3] == ["input_row", "step", "reason"]
    assert res.quarantine["input_row"].to_list() == [1, *range(8, 48), 3]
    assert res.quarantine["reason"][-1] == "negative duration"
    assert res.filtered["input_row"].to_list() == [2, 6]
    assert res.filtered["step"].to_list() == ["apply_rating_threshold", "k_core"]
    assert res.events.height + res.quarantine.height + res.filtered.height == ev.height

    assert res.events.columns == [*ev.columns, "completion"]
    assert res.events["completion"].to_list() == [0.5, None, 0.75, None]
    assert res.step("k_core").details["iterations"] == 2
    assert res.users is not None and res.users["country"].to_list() == ["se", "se", "se", "no"]
    assert res.step("drop_bots").details["peak_events_per_minute"] == {9: 40}


def test_clean_skips_absent_columns_and_switched_off_steps() -> None:
    ev = events([1, 1, 2], [1, 2, 1], ts=[1, 2, 3], value=[1, 1, 1])
    res = clean(ev)
    reasons = dict(zip(res.summary()["step"], res.summary()["reason"], strict=True))
    assert reasons["drop_bots"].startswith("skipped: timestamps look ordinal")
    assert reasons["impute_missing"] == "skipped: no user or item table"
    assert reasons["add_completion_ratio"] == "skipped: no duration column"
    assert reasons["k_core"] == "skipped: switched off"
    assert res.events.equals(ev)
    assert res.quarantine.height == 0 and res.filtered.height == 0
    assert res.quarantine.columns == ["input_row", "step", "reason", *ev.columns]

    off = CleanConfig(dedupe=False, bot_events_per_minute=None, impute_missing=False,
                      completion_ratio=False)
    res = clean(pl.concat([ev, ev]), config=off)
    assert res.events.height == 6
    assert res.summary().filter(pl.col("skipped"))["step"].to_list() == [
        "drop_duplicates", "drop_bots", "impute_missing", "add_completion_ratio",
        "apply_rating_threshold", "keep_event_types", "k_core"]


def test_keep_event_types() -> None:
    ev, _, _ = _world()
    out, rep, gone = keep_event_types(ev.head(8), ["play"])
    assert out["event"].unique().to_list() == ["play"] and out.height == 6
    assert rep.removed == 2 and gone["reason"].unique().to_list() == ["event type not kept: click"]
    with pytest.raises(ValueError, match="none of these event types occur"):
        keep_event_types(ev, ["like"])
    no_event = ev.drop("event")
    assert keep_event_types(no_event, ["play"])[1].skipped


def test_clean_raw_and_encode() -> None:
    ev, users, items = _world()
    raw = RawData(events=ev, users=users, items=items, name="tiny", files=[Path("x.csv")])
    cleaned, res = clean_raw(raw, CleanConfig(impossible="clip"))
    assert cleaned.name == "tiny" and cleaned.files == [Path("x.csv")]
    assert cleaned.bad_rows is raw.bad_rows
    assert cleaned.events.equals(res.events)
    assert res.step("fix_impossible").changed == 1  # the negative duration clipped to 0
    ds = Dataset.from_raw(cleaned)
    assert len(ds) == ev.height - 1 - 40
    assert ds.n_users == 3


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="bot_events_per_minute"):
        CleanConfig(bot_events_per_minute=0)
    with pytest.raises(ValueError, match="impossible"):
        CleanConfig(impossible="drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rating_range"):
        CleanConfig(rating_range=(5, 1))
    with pytest.raises(ValueError, match="k_core"):
        CleanConfig(k_core=0)


# ------------------------------------------------------------------------------ real data
@pytest.mark.slow
@needs_ml100k
def test_clean_movielens_100k() -> None:
    df = pl.read_csv(ML100K / "ml-100k.inter", separator="\t")
    df.columns = ["user_id", "item_id", "value", "timestamp"]
    df = df.with_columns(pl.col("value").cast(pl.Float32), pl.col("timestamp").cast(pl.Int64))
    res = clean(df, config=CleanConfig(rating_threshold=4.0, k_core=5, rating_range=(1, 5)))
    steps = {s.step: s for s in res.steps}
    assert steps["drop_duplicates"].removed == 0
    assert steps["drop_bots"].removed == 0 and not steps["drop_bots"].skipped
    assert steps["fix_impossible"].removed == 0
    assert steps["apply_rating_threshold"].removed == int((df["value"] < 4).sum())
    out = res.events
    assert out.group_by("user_id").len()["len"].min() >= 5
    assert out.group_by("item_id").len()["len"].min() >= 5
    # every input row is accounted for
    assert res.filtered.height + out.height + res.quarantine.height == df.height
