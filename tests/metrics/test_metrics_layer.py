"""The metrics and ranking kernels below the models: the models' early-stopping criteria
are the numbers the evaluator reports."""

from __future__ import annotations

import numpy as np
import pytest

import streamrec.eval.metrics as eval_metrics
import streamrec.metrics as metrics
from streamrec.data.interactions import Interactions
from streamrec.eval.protocol import evaluate, evaluate_next_item
from streamrec.metrics.full_ranking import next_item_ndcg, ranking_ndcg
from streamrec.models.zoo import create
from streamrec.testing import tiny_interactions


def test_eval_metrics_re_exports_the_same_functions():
    for name in eval_metrics.__all__:
        assert getattr(eval_metrics, name) is getattr(metrics, name)


@pytest.mark.parametrize("name", ["ease", "itemknn", "pop"])
def test_ranking_ndcg_is_evaluates_ndcg(name):
    train, test = tiny_interactions(0)
    model = create(name).fit(train, rng=0)
    want = evaluate(model, test, exclude=train, ks=(10,), metrics=("ndcg",)).means()["ndcg@10"]
    assert ranking_ndcg(model.score, test, n_items=model.n_items_, exclude=train) == want
    five = evaluate(model, test, exclude=train, ks=(5,), metrics=("ndcg",)).means()["ndcg@5"]
    assert ranking_ndcg(model.score, test, n_items=model.n_items_, exclude=train, k=5,
                        batch_size=7) == five


def test_next_item_ndcg_is_evaluate_next_items_ndcg():
    train, test = tiny_interactions(0)
    sessions = Interactions(test.users + train.n_users, test.items, test.timestamps,
                            test.values, n_users=2 * train.n_users, n_items=train.n_items)
    for model in (create("markov").fit(train),
                  create("gru4rec", embed=8, hidden=8, max_len=4, epochs=1).fit(train, rng=0)):
        want = evaluate_next_item(model, sessions, ks=(10,), metrics=("ndcg",))
        got = next_item_ndcg(model.score_sequences, sessions, n_items=model.n_items_,
                             max_len=int(model.max_len),
                             fast=getattr(model, "rank_next_items", None))
        assert got == want.means()["ndcg@10"]


def test_the_models_validate_without_the_eval_package():
    import subprocess
    import sys

    code = ("import sys; import streamrec.models.neural.bpr, streamrec.models.als, "
            "streamrec.models.sequential.sasrec, streamrec.models.ctr.mlp, "
            "streamrec.features.streamrec; "
            "print(sorted(m for m in sys.modules if m.startswith('streamrec.eval')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_ranking_ndcg_of_a_user_without_relevant_items_is_skipped():
    truth = Interactions.from_arrays(np.array([1]), np.array([0]), n_users=3, n_items=2)
    assert ranking_ndcg(lambda u: np.tile([1.0, 0.0], (len(u), 1)), truth, n_items=2) == 1.0
