"""Sequence models: padded layouts, training windows, next-item evaluation, the models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamrec.data.interactions import Interactions
from streamrec.eval.protocol import evaluate, evaluate_next_item
from streamrec.models import create
from streamrec.models.neural.trainer import torch_generator
from streamrec.models.sequential.base import (
    SequenceWindows,
    next_item_examples,
    pad_sequences,
    right_align,
)


def _cycle_sessions(n_users: int = 60, n_items: int = 12, length: int = 9,
                    seed: int = 0) -> Interactions:
    """Each user walks the cycle 0 -> 1 -> ... -> n_items-1 -> 0 from a random start."""
    gen = np.random.default_rng(seed)
    start = gen.integers(0, n_items, n_users)
    items = (start[:, None] + np.arange(length)[None, :]) % n_items  # (U, L)
    users = np.repeat(np.arange(n_users), length)
    return Interactions.from_arrays(users, items.ravel(), np.tile(np.arange(length), n_users),
                                    n_users=n_users, n_items=n_items)


# ---------------------------------------------------------------------------- layouts
def test_pad_sequences_lists_arrays_truncation_and_unknown_items():
    out = pad_sequences([[1, 2, 3], [], [4]], max_len=4)
    assert out.tolist() == [[-1, 1, 2, 3], [-1, -1, -1, -1], [-1, -1, -1, 4]]
    assert pad_sequences([[1, 2, 3, 4, 5]], max_len=3).tolist() == [[3, 4, 5]]
    # padding anywhere in an array row; items >= n_items dropped as if padding
    arr = np.array([[5, -1, 2, 9, 3], [-1, -1, -1, -1, 7]])
    assert pad_sequences(arr, max_len=4, n_items=8).tolist() == [[-1, 5, 2, 3],
                                                                [-1, -1, -1, 7]]
    assert pad_sequences(arr, max_len=6).tolist() == [[-1, -1, 5, 2, 9, 3],
                                                      [-1, -1, -1, -1, -1, 7]]


def test_right_align_offsets_items_and_counts():
    x, n = right_align(np.array([[-1, -1, 0, 4], [-1, -1, -1, -1], [1, 2, 3, 5]]))
    assert x.tolist() == [[1, 5, 0, 0], [0, 0, 0, 0], [2, 3, 4, 6]]
    assert n.tolist() == [2, 0, 4]


def test_windows_cover_every_next_item_once():
    inter = Interactions.from_arrays([0, 0, 0, 0, 0, 1, 1, 2], [5, 6, 7, 8, 9, 1, 2, 3],
                                     [5, 1, 2, 3, 4, 0, 1, 0], n_users=3, n_items=10)
    win = SequenceWindows(inter, max_len=2)
    # user 0 in time order: 6 7 8 9 5 -> windows [8 9 5], [6 7 8]; user 1: [1 2]; user 2: none
    x, y = win.batch(np.arange(len(win)))
    seqs = [(xr[xr > 0] - 1).tolist() for xr in x.numpy()]
    targets = [(yr[yr > 0] - 1).tolist() for yr in y.numpy()]
    assert sorted(zip(map(tuple, seqs), map(tuple, targets), strict=True)) == sorted(
        [((8, 9), (9, 5)), ((6, 7), (7, 8)), ((1,), (2,))])
    assert win.n_targets == 5  # 4 for user 0, 1 for user 1
    # every target follows its input position
    assert bool(((y > 0) <= (x > 0)).all())


def test_batch_indices_cover_each_window_once_grouped_by_length():
    lengths = np.repeat([2, 5, 9, 3], [40, 30, 20, 10])  # 100 users, items per user
    users = np.repeat(np.arange(100), lengths)
    items = np.arange(len(users)) % 7
    inter = Interactions.from_arrays(users, items, np.arange(len(users)), n_users=100,
                                     n_items=7)
    win = SequenceWindows(inter, max_len=10)
    size = win.stops - win.starts
    plain = win.batch_indices(16, torch_generator(0), bucket=1)
    bucketed = win.batch_indices(16, torch_generator(0), bucket=4)
    again = win.batch_indices(16, torch_generator(0), bucket=4)
    for batches in (plain, bucketed):
        assert sorted(np.concatenate(batches).tolist()) == list(range(len(win)))
        assert max(len(b) for b in batches) == 16
    assert all((a == b).all() for a, b in zip(bucketed, again, strict=True))
    # bucketing sorts each run of batches by length: far fewer distinct lengths per batch
    spread = [len(np.unique(size[b])) for b in bucketed]
    assert np.mean(spread) < np.mean([len(np.unique(size[b])) for b in plain])
    assert sum(size[b].max() * len(b) for b in bucketed) < sum(
        size[b].max() * len(b) for b in plain)  # less padding


def test_next_item_examples_every_prefix():
    inter = Interactions.from_arrays([1, 1, 1, 0, 0], [4, 5, 6, 2, 3], [0, 1, 2, 0, 1],
                                     n_users=2, n_items=7)
    pre, tgt, own = next_item_examples(inter, max_len=2)
    assert own.tolist() == [0, 1, 1]
    assert tgt.tolist() == [3, 5, 6]
    assert pre.tolist() == [[-1, 2], [-1, 4], [4, 5]]


# ---------------------------------------------------------------------------- evaluation
def test_evaluate_next_item_hand_computed():
    train = _cycle_sessions()
    markov = create("markov").fit(train)
    test = Interactions.from_arrays([0, 0, 0, 1, 1], [0, 1, 5, 3, 4], [0, 1, 2, 0, 1],
                                    n_users=2, n_items=12)
    res = evaluate_next_item(markov, test, ks=(1, 10))
    # prefixes: [0] -> 1 (hit at rank 1), [0 1] -> 5 (the chain says 2: miss at 1),
    # [3] -> 4 (hit at 1)
    assert res.per_user["hit@1"].tolist() == [1.0, 0.0, 1.0]
    assert res.users.tolist() == [0, 0, 1]
    assert res.per_user["mrr@10"][1] < 1.0
    with pytest.raises(TypeError, match="score_sequences"):
        evaluate_next_item(create("ease").fit(train), test)


def test_update_history_appends_in_time_order_and_new_users():
    train = _cycle_sessions(n_users=4, n_items=12, length=3)
    model = create("markov", max_len=4).fit(train)
    before = model.histories(np.array([0]))[0]
    new = Interactions.from_arrays([0, 0, 5], [7, 6, 2], [20, 10, 0], n_users=6, n_items=12)
    model.update_history(new)
    after = model.histories(np.array([0, 5]))
    assert after[0].tolist() == [before[-2], before[-1], 6, 7]
    assert after[1].tolist() == [-1, -1, -1, 2]
    np.testing.assert_array_equal(model.score(np.array([5])), model.score_sequences([[2]]))


def test_pop_last_category_ranks_the_category_first():
    train = _cycle_sessions()
    cats = np.arange(12) // 4  # 3 categories of 4 items
    model = create("pop_last_category").fit(train, item_categories=cats)
    top = np.argsort(-model.score_sequences([[5], [0, 11]]), axis=1)[:, :4]
    assert set(top[0].tolist()) == {4, 5, 6, 7}
    assert set(top[1].tolist()) == {8, 9, 10, 11}
    with pytest.raises(ValueError, match="item categories"):
        create("pop_last_category").fit(train)


# ---------------------------------------------------------------------------- torch models
@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "lstm_attention"])
def test_prefix_scores_match_training_positions(name):
    """A prefix scored alone equals the state at that position of the whole window."""
    params = {"sasrec": {"dim": 16}, "gru4rec": {"embed": 16, "hidden": 16},
              "lstm_attention": {"embed": 16, "hidden": 16, "attn": 8}}[name]
    model = create(name, max_len=8, epochs=1, **params).fit(_cycle_sessions(), rng=0)
    module = model.module_
    full = torch.tensor([[3, 4, 5, 6, 7, 0, 0, 0]])  # items + 1, right-padded
    with torch.no_grad():
        states = module.states(full)[0]  # (T, D)
        w, b = module.output_weights()
        at2 = states[2] @ w.T + (0 if b is None else b)
    np.testing.assert_allclose(model.score_sequences([[2, 3, 4]])[0], at2.numpy(), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "lstm_attention"])
def test_one_pass_session_ranking_equals_prefix_by_prefix(name):
    """rank_next_items (one pass per session) gives evaluate_next_item's prefix results;
    it declines sessions longer than max_len + 1 and unknown items."""
    params = {"sasrec": {"dim": 16}, "gru4rec": {"embed": 16, "hidden": 16},
              "lstm_attention": {"embed": 16, "hidden": 16, "attn": 8}}[name]
    model = create(name, max_len=8, epochs=2, **params).fit(_cycle_sessions(), rng=0)
    test = _cycle_sessions(n_users=15, length=9, seed=3)
    for min_prefix in (1, 3):
        fast = model.rank_next_items(test, 5, min_prefix=min_prefix)
        prefixes, targets, _ = next_item_examples(test, 8, min_prefix=min_prefix)
        assert fast.shape == (len(targets), 5)
        slow = np.argsort(-model.score_sequences(prefixes), axis=1, kind="stable")[:, :5]
        assert (fast[:, 0] == slow[:, 0]).mean() > 0.99
        fast_res = evaluate_next_item(model, test, ks=(5,), min_prefix=min_prefix)
        model.rank_next_items = lambda *a, **k: None  # force the prefix-by-prefix path
        slow_res = evaluate_next_item(model, test, ks=(5,), min_prefix=min_prefix)
        del model.rank_next_items
        for k, v in fast_res.per_user.items():
            np.testing.assert_allclose(v, slow_res.per_user[k], atol=1e-6)
    assert model.rank_next_items(_cycle_sessions(n_users=3, length=10), 5) is None  # > 9
    unknown = Interactions.from_arrays([0, 0], [1, 12], [0, 1], n_users=1, n_items=13)
    assert model.rank_next_items(unknown, 5) is None


@pytest.mark.parametrize(("name", "params"), [
    ("sasrec", {"dim": 16, "loss": "ce"}),
    ("sasrec", {"dim": 16, "loss": "bce", "lr": 5e-3}),
    ("sasrec", {"dim": 16, "loss": "sampled", "n_negatives": 6}),
    ("sasrec", {"dim": 16, "loss": "gbce", "n_negatives": 6, "dropout": 0.0}),
    ("gru4rec", {"embed": 16, "hidden": 32}),
    ("lstm_attention", {"embed": 16, "hidden": 32, "attn": 16, "dropout": 0.1}),
])
def test_models_learn_a_deterministic_cycle(name, params):
    """Each model learns the cycle (hit@1 > 0.9 on unseen walks)."""
    train = _cycle_sessions(n_users=80)
    test = _cycle_sessions(n_users=20, seed=1)
    model = create(name, max_len=8, epochs=30, batch_size=32, lr=params.pop("lr", 1e-2),
                   patience=0, **params).fit(train, rng=0)
    res = evaluate_next_item(model, test, ks=(1,), metrics=("hit",))
    assert res.means()["hit@1"] > 0.9, res.means()


def test_lstm_attention_weights_layout():
    model = create("lstm_attention", embed=8, hidden=8, attn=4, max_len=6,
                   epochs=1).fit(_cycle_sessions(), rng=0)
    a = model.attention([[1, 2, 3], [4]])
    assert a.shape == (2, 6)
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-5)
    assert (a[0, :3] == 0).all() and (a[0, 3:] > 0).all()
    assert a[1, -1] == pytest.approx(1.0)


def test_sequence_model_in_user_ranking_uses_valid_history():
    """leave_last_out: the test ranking starts from train + valid items."""
    full = _cycle_sessions(n_users=40, length=6)
    order = full.chronological_order()
    pos = np.arange(len(full)) % 6
    train = full.take(order[pos < 4])
    valid = full.take(order[pos == 4])
    test = full.take(order[pos == 5])
    model = create("markov").fit(train)
    stale = evaluate(model, test, exclude=[train, valid], ks=(1,)).means()["hit@1"]
    model.update_history(valid)
    fresh = evaluate(model, test, exclude=[train, valid], ks=(1,)).means()["hit@1"]
    assert fresh == 1.0 and stale < 0.5


def test_benchmark_runner_sequence_models_both_protocol_kinds():
    """leave_last_out ranks from train + valid history; case_study scores held-out
    sessions prefix by prefix, and a model without score_sequences is refused."""
    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import case_study, leave_last_out
    from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark

    inter = _cycle_sessions(n_users=50, length=7)
    frame = inter.to_polars().rename({"user": "user_id", "item": "item_id"})
    ds = Dataset.from_frames(frame)
    cfg = BenchmarkConfig(models=("markov", "pop"), seeds=1, ks=(1, 10))
    llo = run_benchmark(leave_last_out(ds), cfg, protocol="leave_last_out")
    by = {r.model: r.metrics for r in llo.runs}
    assert by["markov"]["hit@1"] == 1.0 and by["pop"]["hit@1"] < 0.5
    cs_split = case_study(ds, seed=0)
    cs = run_benchmark(cs_split, cfg, protocol="case_study")
    runs = {r.model: r for r in cs.runs}
    n_examples = len(cs_split.test) - len(np.unique(cs_split.test.users))
    assert len(runs["markov"].result.users) == n_examples
    assert runs["markov"].metrics["hit@1"] == 1.0
    with pytest.raises(TypeError, match="score_sequences"):
        run_benchmark(cs_split, BenchmarkConfig(models=("ease",), seeds=1), protocol="case_study")


def test_valid_events_join_the_history_only_under_leave_last_out(monkeypatch):
    """temporal_user: a sequence model ranks test from train, like every other model."""
    from streamrec.data.dataset import Dataset
    from streamrec.data.splits import leave_last_out, temporal_user
    from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark
    from streamrec.models.sequential.base import SequentialRecommender

    calls = []
    real = SequentialRecommender.update_history
    monkeypatch.setattr(SequentialRecommender, "update_history",
                        lambda self, ev: calls.append(len(ev)) or real(self, ev))
    inter = _cycle_sessions(n_users=50, length=10)
    ds = Dataset.from_frames(inter.to_polars().rename({"user": "user_id", "item": "item_id"}))
    cfg = BenchmarkConfig(models=("markov",), seeds=1, ks=(1, 10))
    run_benchmark(temporal_user(ds), cfg, protocol="temporal_user")
    assert calls == []
    split = leave_last_out(ds)
    run_benchmark(split, cfg, protocol="leave_last_out")
    assert calls == [len(split.valid)]


@pytest.mark.parametrize(("name", "params", "match"), [
    ("sasrec", {"loss": "hinge"}, "loss must be one of"),
    ("gru4rec", {"dropout": 1.0}, "dropout"),
    ("lstm_attention", {"max_len": 0}, "max_len"),
    ("sasrec", {"dim": 10, "heads": 3}, "divisible"),
    ("sasrec", {"attn_dropout": -0.1}, "attn_dropout"),
])
def test_sequence_models_reject_bad_hyperparameters(name, params, match):
    with pytest.raises(ValueError, match=match):
        create(name, epochs=1, **params).fit(_cycle_sessions(), rng=0)
