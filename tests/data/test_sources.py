"""Readers (MovieLens, RecBole, SASRec, generic events) on tiny files written here.

Every bad-row kind is checked under both policies: ``error`` (a DataFormatError naming
file, line and field) and ``quarantine`` (counts and the quarantine frame's content).
"""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import polars as pl
import pytest

from streamrec.data.dataset import Dataset
from streamrec.data.errors import DataFormatError
from streamrec.data.sources import (
    read_events,
    read_movielens,
    read_recbole,
    read_sasrec,
    read_source,
    write_recbole_inter,
)

# 2024-01-02T03:04:05Z
T0 = 1704164645


def _write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def _quarantine(raw) -> list[tuple[int, str, str]]:
    """(line, field, reason) of every quarantined row, in line order."""
    f = raw.bad_rows.frame()
    return list(zip(f["line"].to_list(), f["field"].to_list(), f["reason"].to_list(), strict=True))


# ---------------------------------------------------------------------------- MovieLens
def _ml1m(tmp_path: Path, ratings: str) -> Path:
    d = tmp_path / "ml-1m"
    _write(d / "ratings.dat", ratings)
    _write(d / "users.dat", "1::F::1::10::48067\n2::M::56::16::02460\n")
    _write(d / "movies.dat", "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                             "2::Café au lait (1993)::Comedy\n", encoding="latin-1")
    return d


def test_movielens_1m_latin1_and_side_tables(tmp_path):
    d = _ml1m(tmp_path, "1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n")
    raw = read_movielens(d)
    assert raw.name == "ml-1m"
    ev = raw.events
    assert ev.columns == ["user_id", "item_id", "timestamp", "value"]
    assert ev.schema["user_id"] == pl.Int64 and ev.schema["value"] == pl.Float32
    assert ev.rows() == [(1, 1, 978300760, 5.0), (1, 2, 978302109, 3.0), (2, 1, 978301968, 4.0)]
    items = raw.items
    assert items["title"].to_list() == ["Toy Story (1995)", "Café au lait (1993)"]
    assert items["genres"].to_list() == [["Animation", "Children's", "Comedy"], ["Comedy"]]
    assert items["year"].to_list() == [1995, 1993]
    users = raw.users
    assert users.columns == ["user_id", "gender", "age", "occupation", "zip_code"]
    assert users.row(1) == (2, "M", 56, 16, "02460")
    assert raw.bad_rows.count == 0
    ds = Dataset.from_raw(raw)
    assert ds.items["year"].to_list() == [1995, 1993]


BAD_DAT = (
    "1::1::5::978300760\n"      # 1 good
    "1::2::3\n"                 # 2 wrong field count
    "x::3::4::978300761\n"      # 3 non-numeric user
    "2::3::4::yesterday\n"      # 4 non-numeric time
    "2::::4::978300762\n"       # 5 missing item
    "2::4::4::978300763\n"      # 6 good
)


def test_movielens_bad_rows_error_names_file_line_field(tmp_path):
    d = _ml1m(tmp_path, BAD_DAT)
    with pytest.raises(DataFormatError) as exc:
        read_movielens(d)
    msg = str(exc.value)
    assert "ratings.dat" in msg and "line 2" in msg and "wrong number of fields" in msg
    assert "3 more bad rows" in msg
    assert exc.value.line == 2 and exc.value.field == "(row)"


def test_movielens_bad_rows_quarantine(tmp_path):
    d = _ml1m(tmp_path, BAD_DAT)
    raw = read_movielens(d, on_bad_rows="quarantine")
    assert raw.events["item_id"].to_list() == [1, 4]
    assert _quarantine(raw) == [
        (2, "(row)", "wrong number of fields (expected 4, separator '::')"),
        (3, "user", "not an integer"),
        (4, "timestamp", "not an integer"),
        (5, "item", "missing required field"),
    ]
    f = raw.bad_rows.frame()
    assert f["raw"].to_list() == ["1::2::3", "x::3::4::978300761", "2::3::4::yesterday",
                                  "2::::4::978300762"]
    assert f["file"].str.ends_with("ratings.dat").all()


def test_movielens_100k(tmp_path):
    d = tmp_path / "ml-100k"
    _write(d / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    _write(d / "u.user", "196|49|M|writer|55105\n186|39|F|executive|00000\n")
    flags = ["0"] * 19
    flags[3], flags[5] = "1", "1"  # Animation, Comedy
    _write(d / "u.item",
           "242|Kolya (1996)|24-Jan-1997||http://x|" + "|".join(flags) + "\n"
           "302|L.A. Confidential|01-Jan-1997||http://y|" + "|".join(["0"] * 18 + ["1"]) + "\n"
           "303|Crème (1995)|01-Jan-1995||http://z|" + "|".join(["0"] * 19) + "\n",
           encoding="latin-1")
    raw = read_movielens(d)
    assert raw.name == "ml-100k"
    assert raw.events.rows() == [(196, 242, 881250949, 3.0), (186, 302, 891717742, 3.0)]
    assert raw.users.row(1) == (186, 39, "F", "executive", "00000")
    it = raw.items
    assert it["genres"].to_list() == [["Animation", "Comedy"], ["Western"], []]
    assert it["year"].to_list() == [1996, 1997, 1995]  # 2nd from the release date
    assert it["title"][2] == "Crème (1995)"


def test_movielens_csv_quoted_titles(tmp_path):
    d = tmp_path / "ml-latest-small"
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,11,4.5,964982703\n"
                              "1,12,3.0,964981247\n2,11,2.5,964982224\n")
    _write(d / "movies.csv",
           'movieId,title,genres\n11,"American President, The (1995)",Comedy|Drama|Romance\n'
           '12,"Dracula: Dead and Loving It (1995)",Comedy|Horror\n'
           '13,"A ""quoted"" title, with comma (2001)",(no genres listed)\n')
    raw = read_movielens(d)
    assert raw.name == "ml-latest-small"
    assert raw.events["value"].to_list() == [4.5, 3.0, 2.5]
    assert raw.items["title"].to_list() == ["American President, The (1995)",
                                            "Dracula: Dead and Loving It (1995)",
                                            'A "quoted" title, with comma (2001)']
    assert raw.items["genres"].to_list() == [["Comedy", "Drama", "Romance"],
                                             ["Comedy", "Horror"], []]
    assert raw.items["year"].to_list() == [1995, 1995, 2001]


def test_movielens_csv_missing_rating_and_bad_quotes(tmp_path):
    d = tmp_path / "ml-25m"
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,11,,964982703\n1,12,3,5\n")
    _write(d / "movies.csv", 'movieId,title,genres\n11,"Broken, (1995),Drama,Extra\n'
                             '12,"Fine, (1995)",Drama\n')
    raw = read_movielens(d, on_bad_rows="quarantine")
    assert raw.events.rows() == [(1, 12, 5, 3.0)]
    assert raw.items["item_id"].to_list() == [12]
    assert _quarantine(raw) == [  # sorted by file, then line: movies.csv first
        (2, "(row)", "unbalanced quote (a quoted field may not span lines)"),
        (2, "rating", "missing required field"),
    ]


def test_movielens_unknown_layout(tmp_path):
    _write(tmp_path / "x" / "ratings_reconstructed.csv", "user,movie\n1,2\n")
    with pytest.raises(FileNotFoundError, match="read_events"):
        read_movielens(tmp_path / "x")


# ---------------------------------------------------------------------------- RecBole
def _recbole(tmp_path: Path) -> Path:
    d = tmp_path / "toy"
    _write(d / "toy.inter",
           "user_id:token\titem_id:token\trating:float\ttimestamp:float\ttags:token_seq\t"
           "w:float_seq\n"
           "1\t10\t4\t881250949.0\ta b\t0.5 1.5\n"
           "2\t10\t\t881250950\t\t\n"
           "1\t20\t2.5\t881250951.7\tc\t2\n")
    _write(d / "toy.user", "user_id:token\tage:token\tzip_code:token\n1\t24\t02460\n2\t53\t85711\n")
    _write(d / "toy.item", "item_id:token\tmovie_title:token_seq\tclass:token_seq\n"
                           "10\tToy Story\tAnimation Comedy\n20\tHeat\tAction\n")
    return d


def test_recbole_typed_headers(tmp_path):
    raw = read_recbole(_recbole(tmp_path))
    ev = raw.events
    assert raw.name == "toy"
    assert ev.columns == ["user_id", "item_id", "timestamp", "value", "tags", "w"]
    assert ev.schema["user_id"] == pl.Int64 and ev.schema["timestamp"] == pl.Int64
    assert ev["timestamp"].to_list() == [881250949, 881250950, 881250951]  # floored
    assert ev["value"].to_list() == [4.0, None, 2.5]  # empty rating stays null
    assert ev["tags"].to_list() == [["a", "b"], None, ["c"]]
    assert ev["w"].to_list() == [[0.5, 1.5], None, [2.0]]
    assert raw.users.rows() == [(1, "24", "02460"), (2, "53", "85711")]
    assert raw.items["movie_title"].to_list() == [["Toy", "Story"], ["Heat"]]
    assert raw.items["class"].to_list() == [["Animation", "Comedy"], ["Action"]]
    # the .inter path itself works too
    raw2 = read_recbole(tmp_path / "toy" / "toy.inter")
    assert raw2.events.equals(ev) and raw2.users is not None


def test_recbole_string_tokens(tmp_path):
    _write(tmp_path / "s" / "s.inter", "user_id:token\titem_id:token\nu1\t007\nu2\t7\n")
    raw = read_recbole(tmp_path / "s")
    assert raw.events.schema["user_id"] == pl.String
    assert raw.events["item_id"].to_list() == ["007", "7"]  # leading zero keeps String
    assert raw.events["timestamp"].to_list() == [0, 1]  # no time column: row order
    assert raw.events["value"].to_list() == [1.0, 1.0]


BAD_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\tw:float_seq\n"
    "1\t10\t4\t100\t1 2\n"     # 2 good
    "1\t11\t4\n"               # 3 wrong field count
    "\t12\t4\t101\t1\n"        # 4 missing user
    "1\t13\tfive\t102\t1\n"    # 5 rating not a number
    "1\t14\t3\t\t1\n"          # 6 missing timestamp
    "1\t15\t3\t103\t1 x\n"     # 7 float_seq with a non-number
)


def test_recbole_bad_rows_both_policies(tmp_path):
    _write(tmp_path / "b" / "b.inter", BAD_INTER)
    with pytest.raises(DataFormatError, match=r"b\.inter, line 3.*wrong number of fields"):
        read_recbole(tmp_path / "b")
    raw = read_recbole(tmp_path / "b", on_bad_rows="quarantine")
    assert raw.events["item_id"].to_list() == [10]
    assert _quarantine(raw) == [
        (3, "(row)", "wrong number of fields (expected 5, separator '\\t')"),
        (4, "user_id", "missing required field"),
        (5, "rating", "not a number"),
        (6, "timestamp", "missing required field"),
        (7, "w", "not a number"),
    ]
    assert raw.bad_rows.frame()["raw"][2] == "1\t13\tfive\t102\t1"


def test_recbole_bad_header(tmp_path):
    _write(tmp_path / "h" / "h.inter", "user_id:token\titem_id:tokn\n1\t2\n")
    with pytest.raises(DataFormatError, match=r"line 1, field 'item_id:tokn'"):
        read_recbole(tmp_path / "h")


@pytest.mark.parametrize("ids", [[1, 2, 2], ["a", "b b", "c"]])
def test_recbole_roundtrip(tmp_path, ids):
    ev = pl.DataFrame({
        "user_id": ids,
        "item_id": [10, 11, 12],
        "timestamp": pl.Series([881250949, 5, 0], dtype=pl.Int64),
        "value": pl.Series([4.5, None, 0.1], dtype=pl.Float32),
    })
    path = write_recbole_inter(ev, tmp_path / "rt" / "rt.train.inter")
    assert path.read_text().splitlines()[0] == (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float")
    back = read_recbole(path)
    assert back.name == "rt.train"
    assert back.events.equals(ev)


def test_recbole_split_file_finds_side_tables(tmp_path):
    d = _recbole(tmp_path)
    write_recbole_inter(read_recbole(d).events, d / "toy.test.inter")
    raw = read_recbole(d / "toy.test.inter")
    assert raw.items is not None and raw.items.height == 2


def test_write_recbole_rejects_tabs(tmp_path):
    ev = pl.DataFrame({"user_id": ["a\tb"], "item_id": [1]})
    with pytest.raises(ValueError, match="tab"):
        write_recbole_inter(ev, tmp_path / "x.inter")


# ---------------------------------------------------------------------------- SASRec
def test_sasrec_positions(tmp_path):
    p = _write(tmp_path / "seq.txt", "1 5\n1\t7\n2  5\n\n1 9 \n2 8\n")
    raw = read_sasrec(p)
    assert raw.name == "seq"
    assert raw.events.rows() == [(1, 5, 0, 1.0), (1, 7, 1, 1.0), (2, 5, 0, 1.0),
                                 (1, 9, 2, 1.0), (2, 8, 1, 1.0)]


def test_sasrec_bad_rows(tmp_path):
    data = b"1 5\n1 6 7\n1 x\n\xff\xfe 3\n1 9\n"
    p = _write(tmp_path / "bad.txt", data)
    with pytest.raises(DataFormatError) as exc:
        read_sasrec(p)
    assert "bad.txt, line 2" in str(exc.value)
    raw = read_sasrec(p, on_bad_rows="quarantine")
    assert raw.events["item_id"].to_list() == [5, 9]
    assert raw.events["timestamp"].to_list() == [0, 1]
    assert _quarantine(raw) == [
        (2, "(row)", "wrong number of fields (expected 2, separator ' ')"),
        (3, "item", "not an integer"),
        (4, "(row)", "invalid UTF-8"),
    ]
    assert raw.bad_rows.frame()["raw"].to_list() == ["1 6 7", "1 x", "\ufffd\ufffd 3"]


# ---------------------------------------------------------------------------- events
def test_events_csv_autodetect_and_seconds(tmp_path):
    p = _write(tmp_path / "log.csv",
               "userId,movieId,ts,score,action,watch_time,device\n"
               "1,10,1704164645,4,play,30.5,tv\n"
               "2,11,1704164700,,click,,phone\n")
    raw = read_events(p)
    ev = raw.events
    assert raw.name == "log"
    assert ev.columns == ["user_id", "item_id", "timestamp", "value", "event", "duration", "device"]
    assert ev.rows() == [(1, 10, T0, 4.0, "play", 30.5, "tv"),
                         (2, 11, 1704164700, None, "click", None, "phone")]
    ds = Dataset.from_raw(raw)
    assert ds.interactions.values.tolist() == [4.0, 1.0]  # null value read as 1.0


@pytest.mark.parametrize(("factor", "unit"), [(1, "auto"), (1000, "auto"), (1_000_000, "auto"),
                                               (1000, "ms")])
def test_events_time_units(tmp_path, factor, unit):
    p = _write(tmp_path / "t.csv", f"user,item,time\n1,2,{T0 * factor + factor // 2}\n"
                                   f"1,3,{(T0 + 60) * factor}\n")
    raw = read_events(p, time_unit=unit)
    assert raw.events["timestamp"].to_list() == [T0, T0 + 60]


def test_events_iso_times(tmp_path):
    p = _write(tmp_path / "iso.tsv",
               "user_id\titem_id\tevent_time\n"
               "a\tx\t2024-01-02T03:04:05Z\n"
               "a\ty\t2024-01-02T05:04:05+02:00\n"
               "b\tx\t2024-01-02 03:04:05\n"
               "b\ty\t2024-01-02T03:04:05.750\n"
               "c\tz\t2024-01-02\n")
    raw = read_events(p)
    assert raw.events.schema["user_id"] == pl.String
    assert raw.events["timestamp"].to_list() == [T0, T0, T0, T0, T0 - 3 * 3600 - 4 * 60 - 5]


def test_events_bad_time_and_missing_fields(tmp_path):
    p = _write(tmp_path / "bad.csv",
               "user,item,timestamp,rating\n"
               "1,10,100,5\n"        # 2 good
               "1,,101,5\n"          # 3 missing item
               ",11,102,5\n"         # 4 missing user
               "1,12,not-a-time,5\n"  # 5 unparseable time
               "1,13,103,great\n"    # 6 value not a number
               "1,14,104\n"          # 7 wrong field count
               "1,15,,5\n")          # 8 missing time (explicit time column)
    with pytest.raises(DataFormatError) as exc:
        read_events(p, time_col="timestamp")
    assert "bad.csv" in str(exc.value) and "line 3" in str(exc.value)
    assert exc.value.field == "item"
    raw = read_events(p, time_col="timestamp", on_bad_rows="quarantine")
    assert raw.events["item_id"].to_list() == [10]
    assert _quarantine(raw) == [
        (3, "item", "missing required field"),
        (4, "user", "missing required field"),
        (5, "timestamp", "unparseable time"),
        (6, "rating", "not a number"),
        (7, "(row)", "wrong number of fields (expected 4, separator ',')"),
        (8, "timestamp", "missing required field"),
    ]
    assert raw.bad_rows.summary()["missing required field"] == 3


def test_events_partial_autodetected_time_falls_back(tmp_path, caplog):
    p = _write(tmp_path / "r.csv", "user,movie,rating,timestamp,chrono_rank\n"
                                   "1,10,5,978300760,1\n1,11,,,0\n2,10,3,,\n")
    with caplog.at_level(logging.WARNING):
        raw = read_events(p, user_col="user", item_col="movie")
    assert "not used as time" in caplog.text
    ev = raw.events
    assert ev.height == 3 and ev["timestamp"].to_list() == [0, 1, 2]
    assert ev["value"].to_list() == [5.0, None, 3.0]
    assert ev["timestamp_src"].to_list() == [978300760, None, None]
    assert ev["chrono_rank"].to_list() == [1, 0, None]
    q = read_events(p, user_col="user", item_col="movie", time_col="chrono_rank",
                    on_bad_rows="quarantine")
    assert q.events["timestamp"].to_list() == [1, 0]
    assert _quarantine(q) == [(4, "chrono_rank", "missing required field")]
    with pytest.raises(DataFormatError, match=r"r\.csv, line 4, field 'chrono_rank'"):
        read_events(p, user_col="user", item_col="movie", time_col="chrono_rank")
    none = read_events(p, user_col="user", item_col="movie", time_col="")
    assert none.events["timestamp"].to_list() == [0, 1, 2]


def test_events_unknown_column_lists_available(tmp_path):
    p = _write(tmp_path / "c.csv", "user,item\n1,2\n")
    with pytest.raises(DataFormatError, match=r"\['user', 'item'\]") as exc:
        read_events(p, time_col="when")
    assert exc.value.field == "when"
    p2 = _write(tmp_path / "d.csv", "who,what\n1,2\n")
    with pytest.raises(DataFormatError, match="user_col"):
        read_events(p2)


def test_events_invalid_utf8_line(tmp_path):
    p = _write(tmp_path / "enc.csv", b"user,item,title\n1,2,caf\xc3\xa9\n1,3,caf\xe9\n"
                                     b"2,4,\xef\xbf\xbd ok\n")
    with pytest.raises(DataFormatError, match=r"enc\.csv, line 3.*invalid UTF-8"):
        read_events(p)
    raw = read_events(p, on_bad_rows="quarantine")
    # a real U+FFFD in the file is fine; only the undecodable line is set aside
    assert raw.events["title"].to_list() == ["café", "\ufffd ok"]
    assert _quarantine(raw) == [(3, "(row)", "invalid UTF-8")]


def test_events_jsonl(tmp_path):
    p = _write(tmp_path / "e.jsonl",
               '{"user_id": 1, "item_id": "a", "ts": "2024-01-02T03:04:05Z", "rating": 4}\n'
               '{"user_id": 2, "item_id": "b", "ts": 1\n'
               "\n"
               '{"user_id": null, "item_id": "c", "ts": 5}\n'
               '{"user_id": 3, "item_id": "c", "ts": "2024-01-02", "extra": {"k": 1}}\n'
               '[1, 2]\n')
    with pytest.raises(DataFormatError, match=r"e\.jsonl, line 2.*invalid JSON"):
        read_events(p)
    raw = read_events(p, on_bad_rows="quarantine")
    ev = raw.events
    assert ev["user_id"].to_list() == [1, 3]
    assert ev["item_id"].to_list() == ["a", "c"]
    assert ev["timestamp"].to_list() == [T0, T0 - 11045]
    assert ev["value"].to_list() == [4.0, None]
    assert ev["extra"].to_list() == [None, {"k": 1}]
    assert _quarantine(raw) == [
        (2, "(row)", "invalid JSON (each line must be one JSON object)"),
        (4, "user_id", "missing required field"),
        (6, "(row)", "invalid JSON (each line must be one JSON object)"),
    ]
    assert raw.bad_rows.frame()["raw"][2] == "[1, 2]"


def test_events_parquet_autodetect_and_negative_duration(tmp_path):
    df = pl.DataFrame({
        "user_id": [7, 8, 9], "item_id": ["i1", "i2", "i3"],
        "timestamp": [T0 * 1000, (T0 + 1) * 1000, (T0 + 2) * 1000],
        "event": ["play", "click", "play"], "value": [1.0, 0.0, 1.0],
        "duration": pl.Series([30.0, -1.0, None], dtype=pl.Float32), "session_id": [1, 1, 2],
    })
    p = tmp_path / "events.parquet"
    df.write_parquet(p)
    with pytest.raises(DataFormatError) as exc:
        read_events(p)
    assert "events.parquet, row 2, field 'duration'" in str(exc.value)
    raw = read_events(p, on_bad_rows="quarantine")
    ev = raw.events
    assert ev.columns == ["user_id", "item_id", "timestamp", "value", "event", "duration",
                          "session_id"]
    assert ev.rows() == [(7, "i1", T0, 1.0, "play", 30.0, 1), (9, "i3", T0 + 2, 1.0, "play", None, 2)]
    q = raw.bad_rows.frame()
    assert q.select("line", "field", "reason").row(0) == (2, "duration", "negative duration")
    assert '"duration":-1.0' in q["raw"][0] and '"user_id":8' in q["raw"][0]


@pytest.mark.parametrize("damage", ["empty", "truncated", "not parquet"])
@pytest.mark.parametrize("policy", ["error", "quarantine"])
def test_events_unreadable_parquet_is_one_line_exit_2(tmp_path, damage, policy):
    from typer.testing import CliRunner

    from streamrec.cli.main import app

    p = tmp_path / "events.parquet"
    pl.DataFrame({"user_id": [1, 2], "item_id": [3, 4], "timestamp": [T0, T0]}).write_parquet(p)
    data = p.read_bytes()
    p.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                   "not parquet": b"user_id,item_id\n1,2\n"}[damage])
    with pytest.raises(DataFormatError, match="events.parquet: not a readable Parquet file"):
        read_events(p, on_bad_rows=policy)
    res = CliRunner().invoke(app, ["data", "ingest", "-d", f"events:{p}", "-o",
                                   str(tmp_path / "out"), "--on-bad-rows", policy],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    assert "not a readable Parquet file" in res.output and "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_events_parquet_datetime_column(tmp_path):
    df = pl.DataFrame({"user": [1], "item": [2]}).with_columns(
        pl.lit("2024-01-02T03:04:05").str.to_datetime().alias("time"))
    df.write_parquet(tmp_path / "dt.parquet")
    assert read_events(tmp_path / "dt.parquet").events["timestamp"].to_list() == [T0]


def test_events_side_tables_and_gzip(tmp_path):
    p = tmp_path / "log.csv.gz"
    p.write_bytes(gzip.compress(b"visitor_id,content_id\nu1,5\nu2,6\n"))
    _write(tmp_path / "users.csv", "visitor_id,country\nu1,FR\nu2,DE\nu1,US\n")
    pl.DataFrame({"content_id": [5, 6], "genre": ["drama", "news"]}).write_parquet(
        tmp_path / "items.parquet")
    with pytest.raises(DataFormatError, match=r"users\.csv, line 4, field 'visitor_id'"):
        read_events(p, users_path=tmp_path / "users.csv")
    raw = read_events(p, users_path=tmp_path / "users.csv", items_path=tmp_path / "items.parquet",
                      on_bad_rows="quarantine")
    assert raw.name == "log"
    assert raw.events.rows() == [("u1", 5, 0, 1.0), ("u2", 6, 1, 1.0)]
    assert raw.users.rows() == [("u1", "FR"), ("u2", "DE")]
    assert raw.items.rows() == [(5, "drama"), (6, "news")]
    assert _quarantine(raw) == [(4, "visitor_id", "duplicate id")]
    ds = Dataset.from_raw(raw)
    assert ds.items["genre"].to_list() == ["drama", "news"]


def test_read_source_dispatch(tmp_path):
    p = _write(tmp_path / "s.txt", "1 2\n1 3\n")
    assert read_source("sasrec", p).events.height == 2
    c = _write(tmp_path / "c.csv", "a,b\n1,2\n")
    raw = read_source("events", c, user_col="a", item_col="b", time_col=None)
    assert raw.events.rows() == [(1, 2, 0, 1.0)]
    with pytest.raises(ValueError, match="no options"):
        read_source("sasrec", p, user_col="a")
    with pytest.raises(ValueError, match="unknown source kind"):
        read_source("nope", p)


def test_events_format_details(tmp_path):
    # BOM + CRLF + ';' sniffed in a .txt file; a quoted field spanning lines is two bad lines
    p = _write(tmp_path / "semi.txt", b'\xef\xbb\xbfuser;item;note\r\n1;2;"a;b"\r\n\r\n'
                                      b'3;4;"broken\r\nrest"\r\n5;6;ok\r\n')
    raw = read_events(p, on_bad_rows="quarantine")
    assert raw.events.select("user_id", "item_id", "timestamp", "note").rows() == [
        (1, 2, 0, "a;b"), (5, 6, 1, "ok")]
    assert _quarantine(raw) == [(4, "(row)", "unbalanced quote (a quoted field may not span lines)"),
                                (5, "(row)", "unbalanced quote (a quoted field may not span lines)")]
    # a stray quote polars cannot parse is found among good lines and set aside
    m = _write(tmp_path / "m.csv", 'user,item,note\n1,2,"x"y\n3,4,"fine, really"\n5,6,ab"c"d\n')
    raw = read_events(m, on_bad_rows="quarantine")
    assert raw.events["note"].to_list() == ["fine, really", 'ab"c"d']
    assert _quarantine(raw) == [(2, "(row)", 'malformed quotes (quote whole fields: "a ""b"" c")')]
    # explicit unit: ms values taken as given seconds would be wrong, so "s" keeps them
    q = _write(tmp_path / "u.csv", f"user,item,time\n1,2,{T0 * 1000}\n")
    assert read_events(q, time_unit="s").events["timestamp"].to_list() == [T0 * 1000]
    with pytest.raises(ValueError, match="time_unit"):
        read_events(q, time_unit="minutes")
    with pytest.raises(ValueError, match="on_bad_rows"):
        read_events(q, on_bad_rows="drop")


def test_events_jsonl_mixed_types_read_as_text(tmp_path):
    p = _write(tmp_path / "m.ndjson", '{"user_id": 1, "item_id": 2, "x": {"a": 1}}\n'
                                      '{"user_id": 2, "item_id": 3, "x": [1]}\n')
    raw = read_events(p)
    assert raw.events["user_id"].to_list() == [1, 2]
    assert raw.events["x"].to_list() == ['{"a": 1}', "[1]"]
