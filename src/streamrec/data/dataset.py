"""Dataset: interactions + user and item feature tables + vocabularies."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from streamrec.data.errors import BadRows
from streamrec.data.interactions import Interactions
from streamrec.data.vocab import Vocabulary

#: Column names of the canonical event frame that every source produces.
USER, ITEM, TIME, VALUE, EVENT = "user_id", "item_id", "timestamp", "value", "event"


@dataclass
class RawData:
    """What a source reads, before cleaning and encoding.

    Attributes
    ----------
    events : pl.DataFrame
        Canonical event frame: ``user_id``, ``item_id`` (external ids, Int64 or String),
        ``timestamp`` (Int64 seconds or an ordinal), ``value`` (Float32), optional ``event``
        (String: play, click, like, ...), plus any extra columns of the source.
    users, items : pl.DataFrame or None
        Side tables keyed by ``user_id`` / ``item_id``.
    name : str
        Short dataset name (used for split file names).
    bad_rows : BadRows
        Rows the reader set aside (with ``--on-bad-rows quarantine``).
    files : list of Path
        The files read.
    """

    events: pl.DataFrame
    users: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    name: str = "dataset"
    bad_rows: BadRows = field(default_factory=BadRows)
    files: list[Path] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class Dataset:
    """An encoded dataset.

    Attributes
    ----------
    interactions : Interactions
        Row ``k`` is row ``k`` of ``log``.
    user_vocab, item_vocab : Vocabulary
        External id <-> index.
    users, items : pl.DataFrame or None
        Feature tables aligned with the vocabularies: row ``i`` describes index ``i``
        (first column ``user_id`` / ``item_id``; null where the source had no row).
    log : pl.DataFrame or None
        The full event frame with every extra column (durations, sessions, ...).
    name : str
    """

    interactions: Interactions
    user_vocab: Vocabulary
    item_vocab: Vocabulary
    users: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    log: pl.DataFrame | None = None
    name: str = "dataset"

    @classmethod
    def from_raw(cls, raw: RawData) -> Dataset:
        return cls.from_frames(raw.events, raw.users, raw.items, name=raw.name)

    @classmethod
    def from_frames(
        cls,
        events: pl.DataFrame,
        users: pl.DataFrame | None = None,
        items: pl.DataFrame | None = None,
        *,
        name: str = "dataset",
        user_vocab: Vocabulary | None = None,
        item_vocab: Vocabulary | None = None,
    ) -> Dataset:
        """Encode a canonical event frame.

        Vocabularies are fitted on the ids that occur in ``events`` (sorted), unless given.
        Users/items that appear only in the side tables are not added: the index space is
        the one the interactions use.
        """
        for col in (USER, ITEM):
            if col not in events.columns:
                raise ValueError(f"event frame has no {col!r} column (columns: {events.columns})")
            if events[col].null_count():
                raise ValueError(f"event frame: {events[col].null_count()} rows with a null {col!r}")
        uv = user_vocab or Vocabulary.fit(events[USER].to_numpy(), name="user")
        iv = item_vocab or Vocabulary.fit(events[ITEM].to_numpy(), name="item")
        n = events.height
        ts = (events[TIME].fill_null(0).cast(pl.Int64).to_numpy() if TIME in events.columns
              else np.arange(n, dtype=np.int64))
        vals = (events[VALUE].cast(pl.Float32).fill_null(1.0).to_numpy() if VALUE in events.columns
                else np.ones(n, dtype=np.float32))
        codes, names = None, ()
        if EVENT in events.columns:
            ev = events[EVENT].cast(pl.String).fill_null("unknown")
            names_arr, inv = np.unique(ev.to_numpy().astype(str), return_inverse=True)
            if len(names_arr) > 127:
                raise ValueError(f"column {EVENT!r} has {len(names_arr)} distinct values; at most 127")
            codes, names = inv.astype(np.int8), tuple(names_arr.tolist())
        inter = Interactions(
            users=uv.encode(events[USER].to_numpy()),
            items=iv.encode(events[ITEM].to_numpy()),
            timestamps=ts,
            values=vals,
            n_users=len(uv),
            n_items=len(iv),
            events=codes,
            event_names=names,
        )
        return cls(
            interactions=inter,
            user_vocab=uv,
            item_vocab=iv,
            users=_align(users, USER, uv),
            items=_align(items, ITEM, iv),
            log=events,
            name=name,
        )

    # ------------------------------------------------------------------ summaries
    @property
    def n_users(self) -> int:
        return len(self.user_vocab)

    @property
    def n_items(self) -> int:
        return len(self.item_vocab)

    def __len__(self) -> int:
        return len(self.interactions)

    def describe(self) -> dict[str, object]:
        """Headline statistics: sizes, density, per-user/item quantiles, time range, values."""
        inter = self.interactions
        n, nu, ni = len(inter), self.n_users, self.n_items
        uc, ic = inter.user_counts(), inter.item_counts()
        q = [0.0, 0.5, 0.9, 1.0]
        out: dict[str, object] = {
            "name": self.name,
            "interactions": n,
            "users": nu,
            "items": ni,
            "density": n / (nu * ni) if nu and ni else 0.0,
            "events_per_user": dict(zip(["min", "median", "p90", "max"],
                                        np.quantile(uc, q).tolist() if nu else [0] * 4, strict=True)),
            "events_per_item": dict(zip(["min", "median", "p90", "max"],
                                        np.quantile(ic, q).tolist() if ni else [0] * 4, strict=True)),
            "time_min": int(inter.timestamps.min()) if n else None,
            "time_max": int(inter.timestamps.max()) if n else None,
            "value_mean": float(inter.values.mean()) if n else None,
            "distinct_pairs": int(inter.to_csr().nnz) if n else 0,
        }
        if inter.events is not None:
            counts = np.bincount(inter.events, minlength=len(inter.event_names))
            out["event_types"] = dict(zip(inter.event_names, counts.tolist(), strict=True))
        if self.users is not None:
            out["user_features"] = [c for c in self.users.columns if c != USER]
        if self.items is not None:
            out["item_features"] = [c for c in self.items.columns if c != ITEM]
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``events.parquet`` (+ ``users.parquet``, ``items.parquet``, ``dataset.json``)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        log = self.log if self.log is not None else self.events_frame()
        log.write_parquet(d / "events.parquet")
        if self.users is not None:
            self.users.write_parquet(d / "users.parquet")
        if self.items is not None:
            self.items.write_parquet(d / "items.parquet")
        (d / "dataset.json").write_text(json.dumps({"name": self.name}))
        return d

    def events_frame(self) -> pl.DataFrame:
        """The interactions with external ids: user_id, item_id, timestamp, value[, event]."""
        inter = self.interactions
        df = pl.DataFrame({
            USER: self.user_vocab.decode(inter.users),
            ITEM: self.item_vocab.decode(inter.items),
            TIME: inter.timestamps,
            VALUE: inter.values,
        })
        if inter.events is not None:
            df = df.with_columns(pl.Series(EVENT, np.asarray(inter.event_names)[inter.events]))
        return df


def _align(table: pl.DataFrame | None, key: str, vocab: Vocabulary) -> pl.DataFrame | None:
    """Rows of ``table`` reordered so that row i describes index i (nulls where absent)."""
    if table is None:
        return None
    if key not in table.columns:
        raise ValueError(f"side table has no {key!r} column (columns: {table.columns})")
    if table[key].is_duplicated().any():
        dup = table.filter(table[key].is_duplicated())[key][0]
        raise ValueError(f"side table: duplicate {key} {dup!r}")
    idx, found = vocab.lookup(table[key].to_numpy())
    pos = np.full(len(vocab), -1, dtype=np.int64)
    pos[idx[found]] = np.nonzero(found)[0]
    present = table.with_row_index("__row")
    frame = pl.DataFrame({"__row": pl.Series(pos, dtype=pl.Int64)}).with_columns(
        pl.when(pl.col("__row") >= 0).then(pl.col("__row")).otherwise(None).cast(pl.UInt32)
    )
    joined = frame.join(present.drop(key), on="__row", how="left", maintain_order="left")
    ids = pl.Series(key, vocab.ids)
    return joined.drop("__row").insert_column(0, ids)
