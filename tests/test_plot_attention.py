"""`streamrec plot attention`: attention heatmaps of lstm_attention and their patterns."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.pipeline import prepare
from streamrec.data.splits import make_split
from streamrec.models.zoo import create
from streamrec.plots import (
    ANCHOR,
    ATTENTION_PATTERNS,
    COHERENT,
    MIXED,
    RECENCY,
    attention_patterns,
    pattern_shares,
    pick_attention_rows,
    plot_attention,
)

TINY = "synthetic-sessions:users=300,items=60"
runner = CliRunner()


def _cases():
    """One row of each pattern (T = 5, left-padded, latest item last)."""
    hist = np.array([[-1, 3, 4, 5, 6],     # recency: the latest item holds 0.7
                     [1, 2, 1, 3, 4],      # anchor: item 1 twice, 0.25 + 0.2
                     [5, 6, 7, 8, 9],      # coherent: 0.9 on the latest's category
                     [5, 6, 7, 8, 9]])     # mixed
    cats = np.array([[-1, 0, 1, 1, 2],
                     [0, 1, 0, 2, 3],
                     [4, 5, 5, 5, 5],
                     [4, 6, 7, 8, 5]])
    w = np.array([[0.0, 0.1, 0.1, 0.1, 0.7],
                  [0.25, 0.1, 0.2, 0.15, 0.3],
                  [0.1, 0.2, 0.2, 0.2, 0.3],
                  [0.2, 0.2, 0.2, 0.2, 0.2]])
    return w, hist, cats


def test_attention_patterns_rules_and_shares():
    w, hist, cats = _cases()
    kind, strength = attention_patterns(w, hist, cats)
    assert kind.tolist() == [RECENCY, ANCHOR, COHERENT, MIXED]
    np.testing.assert_allclose(strength, [0.7, 0.45, 0.9, 0.2])
    shares = pattern_shares(kind)
    assert list(shares) == list(ATTENTION_PATTERNS)
    assert sum(shares.values()) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    many = rng.integers(0, 4, size=101)
    assert sum(pattern_shares(many).values()) == pytest.approx(1.0)
    # rows: a third of each named pattern, mixed only to fill
    lengths = np.full(101, 5)
    rows = pick_attention_rows(many, rng.random(101), lengths, 7, seed=0)
    assert len(rows) == 7 and len(set(rows.tolist())) == 7
    assert np.bincount(many[rows], minlength=4)[:3].min() >= 2
    assert (many[rows] != MIXED).all()


def test_plot_attention_writes_png(tmp_path: Path):
    w, hist, cats = _cases()
    names = np.array([f"c{k}" for k in range(9)])
    out = plot_attention(w, hist, cats, names, tmp_path / "a" / "att.png",
                         row_labels=["r", "a", "c", "m"], title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _shares_from_output(text: str) -> tuple[int, list[int], list[float]]:
    total = int(re.search(r"attention patterns of ([\d,]+) test", text).group(1).replace(",", ""))
    found = re.findall(r"(recency-dominant|anchor-item|category-coherent|mixed)\s*│\s*"
                       r"([\d.]+)%\s*│\s*([\d,]+)", text)
    assert [f[0] for f in found] == list(ATTENTION_PATTERNS)
    return total, [int(f[2].replace(",", "")) for f in found], [float(f[1]) for f in found]


def test_cli_plot_attention_trains_and_draws(tmp_path: Path):
    out = tmp_path / "att.png"
    res = runner.invoke(app, ["plot", "attention", "--data", TINY, "--epochs", "1",
                              "--sessions", "6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and out.stat().st_size > 1000
    total, counts, pct = _shares_from_output(res.output)
    assert sum(counts) == total > 0
    assert sum(pct) == pytest.approx(100.0, abs=0.3)


def test_cli_plot_attention_from_saved_model(tmp_path: Path):
    sp = make_split(prepare(TINY).dataset, "case_study")
    model = create("lstm_attention", embed=8, hidden=8, layers=1, max_len=12, epochs=1)
    model.fit(sp.train, rng=0)
    model.save(tmp_path / "m")
    out = tmp_path / "saved.png"
    res = runner.invoke(app, ["plot", "attention", "--data", TINY, "--model-dir",
                              str(tmp_path / "m"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000
    total, counts, _ = _shares_from_output(res.output)
    assert sum(counts) == total
    # a model without attention weights is refused with exit code 2
    create("pop").fit(sp.train).save(tmp_path / "pop")
    res = runner.invoke(app, ["plot", "attention", "--data", TINY, "--model-dir",
                              str(tmp_path / "pop"), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2
    assert "attention" in res.output


def test_cli_plot_attention_help_names_the_default():
    res = runner.invoke(app, ["plot", "attention", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "well under a minute" in text and "recency-dominant" in text
