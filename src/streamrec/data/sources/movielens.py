"""MovieLens directories: 100K (``u.data``), 1M/10M (``ratings.dat``), 20M/25M/latest (``ratings.csv``).

======================  ==================================================================
variant                 files read
======================  ==================================================================
ml-100k                 ``u.data`` (tab: user item rating timestamp), ``u.user``
                        (``|``: id|age|gender|occupation|zip), ``u.item`` (``|``, latin-1:
                        id|title|release date|video date|url|19 genre flags), ``u.genre``
ml-1m, ml-10m           ``ratings.dat`` (``user::item::rating::timestamp``), ``users.dat``
                        (``id::gender::age::occupation::zip``; 1M only), ``movies.dat``
                        (``id::title::genres``); latin-1 where not valid UTF-8
ml-20m, ml-25m, latest  ``ratings.csv`` (``userId,movieId,rating,timestamp`` with a header),
                        ``movies.csv`` (``movieId,title,genres``; quoted titles with commas)
======================  ==================================================================

Events: ``user_id``, ``item_id`` (Int64), ``timestamp`` (Int64 seconds), ``value`` (Float32,
the rating). Items: ``item_id``, ``title`` (as in the file, with its "(year)"), ``genres``
(list of str; "(no genres listed)" is an empty list), ``year`` (Int64, from the title, else
from the 100K release date), plus the variant's other fields. Users: ``user_id``, ``gender``,
``age``, ``occupation``, ``zip_code`` (1M ``age``/``occupation`` are the integer codes of its
README). Every field of the ratings is required and numeric; ids in the side tables too.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, RawData
from streamrec.data.errors import BadRowPolicy, BadRows, DataFormatError
from streamrec.data.sources._columns import dedupe_ids, parse_float, parse_id, parse_int
from streamrec.data.sources._text import Rejects, read_delimited

GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)
_NO_GENRES = "(no genres listed)"
_YEAR_IN_TITLE = r"\((\d{4})\)\s*$"


def read_movielens(path: str | Path, *, on_bad_rows: BadRowPolicy = "error") -> RawData:
    """Read a MovieLens directory (100K, 1M, 10M, 20M, 25M or latest; detected from its files).

    Parameters
    ----------
    path : str or Path
        The directory (e.g. ``ml-1m/``). Its name becomes ``RawData.name``.
    on_bad_rows : {"error", "quarantine"}
        A malformed row (wrong number of fields, non-numeric id/rating/time, a missing field)
        raises :class:`~streamrec.data.errors.DataFormatError` naming file, line and field,
        or is set aside in ``RawData.bad_rows``.

    Returns
    -------
    RawData
        ``events`` shape (n, 4): user_id, item_id, timestamp, value; ``users``/``items``
        side tables when their files exist.
    """
    d = Path(path)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory; read_movielens takes a MovieLens folder")
    bad = BadRows(policy=on_bad_rows)
    if (d / "u.data").exists():
        raw = _read_100k(d, on_bad_rows, bad)
    elif (d / "ratings.dat").exists():
        raw = _read_dat(d, on_bad_rows, bad)
    elif (d / "ratings.csv").exists():
        raw = _read_csv(d, on_bad_rows, bad)
    else:
        present = sorted(p.name for p in d.iterdir())[:20]
        hint = ""
        if (d / "ratings_reconstructed.csv").exists():
            hint = ("; for ratings_reconstructed.csv use read_events(..., user_col='user', "
                    "item_col='movie') (SPEC events:FILE?user=user&item=movie)")
        raise FileNotFoundError(
            f"{d}: no MovieLens ratings file (u.data for 100K, ratings.dat for 1M/10M, "
            f"ratings.csv for 20M/25M/latest); the folder holds {present}{hint}"
        )
    raw.name = d.name
    raw.bad_rows = bad
    return raw


def _ratings(frame: pl.DataFrame, cols: tuple[str, str, str, str], rej: Rejects) -> pl.DataFrame:
    """Validated canonical events from the four string columns user, item, rating, time."""
    u, i, r, t = cols
    frame = parse_id(frame, u, USER, rej, numeric=True)
    frame = parse_id(frame, i, ITEM, rej, numeric=True)
    frame = parse_float(frame, r, VALUE, rej, required=True)
    frame = parse_int(frame, t, TIME, rej)
    return frame.select(USER, ITEM, TIME, VALUE)


def _finish_side(frame: pl.DataFrame, src: str, key: str, rej: Rejects,
                 columns: list[pl.Expr | str]) -> pl.DataFrame:
    frame = parse_id(frame, src, key, rej, numeric=True)
    frame = dedupe_ids(frame, key, src, rej)
    return frame.select(key, *columns)


def _read_100k(d: Path, policy: BadRowPolicy, bad: BadRows) -> RawData:
    files = [d / "u.data"]
    rej = Rejects(d / "u.data", policy)
    frame, _ = read_delimited(d / "u.data", rej, sep="\t",
                              names=["user", "item", "rating", "timestamp"])
    events = _ratings(frame, ("user", "item", "rating", "timestamp"), rej)
    rej.finish(bad)

    users = None
    if (d / "u.user").exists():
        files.append(d / "u.user")
        rej = Rejects(d / "u.user", policy)
        frame, _ = read_delimited(d / "u.user", rej, sep="|", encoding="auto",
                                  names=["id", "age", "gender", "occupation", "zip_code"])
        frame = parse_int(frame, "age", "__age", rej, required=False)
        users = _finish_side(frame, "id", USER, rej, [pl.col("__age").alias("age"), "gender",
                                                      "occupation", "zip_code"])
        rej.finish(bad)

    items = None
    if (d / "u.item").exists():
        files.append(d / "u.item")
        genres: tuple[str, ...] = GENRES_100K
        if (d / "u.genre").exists():
            files.append(d / "u.genre")
            genres = _read_genre_names(d / "u.genre", policy, bad) or GENRES_100K
        flags = [f"__g{k}" for k in range(len(genres))]
        rej = Rejects(d / "u.item", policy)
        frame, _ = read_delimited(
            d / "u.item", rej, sep="|", encoding="auto",
            names=["id", "title", "release_date", "video_release_date", "imdb_url", *flags],
        )
        genre_list = pl.concat_list(
            [pl.when(pl.col(f) == "1").then(pl.lit(g)) for f, g in zip(flags, genres, strict=True)]
        ).list.drop_nulls()
        year = pl.coalesce(pl.col("title").str.extract(_YEAR_IN_TITLE, 1),
                           pl.col("release_date").str.extract(r"(\d{4})\s*$", 1)).cast(pl.Int64)
        items = _finish_side(frame, "id", ITEM, rej, [
            "title", genre_list.alias("genres"), year.alias("year"), "release_date",
            "video_release_date", "imdb_url"])
        rej.finish(bad)
    return RawData(events=events, users=users, items=items, files=files)


def _read_genre_names(path: Path, policy: BadRowPolicy, bad: BadRows) -> tuple[str, ...]:
    """Genre names of ``u.genre`` (``name|index`` lines) in index order."""
    rej = Rejects(path, policy)
    frame, _ = read_delimited(path, rej, sep="|", names=["name", "index"], encoding="auto")
    frame = parse_int(frame, "index", "__index", rej)
    rej.finish(bad)
    return tuple(frame.sort("__index")["name"].to_list())


def _read_dat(d: Path, policy: BadRowPolicy, bad: BadRows) -> RawData:
    files = [d / "ratings.dat"]
    rej = Rejects(d / "ratings.dat", policy)
    frame, _ = read_delimited(d / "ratings.dat", rej, sep="::", encoding="auto",
                              names=["user", "item", "rating", "timestamp"])
    events = _ratings(frame, ("user", "item", "rating", "timestamp"), rej)
    rej.finish(bad)

    users = None
    if (d / "users.dat").exists():
        files.append(d / "users.dat")
        rej = Rejects(d / "users.dat", policy)
        frame, _ = read_delimited(d / "users.dat", rej, sep="::", encoding="auto",
                                  names=["id", "gender", "age", "occupation", "zip_code"])
        frame = parse_int(frame, "age", "__age", rej, required=False)
        frame = parse_int(frame, "occupation", "__occupation", rej, required=False)
        users = _finish_side(frame, "id", USER, rej, [
            "gender", pl.col("__age").alias("age"), pl.col("__occupation").alias("occupation"),
            "zip_code"])
        rej.finish(bad)

    items = None
    if (d / "movies.dat").exists():
        files.append(d / "movies.dat")
        items = _read_movies(d / "movies.dat", policy, bad, sep="::", quoting=False)
    return RawData(events=events, users=users, items=items, files=files)


def _read_movies(path: Path, policy: BadRowPolicy, bad: BadRows, *, sep: str | None,
                 quoting: bool, header: bool = False) -> pl.DataFrame:
    """``id, title, genres`` -> item table with ``genres`` as a list and ``year``."""
    rej = Rejects(path, policy)
    frame, names = read_delimited(path, rej, sep=sep, encoding="auto", quoting=quoting,
                                  header=header, names=None if header else ["id", "title", "genres"])
    if header:
        frame = frame.rename(dict(zip(names[:3], ["id", "title", "genres"], strict=True)))
    genres = pl.col("genres").str.split("|").list.eval(
        pl.element().filter(pl.element() != _NO_GENRES))
    year = pl.col("title").str.extract(_YEAR_IN_TITLE, 1).cast(pl.Int64)
    items = _finish_side(frame, "id", ITEM, rej, ["title", genres.alias("genres"), year.alias("year")])
    rej.finish(bad)
    return items


def _read_csv(d: Path, policy: BadRowPolicy, bad: BadRows) -> RawData:
    files = [d / "ratings.csv"]
    rej = Rejects(d / "ratings.csv", policy)
    frame, names = read_delimited(d / "ratings.csv", rej, sep=",", header=True)
    expected = ["userId", "movieId", "rating", "timestamp"]
    missing = [c for c in expected if c not in names]
    if missing:
        raise DataFormatError(d / "ratings.csv", 1, missing[0],
                              f"the header has no column {missing[0]!r} (columns: {names})",
                              f"MovieLens ratings.csv needs the header {','.join(expected)}")
    events = _ratings(frame, ("userId", "movieId", "rating", "timestamp"), rej)
    rej.finish(bad)
    items = None
    if (d / "movies.csv").exists():
        files.append(d / "movies.csv")
        items = _read_movies(d / "movies.csv", policy, bad, sep=",", quoting=True, header=True)
    return RawData(events=events, items=items, files=files)


__all__ = ["GENRES_100K", "read_movielens"]
