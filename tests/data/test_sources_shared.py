"""Readers on the real data in ../shared/data (slow; skipped when the data is absent)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from streamrec.data.dataset import Dataset
from streamrec.data.errors import DataFormatError
from streamrec.data.sources import read_events, read_movielens, read_recbole, read_sasrec
from tests._paths import ML100K, SHARED_DATA

DATA = SHARED_DATA
ML1M = DATA / "ml-1m"
RECONSTRUCTED = ML1M / "ratings_reconstructed.csv"
SEQ = DATA / "ml-1m-seq" / "ml-1m.txt"

pytestmark = pytest.mark.slow


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent")


def test_recbole_ml100k():
    _need(ML100K)
    raw = read_recbole(ML100K)
    ev = raw.events
    assert raw.name == "ml-100k" and raw.bad_rows.count == 0
    assert ev.height == 100_000
    assert ev["user_id"].n_unique() == 943 and ev["item_id"].n_unique() == 1_682
    assert ev.schema["user_id"] == pl.Int64 and ev.schema["timestamp"] == pl.Int64
    assert ev.row(0) == (196, 242, 881250949, 3.0)  # first line of ml-100k.inter
    assert raw.users.columns == ["user_id", "age", "gender", "occupation", "zip_code"]
    assert raw.items.columns == ["item_id", "movie_title", "release_year", "class"]
    assert raw.users.height == 943 and raw.items.height == 1_682
    ds = Dataset.from_raw(raw)
    assert (ds.n_users, ds.n_items, len(ds)) == (943, 1_682, 100_000)


def test_sasrec_ml1m():
    _need(SEQ)
    raw = read_sasrec(SEQ)
    ev = raw.events
    assert raw.name == "ml-1m" and raw.bad_rows.count == 0
    assert ev.height == 999_611
    assert ev["user_id"].n_unique() == 6_040 and ev["item_id"].n_unique() == 3_416
    # positions are 0 .. len(history) - 1 for every user
    per_user = ev.group_by("user_id").agg(pl.len().alias("n"), pl.col("timestamp").max())
    assert (per_user["timestamp"] == per_user["n"] - 1).all()
    assert ev.head(2)["timestamp"].to_list() == [0, 1]


def test_events_reconstructed_no_time():
    _need(RECONSTRUCTED)
    raw = read_events(RECONSTRUCTED, user_col="user", item_col="movie")
    ev = raw.events
    assert ev.height == 1_000_209 and raw.bad_rows.count == 0
    assert ev["user_id"].n_unique() == 6_040 and ev["item_id"].n_unique() == 3_706
    assert ev["value"].null_count() == 245  # empty ratings kept as null
    assert ev["timestamp"].to_list()[:3] == [0, 1, 2]  # row order
    assert ev["timestamp_src"].null_count() == 1_000_209 - 487_650
    assert ev["chrono_rank"].null_count() == 598


def test_events_reconstructed_chrono_rank_quarantine():
    _need(RECONSTRUCTED)
    raw = read_events(RECONSTRUCTED, user_col="user", item_col="movie", time_col="chrono_rank",
                      on_bad_rows="quarantine")
    assert raw.events.height == 999_611
    q = raw.bad_rows.frame()
    assert q.height == 598
    assert set(q["field"].to_list()) == {"chrono_rank"}
    assert set(q["reason"].to_list()) == {"missing required field"}
    assert raw.bad_rows.summary() == {"missing required field": 598}


def test_events_reconstructed_chrono_rank_error():
    _need(RECONSTRUCTED)
    with pytest.raises(DataFormatError) as exc:
        read_events(RECONSTRUCTED, user_col="user", item_col="movie", time_col="chrono_rank")
    msg = str(exc.value)
    first = exc.value.line
    assert "ratings_reconstructed.csv" in msg and f"line {first}" in msg and "chrono_rank" in msg
    # the reported line really has an empty chrono_rank (the last field)
    with RECONSTRUCTED.open() as fh:
        for _ in range(first - 1):
            next(fh)
        assert next(fh).rstrip("\n").endswith(",")


def test_movielens_1m_side_files(tmp_path):
    """users.dat / movies.dat (latin-1) through read_movielens, with a tiny ratings.dat."""
    _need(ML1M / "movies.dat")
    d = tmp_path / "ml-1m"
    d.mkdir()
    for name in ("users.dat", "movies.dat"):
        (d / name).symlink_to(ML1M / name)  # linked, never copied
    (d / "ratings.dat").write_text("1::1193::5::978300760\n1::73::3::978302109\n")
    raw = read_movielens(d)
    assert raw.users.height == 6_040 and raw.items.height == 3_883
    titles = dict(zip(raw.items["item_id"].to_list(), raw.items["title"].to_list(), strict=True))
    assert titles[73] == "Misérables, Les (1995)"
    assert titles[582] == "Metisse (Café au Lait) (1993)"
    assert raw.items.filter(pl.col("item_id") == 1)["genres"].to_list() == [
        ["Animation", "Children's", "Comedy"]]
    assert raw.users.row(0) == (1, "F", 1, 10, "48067")


def test_movielens_shared_dir_points_to_events():
    _need(RECONSTRUCTED)
    with pytest.raises(FileNotFoundError, match="read_events"):
        read_movielens(ML1M)
