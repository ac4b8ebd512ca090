"""Tables that more than one command prints: the cleaning account of a prepared dataset,
the parts of a split and a ranking leaderboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from streamrec.cli._ui import console, kv_table

if TYPE_CHECKING:
    from streamrec.data.pipeline import Prepared
    from streamrec.data.splits import Split
    from streamrec.eval.benchmark import BenchmarkResult


def print_cleaning(prep: Prepared) -> None:
    """The rows the reader rejected, by reason, and each cleaning step's counts."""
    bad = prep.raw.bad_rows.summary()
    if bad:
        console.print(kv_table("rows rejected while reading", list(bad.items())))
    if prep.cleaning is not None:
        t = Table(title="cleaning", title_justify="left")
        for col in ("step", "rows before", "removed", "changed", "why"):
            t.add_column(col, justify="right" if col not in ("step", "why") else "left")
        for s in prep.cleaning.steps:
            t.add_row(s.step, f"{s.rows_before:,}", f"{s.removed:,}", f"{s.changed:,}", s.reason)
        console.print(t)


def split_table(sp: Split, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("part", "rows", "users", "items", "cold users", "cold items", "cold rows"):
        t.add_column(col, justify="right" if col != "part" else "left")
    for part in ("train", "valid", "test"):
        x = getattr(sp, part)
        t.add_row(part, f"{len(x):,}", f"{len(set(x.users.tolist())):,}",
                  f"{len(set(x.items.tolist())):,}",
                  *(f"{sp.stats[k].get(part, 0):,}" for k in ("cold_users", "cold_items",
                                                              "cold_rows")))
    return t


def leaderboard_table(result: BenchmarkResult, metric: str, title: str) -> Table:
    """Mean of each metric per model, with the oracle ratio where an oracle row exists."""
    from streamrec.eval.report import (
        fmt_ci,
        fmt_mean,
        fmt_p,
        fmt_ratio,
        leaderboard,
        oracle_line,
        ratio_key,
    )

    k0 = result.config.ks[0]
    cols = [metric, f"recall@{k0}", f"hit@{k0}", f"mrr@{k0}"]
    lines = leaderboard(result.runs, metric, n_boot=500)
    oracle = oracle_line(lines)
    rkey = ratio_key(result.config.ks)
    ratio_head = [f"{rkey} / oracle"] if oracle is not None else []
    t = Table(title=f"leaderboard · {title}", title_justify="left")
    for c in ("model", "system", *cols, *ratio_head, "95% CI", "p vs best", "fit s"):
        t.add_column(c, justify="left" if c in ("model", "system") else "right")
    for ln in lines:
        ratio = [fmt_ratio(ln, oracle, rkey)] if oracle is not None else []
        t.add_row(ln.model, ln.system, *(fmt_mean(ln, c) for c in cols), *ratio, fmt_ci(ln),
                  fmt_p(ln.p_ttest), f"{ln.fit_seconds:.2f}")
    return t
