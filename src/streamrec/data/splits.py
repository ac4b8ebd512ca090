"""Train/valid/test splits with vocabularies fitted on train only.

The protocols:

``temporal_global``
    One time cut for everybody, as in production: the latest events are valid/test.
``temporal_user``
    Per user, stable sort by time (ties kept in file order); the first ``floor(0.8 n)``
    events train, the next ones up to ``floor(0.9 n)`` valid, the rest test.
``leave_last_out``
    Per user, the last event is test and the one before valid (sequential benchmarks).
``random_user``
    Per user, a seeded random order, then the same floor rule (RecBole's "RO" split).

Two session protocols, for datasets whose "users" are sessions (a :func:`sessions_dataset`
of a log, or the ``synthetic-sessions`` world):

``case_study``
    Whole sessions assigned at random (seeded) to train/valid/test by the ratios (floor rule
    on the number of sessions). Valid/test sessions are cold users by design: a model scores
    them from their item sequence.
``session_temporal``
    Whole sessions ordered by start time: the latest ``test`` share of sessions is test, the
    ``valid`` share before it valid (sessions starting in the cut second go to the later part).

Every protocol assigns each row to train, valid or test and then shares one step: the
vocabularies are fitted on the train rows, and the users/items that only occur in valid or
test ("cold") are counted and either dropped or kept (``cold="keep"``, the default, keeps
them with indices after the train ones so that metrics count them as misses, as the peers do).
The session protocols always keep their cold users (sessions); ``cold`` applies to items.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import polars as pl

from streamrec.data.dataset import ITEM, TIME, USER, VALUE, Dataset
from streamrec.data.interactions import Interactions
from streamrec.data.vocab import Vocabulary

ColdPolicy = Literal["keep", "drop"]
#: train, valid, test shares (non-negative, summing to 1)
Ratios = tuple[float, float, float]
PROTOCOLS = ("temporal_global", "temporal_user", "leave_last_out", "random_user", "case_study",
             "session_temporal")
TRAIN, VALID, TEST = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Split:
    """A split of one dataset.

    A dataclass rather than a NamedTuple: it also carries the vocabularies and the counts,
    and attribute access stays stable when fields are added.

    Attributes
    ----------
    train, valid, test : Interactions
        ``train`` lives in the train index spaces (``n_users``/``n_items`` = train sizes);
        ``valid``/``test`` may hold cold indices ``>= train.n_users`` / ``>= train.n_items``
        when cold rows are kept.
    user_vocab, item_vocab : Vocabulary
        Train ids first (fitted on train), then cold ids of valid/test when kept.
    protocol : str
    stats : dict
        Row counts and cold-user/item counts per part.
    """

    train: Interactions
    valid: Interactions
    test: Interactions
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    protocol: str
    stats: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Users known at training time."""
        return self.train.n_users

    @property
    def n_items(self) -> int:
        """Items known at training time."""
        return self.train.n_items

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


# ---------------------------------------------------------------------------- assignment
def _positions(users: np.ndarray, order: np.ndarray, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``order``: 0-based position inside the user's run, and run length."""
    u = users[order]
    counts = np.bincount(u, minlength=n_users)
    starts = np.cumsum(counts) - counts
    pos = np.arange(len(u)) - starts[u]
    return pos, counts[u]


def _ratio_assign(pos: np.ndarray, n: np.ndarray, ratios: Ratios) -> np.ndarray:
    train_r, valid_r, test_r = _check_ratios(ratios)
    # floor(train * n) and floor((train + valid) * n), guarded against 0.1 + 0.8 = 0.9000000001
    train_end = np.floor(n * train_r + 1e-9).astype(np.int64)
    valid_end = np.floor(n * round(train_r + valid_r, 12) + 1e-9).astype(np.int64)
    out = np.full(len(pos), TEST, dtype=np.int8)
    out[pos < valid_end] = VALID
    out[pos < train_end] = TRAIN
    return out


def _check_ratios(ratios: Ratios) -> Ratios:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0):
        raise ValueError(f"split ratios must be three non-negative numbers summing to 1, got {ratios}")
    return ratios


def assign_temporal_user(inter: Interactions, ratios: Ratios = (0.8, 0.1, 0.1)) -> np.ndarray:
    """Part (0 train, 1 valid, 2 test) of each row, shape (n,), by per-user time order."""
    order = inter.chronological_order()
    pos, n = _positions(inter.users, order, inter.n_users)
    out = np.empty(len(inter), dtype=np.int8)
    out[order] = _ratio_assign(pos, n, ratios)
    return out


def assign_random_user(inter: Interactions, ratios: Ratios = (0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Part of each row by a seeded random order inside each user's history, shape (n,)."""
    key = np.random.default_rng(seed).random(len(inter))
    order = np.lexsort((key, inter.users))
    pos, n = _positions(inter.users, order, inter.n_users)
    out = np.empty(len(inter), dtype=np.int8)
    out[order] = _ratio_assign(pos, n, ratios)
    return out


def assign_leave_last_out(inter: Interactions, min_history: int = 3) -> np.ndarray:
    """Last event of each user test, the one before valid; users with fewer than
    ``min_history`` events stay entirely in train. Shape (n,)."""
    order = inter.chronological_order()
    pos, n = _positions(inter.users, order, inter.n_users)
    part = np.full(len(order), TRAIN, dtype=np.int8)
    eligible = n >= min_history
    part[eligible & (pos == n - 1)] = TEST
    part[eligible & (pos == n - 2)] = VALID
    out = np.empty(len(inter), dtype=np.int8)
    out[order] = part
    return out


def assign_temporal_global(
    inter: Interactions, valid: float = 0.1, test: float = 0.1
) -> np.ndarray:
    """One global time cut: the latest ``test`` fraction of events (by time) is test, the
    ``valid`` fraction before it valid. Events sharing the cut timestamp go to the later part,
    so no event of the same second is split across the cut. Shape (n,)."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ValueError(f"temporal_global: valid and test fractions must be in [0, 1), got {valid}, {test}")
    n = len(inter)
    ts = np.sort(inter.timestamps)
    out = np.zeros(n, dtype=np.int8)
    if n == 0:
        return out
    if valid + test > 0:
        t_valid = ts[min(n - 1, int(np.floor(n * (1 - valid - test))))]
        out[inter.timestamps >= t_valid] = VALID
    if test > 0:
        t_test = ts[min(n - 1, int(np.floor(n * (1 - test))))]
        out[inter.timestamps >= t_test] = TEST
    return out


def _user_parts(inter: Interactions, user_part: np.ndarray) -> np.ndarray:
    """Part of each row from the part of its user, shape (n,)."""
    return user_part[inter.users].astype(np.int8)


def assign_case_study(inter: Interactions, ratios: Ratios = (0.8, 0.1, 0.1), seed: int = 0) -> np.ndarray:
    """Part of each row, shape (n,): whole users (sessions) in a seeded random order, the first
    ``floor(train * U)`` train, up to ``floor((train + valid) * U)`` valid, the rest test
    (``U``: users with at least one row)."""
    present = np.flatnonzero(inter.user_counts() > 0)
    order = present[np.random.default_rng(seed).permutation(len(present))]
    user_part = np.full(inter.n_users, TRAIN, dtype=np.int8)
    n = np.full(len(order), len(order), dtype=np.int64)
    user_part[order] = _ratio_assign(np.arange(len(order)), n, ratios)
    return _user_parts(inter, user_part)


def session_starts(inter: Interactions) -> np.ndarray:
    """First timestamp of each user (session), shape (n_users,) int64; users without rows get
    the largest int64."""
    start = np.full(inter.n_users, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(start, inter.users, inter.timestamps)
    return start


def assign_session_temporal(inter: Interactions, valid: float = 0.1, test: float = 0.1) -> np.ndarray:
    """Part of each row, shape (n,): whole users (sessions) by start time; the latest ``test``
    share of sessions is test, the ``valid`` share before it valid. Sessions starting in the
    second of a cut go to the later part, so every test session starts after every valid one,
    and every valid one after every train one."""
    if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
        raise ValueError(f"session_temporal: valid and test fractions must be in [0, 1), got {valid}, {test}")
    present = np.flatnonzero(inter.user_counts() > 0)
    start = session_starts(inter)
    s = np.sort(start[present])
    n = len(s)
    user_part = np.full(inter.n_users, TRAIN, dtype=np.int8)
    if n == 0:
        return _user_parts(inter, user_part)
    if valid + test > 0:
        t_valid = s[min(n - 1, int(np.floor(n * round(1 - valid - test, 12) + 1e-9)))]
        user_part[start >= t_valid] = VALID
    if test > 0:
        t_test = s[min(n - 1, int(np.floor(n * round(1 - test, 12) + 1e-9)))]
        user_part[start >= t_test] = TEST
    return _user_parts(inter, user_part)


# ---------------------------------------------------------------------------- sessions
def session_ids(inter: Interactions, gap: int = 1800) -> np.ndarray:
    """Session of each row, shape (n,) int64.

    A session starts at a user's first event and whenever more than ``gap`` seconds passed
    since that user's previous event (ties in time kept in row order). Ids are ``0 .. S - 1``
    numbered in (user index, time) order.
    """
    if gap < 0:
        raise ValueError(f"session gap must be >= 0 seconds, got {gap}")
    order = inter.chronological_order()
    u = inter.users[order]
    t = inter.timestamps[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] - t[:-1] > gap)
    out = np.empty(len(order), dtype=np.int64)
    out[order] = np.cumsum(new) - 1
    return out


class SessionsDataset(NamedTuple):
    """What :func:`sessions_dataset` returns.

    Attributes
    ----------
    dataset : Dataset
        One "user" per kept session.
    stats : dict
        ``gap``, ``min_length``, ``users`` (original), ``sessions``, ``sessions_kept``,
        ``sessions_dropped``, ``rows``, ``rows_kept``, ``rows_dropped``.
    dropped_rows : ndarray of int64, shape (rows_dropped,)
        Rows of the input ``ds.interactions`` that belong to dropped (short) sessions.
    """

    dataset: Dataset
    stats: dict
    dropped_rows: np.ndarray


def sessions_dataset(ds: Dataset, gap: int = 1800, min_length: int = 3) -> SessionsDataset:
    """A dataset whose users are the sessions of ``ds`` (see :func:`session_ids`).

    The new ``user_id`` is the Int64 session id of :func:`session_ids` on ``ds`` (stable:
    numbered before short sessions are dropped, so ids may have gaps). The users table holds
    ``user_id``, ``user_id_orig`` (the original external user id), ``session_index`` (0-based
    rank of the session among its user's sessions), ``start_ts``, ``length`` and the columns
    of ``ds.users`` (prefixed ``user_`` when the name is taken). The event log keeps every
    column of ``ds.log`` with ``user_id`` replaced and ``user_id_orig`` added; items keep
    ``ds.items``.

    Sessions with fewer than ``min_length`` events are dropped; they are counted in
    ``stats`` and their rows listed in ``dropped_rows`` (never dropped silently).

    Returns
    -------
    SessionsDataset
        ``(dataset, stats, dropped_rows)``.
    """
    if min_length < 1:
        raise ValueError(f"min_length must be >= 1, got {min_length}")
    inter = ds.interactions
    sid = session_ids(inter, gap)
    n_s = int(sid.max()) + 1 if len(sid) else 0
    length = np.bincount(sid, minlength=n_s)
    keep_s = length >= min_length
    keep = keep_s[sid]
    # per session: original user, start, rank among the user's sessions
    first_row = np.full(n_s, len(sid), dtype=np.int64)
    np.minimum.at(first_row, sid, np.arange(len(sid)))
    s_user = inter.users[first_row] if n_s else np.zeros(0, np.int32)
    s_start = np.full(n_s, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(s_start, sid, inter.timestamps)
    user_first = np.full(inter.n_users, n_s, dtype=np.int64)
    np.minimum.at(user_first, s_user, np.arange(n_s))
    s_index = np.arange(n_s) - user_first[s_user]  # session ids are in (user, time) order

    log = ds.log if ds.log is not None and ds.log.height == len(inter) else ds.events_frame()
    orig_ids = ds.user_vocab.decode(inter.users)
    events = log.with_columns(
        pl.Series(USER, sid, dtype=pl.Int64),
        pl.Series("user_id_orig", orig_ids),
    ).filter(pl.Series(keep))
    kept = np.flatnonzero(keep_s)
    users = pl.DataFrame({
        USER: pl.Series(kept, dtype=pl.Int64),
        "user_id_orig": pl.Series(ds.user_vocab.decode(s_user[kept])),
        "session_index": pl.Series(s_index[kept], dtype=pl.Int32),
        "start_ts": pl.Series(s_start[kept], dtype=pl.Int64),
        "length": pl.Series(length[kept], dtype=pl.Int32),
    })
    if ds.users is not None:
        extra = ds.users.drop(USER)
        extra = extra.rename({c: f"user_{c}" for c in extra.columns if c in users.columns})
        users = pl.concat([users, extra[s_user[kept].astype(np.int64)]], how="horizontal")
    out = Dataset.from_frames(events, users, ds.items, name=f"{ds.name}-sessions")
    dropped = np.flatnonzero(~keep)
    stats = {
        "gap": gap, "min_length": min_length, "users": int((inter.user_counts() > 0).sum()),
        "sessions": n_s, "sessions_kept": int(keep_s.sum()),
        "sessions_dropped": int(n_s - keep_s.sum()),
        "rows": len(inter), "rows_kept": int(keep.sum()), "rows_dropped": len(dropped),
    }
    return SessionsDataset(out, stats, dropped)


# ---------------------------------------------------------------------------- materialise
def split_by_assignment(
    ds: Dataset, part: np.ndarray, *, protocol: str, cold: ColdPolicy = "keep", params: dict | None = None,
    cold_users: ColdPolicy | None = None,
) -> Split:
    """Build a :class:`Split` from a per-row part array (0 train, 1 valid, 2 test).

    Vocabularies are fitted on the train rows only; cold users/items in valid/test are
    counted and kept (indices after the train ones) or dropped. ``cold_users`` (default:
    ``cold``) sets the policy for users alone, ``cold`` then applies to items.
    """
    if cold not in ("keep", "drop"):
        raise ValueError(f"cold must be 'keep' or 'drop', got {cold!r}")
    cold_users = cold if cold_users is None else cold_users
    if cold_users not in ("keep", "drop"):
        raise ValueError(f"cold_users must be 'keep' or 'drop', got {cold_users!r}")
    inter = ds.interactions
    if len(part) != len(inter):
        raise ValueError("part array must have one entry per interaction")
    train_rows = part == TRAIN
    train_users = np.unique(inter.users[train_rows])
    train_items = np.unique(inter.items[train_rows])
    n_tu, n_ti = len(train_users), len(train_items)

    umap = np.full(inter.n_users, -1, dtype=np.int64)
    umap[train_users] = np.arange(n_tu)
    imap = np.full(inter.n_items, -1, dtype=np.int64)
    imap[train_items] = np.arange(n_ti)
    heldout = ~train_rows
    cold_user_idx = np.setdiff1d(np.unique(inter.users[heldout]), train_users, assume_unique=True)
    cold_items = np.setdiff1d(np.unique(inter.items[heldout]), train_items, assume_unique=True)
    stats: dict = {"protocol": protocol, "params": params or {}, "cold": cold,
                   **({"cold_users_policy": cold_users} if cold_users != cold else {}),
                   "rows_before": {}, "cold_users": {}, "cold_items": {}, "cold_rows": {}}
    for name, code in (("valid", VALID), ("test", TEST)):
        rows = part == code
        cu = (umap[inter.users[rows]] < 0)
        ci = (imap[inter.items[rows]] < 0)
        stats["rows_before"][name] = int(rows.sum())
        stats["cold_users"][name] = int(len(np.unique(inter.users[rows][cu])))
        stats["cold_items"][name] = int(len(np.unique(inter.items[rows][ci])))
        stats["cold_rows"][name] = int((cu | ci).sum())
    user_ids, item_ids = train_users, train_items
    if cold_users == "keep":
        umap[cold_user_idx] = n_tu + np.arange(len(cold_user_idx))
        user_ids = np.concatenate([train_users, cold_user_idx])
    if cold == "keep":
        imap[cold_items] = n_ti + np.arange(len(cold_items))
        item_ids = np.concatenate([train_items, cold_items])
    nu_all, ni_all = len(user_ids), len(item_ids)

    train = inter.take(train_rows).remap(umap, imap, n_tu, n_ti)
    valid = inter.take(part == VALID).remap(umap, imap, nu_all, ni_all)
    test = inter.take(part == TEST).remap(umap, imap, nu_all, ni_all)
    stats["rows"] = {"train": len(train), "valid": len(valid), "test": len(test)}
    stats["train_users"], stats["train_items"] = n_tu, n_ti
    return Split(
        train=train,
        valid=valid,
        test=test,
        user_vocab=ds.user_vocab.subset(user_ids),
        item_vocab=ds.item_vocab.subset(item_ids),
        protocol=protocol,
        stats=stats,
    )


def temporal_user(ds: Dataset, ratios: Ratios = (0.8, 0.1, 0.1), *, cold: ColdPolicy = "keep") -> Split:
    """Per-user chronological split with floor rounding (see module docstring)."""
    return split_by_assignment(ds, assign_temporal_user(ds.interactions, ratios),
                               protocol="temporal_user", cold=cold, params={"ratios": list(ratios)})


def random_user(ds: Dataset, ratios: Ratios = (0.8, 0.1, 0.1), seed: int = 0, *, cold: ColdPolicy = "keep") -> Split:
    """Per-user random split (seeded) with floor rounding."""
    return split_by_assignment(ds, assign_random_user(ds.interactions, ratios, seed),
                               protocol="random_user", cold=cold,
                               params={"ratios": list(ratios), "seed": seed})


def leave_last_out(ds: Dataset, *, min_history: int = 3, cold: ColdPolicy = "keep") -> Split:
    """Last item of each user test, the one before valid."""
    return split_by_assignment(ds, assign_leave_last_out(ds.interactions, min_history),
                               protocol="leave_last_out", cold=cold, params={"min_history": min_history})


def temporal_global(ds: Dataset, valid: float = 0.1, test: float = 0.1, *, cold: ColdPolicy = "keep") -> Split:
    """One global time cut (the latest events are valid/test)."""
    return split_by_assignment(ds, assign_temporal_global(ds.interactions, valid, test),
                               protocol="temporal_global", cold=cold,
                               params={"valid": valid, "test": test})


def case_study(ds: Dataset, ratios: Ratios = (0.8, 0.1, 0.1), seed: int = 0, *,
               cold: ColdPolicy = "keep") -> Split:
    """Whole sessions (users of ``ds``) at random (seeded) to train/valid/test by ``ratios``.

    Valid/test users are cold by design and always kept (indices ``>= train.n_users``);
    ``cold`` applies to items that occur only in valid/test sessions. Row order within each
    part is that of ``ds.interactions`` (see :func:`assign_case_study`).
    """
    return split_by_assignment(ds, assign_case_study(ds.interactions, ratios, seed),
                               protocol="case_study", cold=cold, cold_users="keep",
                               params={"ratios": list(ratios), "seed": seed})


def session_temporal(ds: Dataset, valid: float = 0.1, test: float = 0.1, *,
                     cold: ColdPolicy = "keep") -> Split:
    """Whole sessions (users of ``ds``) by start time: the latest ``test`` share of sessions
    test, the ``valid`` share before it valid. Cold users (all valid/test sessions) are kept;
    ``cold`` applies to items (see :func:`assign_session_temporal`)."""
    return split_by_assignment(ds, assign_session_temporal(ds.interactions, valid, test),
                               protocol="session_temporal", cold=cold, cold_users="keep",
                               params={"valid": valid, "test": test})


def make_split(ds: Dataset, protocol: str, *, cold: ColdPolicy = "keep", seed: int = 0,
               ratios: Ratios = (0.8, 0.1, 0.1)) -> Split:
    """Split by protocol name (the CLI's entry point); ``ratios[1:]`` are the valid/test
    shares of the two temporal protocols."""
    if protocol == "temporal_user":
        return temporal_user(ds, ratios, cold=cold)
    if protocol == "random_user":
        return random_user(ds, ratios, seed, cold=cold)
    if protocol == "leave_last_out":
        return leave_last_out(ds, cold=cold)
    if protocol == "temporal_global":
        return temporal_global(ds, ratios[1], ratios[2], cold=cold)
    if protocol == "case_study":
        return case_study(ds, ratios, seed, cold=cold)
    if protocol == "session_temporal":
        return session_temporal(ds, ratios[1], ratios[2], cold=cold)
    raise ValueError(f"unknown split protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


# ---------------------------------------------------------------------------- files
def split_frames(split: Split) -> dict[str, pl.DataFrame]:
    """Each part as a frame with external ids: user_id, item_id, timestamp, value."""
    out = {}
    for name in ("train", "valid", "test"):
        part: Interactions = getattr(split, name)
        out[name] = pl.DataFrame({
            USER: split.user_vocab.decode(part.users),
            ITEM: split.item_vocab.decode(part.items),
            TIME: part.timestamps,
            VALUE: part.values,
        })
    return out


def write_split(split: Split, out_dir: str | Path, *, name: str = "dataset",
                fmt: Literal["parquet", "recbole"] = "parquet") -> list[Path]:
    """Write a split.

    ``parquet``: ``out_dir/{train,valid,test}.parquet`` + ``split.json``.
    ``recbole``: ``out_dir/NAME/NAME.{train,valid,test}.inter`` (what
    RecBole's runner reads as ``OUT_DIR NAME MODEL``) + ``split.json``.
    """
    out = Path(out_dir)
    frames = split_frames(split)
    paths: list[Path] = []
    if fmt == "parquet":
        out.mkdir(parents=True, exist_ok=True)
        for part, df in frames.items():
            p = out / f"{part}.parquet"
            df.write_parquet(p)
            paths.append(p)
        meta_dir = out
    elif fmt == "recbole":
        from streamrec.data.sources.recbole import write_recbole_inter

        meta_dir = out / name
        meta_dir.mkdir(parents=True, exist_ok=True)
        for part, df in frames.items():
            p = meta_dir / f"{name}.{part}.inter"
            write_recbole_inter(df, p)
            paths.append(p)
    else:
        raise ValueError(f"unknown split format {fmt!r}; use parquet or recbole")
    meta = {"name": name, "protocol": split.protocol, **split.stats}
    (meta_dir / "split.json").write_text(json.dumps(meta, indent=2))
    return paths


def read_split(directory: str | Path) -> Split:
    """Read a split written with ``fmt="parquet"`` (vocabularies rebuilt: train ids first)."""
    d = Path(directory)
    frames = {p: pl.read_parquet(d / f"{p}.parquet") for p in ("train", "valid", "test")}
    meta = json.loads((d / "split.json").read_text()) if (d / "split.json").exists() else {}
    train = frames["train"]
    uv = Vocabulary.fit(train[USER].to_numpy(), name="user")
    iv = Vocabulary.fit(train[ITEM].to_numpy(), name="item")
    held = pl.concat([frames["valid"], frames["test"]])
    uv_all, iv_all = uv.extend(held[USER].to_numpy()), iv.extend(held[ITEM].to_numpy())
    parts = {}
    for name, df in frames.items():
        u_v, i_v = (uv, iv) if name == "train" else (uv_all, iv_all)
        parts[name] = Interactions(
            users=u_v.encode(df[USER].to_numpy()),
            items=i_v.encode(df[ITEM].to_numpy()),
            timestamps=df[TIME].to_numpy(),
            values=df[VALUE].to_numpy(),
            n_users=len(u_v),
            n_items=len(i_v),
        )
    return Split(parts["train"], parts["valid"], parts["test"], uv_all, iv_all,
                 protocol=meta.get("protocol", "unknown"), stats=meta)
