"""Data SPECs: one string names a data source, as the CLI and benchmark runner accept it.

Grammar: ``KIND[:PATH][?key=value&key=value]``, or ``synthetic[:key=value,key=value]``
(also ``synthetic-sessions[:key=value,...]``).

=============================  =====================================================
``synthetic[:users=..,items=..,days=..,seed=..]``  generate a StreamRec world in memory
``synthetic-sessions[:users=..,items=..,seed=..]``  generate a session world (one user per
                               session; options: :class:`SessionConfig` fields or short
                               names, tuples as ``a/b/c``, e.g. ``switch_probs=0.4/0.15/0.5``)
``synthetic-clicks[:n=..,seed=..]``  the click-prediction case study's 20-feature samples
                               (:class:`ClickConfig` fields; click models only)
``movielens:DIR``              MovieLens 100K / 1M / 10M / 20M / 25M / latest directory
``recbole:DIR``                RecBole atomic files (``DIR/NAME.inter`` [+ .user, .item])
``sasrec:FILE``                SASRec-style ``user item`` sequence file
``events:FILE``                generic log (.csv/.tsv/.parquet/.jsonl); ``?user=..&item=..
                               &time=..&value=..&event=..&duration=..`` map the columns
``events:DIR``                 a directory with events.parquet (+ users/items.parquet), e.g.
                               one written by ``streamrec data generate``
=============================  =====================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from streamrec.data.dataset import RawData
from streamrec.data.errors import BadRowPolicy

if TYPE_CHECKING:
    from streamrec.data.synthetic.clicks import ClickConfig
    from streamrec.data.synthetic.sessions import SessionConfig
    from streamrec.data.synthetic.world import WorldConfig

KINDS = ("synthetic", "synthetic-sessions", "synthetic-clicks", "movielens", "recbole", "sasrec",
         "events")
#: the kinds generated in memory (options ``key=value`` separated by commas, no path)
GENERATED = ("synthetic", "synthetic-sessions", "synthetic-clicks")
#: short names accepted for synthetic-clicks options
CLICK_KEYS = {"n": "n_samples", "samples": "n_samples"}
#: short column-mapping keys accepted in a SPEC's query and by the CLI flags
COLUMN_KEYS = {"user": "user_col", "item": "item_col", "time": "time_col", "value": "value_col",
               "event": "event_col", "duration": "duration_col"}
#: short names accepted for synthetic world options
SYNTHETIC_KEYS = {"users": "n_users", "items": "n_items", "days": "n_days",
                  "categories": "n_categories"}
#: short names accepted for synthetic-sessions options (``seed`` is separate)
SESSION_KEYS = {"users": "n_users", "sessions": "n_users", "items": "n_items",
                "categories": "n_categories", "alpha": "category_alpha", "zipf": "zipf_s",
                "preferred": "n_preferred", "min_length": "min_length",
                "max_length": "max_length", "days": "span_days"}


class SpecError(ValueError):
    """A data SPEC that cannot be understood; the message says the accepted forms."""


@dataclass(frozen=True)
class DataSpec:
    """A parsed data SPEC."""

    kind: str
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        opts = "&".join(f"{k}={v}" for k, v in self.options.items())
        if self.kind in GENERATED:
            return self.kind + (":" + opts.replace("&", ",") if opts else "")
        return f"{self.kind}:{self.path}" + (f"?{opts}" if opts else "")


def parse_spec(text: str) -> DataSpec:
    """Parse ``KIND:PATH?opts`` (see module docstring). A bare existing path is an events log."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if kind in GENERATED:
        bad = [kv for kv in rest.split(",") if kv and "=" not in kv]
        if bad:
            raise SpecError(f"{kind} options are key=value pairs, got {bad[0]!r}")
        opts = dict(kv.split("=", 1) for kv in rest.split(",") if kv) if rest else {}
        return DataSpec(kind, None, opts)
    if kind not in KINDS or not sep:
        if Path(text).exists():
            return parse_spec(f"events:{text}")
        raise SpecError(
            f"cannot read data SPEC {text!r}: use one of synthetic[:users=N,items=M], "
            "synthetic-sessions[:users=N,items=M,seed=S], synthetic-clicks[:n=N,seed=S], "
            "movielens:DIR, recbole:DIR, sasrec:FILE, events:FILE_OR_DIR[?user=COL&item=COL&time=COL]"
        )
    path_text, _, query = rest.partition("?")
    if not path_text:
        raise SpecError(f"data SPEC {text!r} has no path after '{kind}:'")
    return DataSpec(kind, Path(path_text).expanduser(), dict(parse_qsl(query)))


def world_config_from_options(options: dict[str, str]) -> WorldConfig:
    """A :class:`WorldConfig` from SPEC options (short names or field names)."""
    from streamrec.data.synthetic.world import WorldConfig

    fields = {f.name: f for f in dataclasses.fields(WorldConfig)}
    kwargs: dict[str, Any] = {}  # parsed by each field's type; the config checks them
    for key, raw in options.items():
        name = SYNTHETIC_KEYS.get(key, key)
        if name not in fields:
            known = ", ".join(sorted(set(SYNTHETIC_KEYS) | set(fields)))
            raise SpecError(f"unknown synthetic option {key!r}; known: {known}")
        default = getattr(WorldConfig(), name)
        try:
            kwargs[name] = type(default)(float(raw)) if isinstance(default, int) else type(default)(raw)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"synthetic option {key}={raw!r}: expected {type(default).__name__}") from exc
    return WorldConfig(**kwargs)


def click_config_from_options(options: dict[str, str]) -> ClickConfig:
    """A :class:`ClickConfig` from SPEC options (``n``/``samples``, ``seed`` and the scalar
    fields; ``main`` as ``a/b/c``)."""
    from streamrec.data.synthetic.clicks import ClickConfig

    fields = {f.name for f in dataclasses.fields(ClickConfig)}
    kwargs: dict[str, Any] = {}  # parsed by each field's type; the config checks them
    for key, raw in options.items():
        name = CLICK_KEYS.get(key, key)
        if name not in fields:
            raise SpecError(f"unknown synthetic-clicks option {key!r}; known: "
                            f"{', '.join(sorted(set(CLICK_KEYS) | fields))}")
        try:
            if name == "main":
                kwargs[name] = tuple(float(v) for v in raw.split("/"))
            elif name in ("n_samples", "seed"):
                kwargs[name] = int(float(raw))
            else:
                kwargs[name] = float(raw)
        except ValueError as exc:
            raise SpecError(f"synthetic-clicks option {key}={raw!r}: not a number") from exc
    return ClickConfig(**kwargs)


def session_config_from_options(options: dict[str, str]) -> tuple[SessionConfig, int]:
    """A :class:`SessionConfig` and seed from SPEC options (short names or field names).

    Returns
    -------
    config : SessionConfig
    seed : int
        ``seed`` option (default 0).
    """
    from streamrec.data.synthetic.sessions import SessionConfig

    defaults = SessionConfig()
    fields = {f.name for f in dataclasses.fields(SessionConfig)}
    kwargs: dict[str, Any] = {}  # parsed by each field's type; the config checks them
    seed = 0
    for key, raw in options.items():
        if key == "seed":
            try:
                seed = int(float(raw))
            except ValueError as exc:
                raise SpecError(f"synthetic-sessions option seed={raw!r}: expected int") from exc
            continue
        name = SESSION_KEYS.get(key, key)
        if name not in fields:
            known = ", ".join(sorted(set(SESSION_KEYS) | fields | {"seed"}))
            raise SpecError(f"unknown synthetic-sessions option {key!r}; known: {known}")
        default = getattr(defaults, name)
        try:
            if isinstance(default, tuple):
                kind = type(default[0])
                kwargs[name] = tuple(_cast(kind, v) for v in raw.split("/"))
            else:
                kwargs[name] = _cast(type(default), raw)
        except (TypeError, ValueError) as exc:
            if isinstance(default, tuple):
                what = f"{type(default[0]).__name__} values separated by '/'"
            else:
                what = type(default).__name__
            raise SpecError(f"synthetic-sessions option {key}={raw!r}: expected {what}") from exc
    try:
        return SessionConfig(**kwargs), seed
    except ValueError as exc:
        raise SpecError(f"synthetic-sessions: {exc}") from exc


def _cast(kind: type, raw: str) -> object:
    if kind is int:
        value = float(raw)
        if value != int(value):
            raise ValueError(raw)
        return int(value)
    return kind(raw)


def load_raw(
    spec: str | DataSpec,
    *,
    on_bad_rows: BadRowPolicy = "error",
    columns: dict[str, str | None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RawData:
    """Read the data a SPEC names, before cleaning.

    Parameters
    ----------
    spec : str or DataSpec
    on_bad_rows : {"error", "quarantine"}
        Malformed rows raise a :class:`~streamrec.data.errors.DataFormatError` naming file,
        line and field, or are set aside in ``RawData.bad_rows``.
    columns : dict, optional
        Column mapping for ``events`` logs (keys user/item/time/value/event/duration or
        user_col/...); overrides the SPEC's query options.
    progress : callable(done, total), optional
        Called while a synthetic world is generated.
    """
    from streamrec.data.sources import read_source

    ds = parse_spec(spec) if isinstance(spec, str) else spec
    if ds.kind == "synthetic-clicks":
        raise SpecError("synthetic-clicks holds click-prediction samples, not interaction "
                        "logs: use it with click models, e.g. `streamrec benchmark --data "
                        "synthetic-clicks --protocol random --models logistic,mlp --out DIR`")
    if ds.kind == "synthetic":
        from streamrec.data.synthetic.world import generate_world

        world = generate_world(world_config_from_options(ds.options), progress=progress)
        return RawData(events=world.events, users=world.users, items=world.items, name="synthetic")
    if ds.kind == "synthetic-sessions":
        from streamrec.data.synthetic.sessions import generate_sessions

        cfg, seed = session_config_from_options(ds.options)
        sw = generate_sessions(cfg, seed, progress=progress)
        d = sw.dataset
        events = d.log if d.log is not None else d.events_frame()
        return RawData(events=events, users=d.users, items=d.items, name="synthetic-sessions")
    assert ds.path is not None
    if not ds.path.exists():
        raise FileNotFoundError(f"{ds.path}: no such file or directory (from data SPEC {str(ds)!r})")
    kwargs: dict[str, Any] = {}  # parsed by each field's type; the config checks them
    if ds.kind == "events":
        merged = {**ds.options, **{k: v for k, v in (columns or {}).items() if v}}
        for key, value in merged.items():
            name = COLUMN_KEYS.get(key, key)
            if name not in COLUMN_KEYS.values():
                raise SpecError(f"unknown events option {key!r}; known: {', '.join(COLUMN_KEYS)}")
            kwargs[name] = value
        path = ds.path
        if path.is_dir():
            if not (path / "events.parquet").exists():
                raise SpecError(f"{path}: a directory given to events: must hold events.parquet")
            for side in ("users", "items"):
                if (path / f"{side}.parquet").exists():
                    kwargs[f"{side}_path"] = path / f"{side}.parquet"
            path = path / "events.parquet"
        raw = read_source("events", path, on_bad_rows=on_bad_rows, **kwargs)
        if ds.path.is_dir():
            raw.name = ds.path.name
        return raw
    if ds.options:
        raise SpecError(f"{ds.kind}: SPEC options are only for events logs, got {ds.options}")
    return read_source(ds.kind, ds.path, on_bad_rows=on_bad_rows)
