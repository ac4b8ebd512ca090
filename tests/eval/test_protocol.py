"""The full-ranking evaluator: hand-checked values, batch invariance, exclusion, sampling."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from streamrec.data.interactions import Interactions
from streamrec.eval import metrics as M
from streamrec.eval.protocol import EvalResult, evaluate
from streamrec.models.base import Recommender

L3 = 1.0 / np.log2(3.0)


class TableModel(Recommender):
    """Scores read from a fixed (n_users, n_items) table; cold users score 0 everywhere."""

    def __init__(self, table: np.ndarray | None = None) -> None:
        self.table = table

    def fit(self, train=None, *, valid=None, rng=None):
        self.table_ = np.asarray(self.table, dtype=np.float32)
        self.n_users_, self.n_items_ = self.table_.shape
        return self

    def score(self, users, items=None):
        users = np.asarray(users, dtype=np.int64)
        out = np.zeros((len(users), self.n_items_), dtype=np.float32)
        ok = users < self.n_users_
        out[ok] = self.table_[users[ok]]
        return out if items is None else out[:, items]

    def _get_state(self):
        return {"table_": self.table_}

    def _set_state(self, state):
        self.table_ = state["table_"]
        self.n_users_, self.n_items_ = self.table_.shape


def _inter(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> Interactions:
    u, i = zip(*pairs, strict=True)
    return Interactions.from_arrays(u, i, n_users=n_users, n_items=n_items)


# ---------------------------------------------------------------------------- hand case
TABLE = np.array(
    [
        [0.9, 0.8, 0.7, 0.6, 0.5, 0.4],  # user 0: ranks 0, 1, 2, ...
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # user 1: ranks 5, 4, 3, ...
        [0.3, 0.1, 0.2, 0.9, 0.0, 0.5],  # user 2: no test item -> not evaluated
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],  # user 3: all tied -> lower index first
    ]
)
TRAIN = _inter([(0, 1), (2, 0)], 4, 6)
VALID = _inter([(3, 0)], 4, 6)
# item 9 is unknown to the model (cold); (0, 2) appears twice but counts once
TEST = _inter([(0, 2), (0, 5), (0, 2), (1, 5), (1, 9), (3, 0)], 4, 10)


def test_hand_checked_three_users():
    model = TableModel(TABLE).fit()
    res = evaluate(model, TEST, exclude=[TRAIN, VALID], ks=(1, 3), batch_size=2)
    assert isinstance(res, EvalResult) and not res.sampled and res.n_negatives is None
    assert res.users.tolist() == [0, 1, 3]
    # top-3: user 0 -> [0, 2, 3] (1 excluded), hit at rank 2, n_rel 2
    #        user 1 -> [5, 4, 3], hit at rank 1, n_rel 2 (item 9 is cold: counted, never hit)
    #        user 3 -> [1, 2, 3] (0 excluded by valid), no hit, n_rel 1
    pu = res.per_user
    np.testing.assert_allclose(pu["precision@3"], [1 / 3, 1 / 3, 0])
    np.testing.assert_allclose(pu["recall@3"], [0.5, 0.5, 0])
    np.testing.assert_allclose(pu["ndcg@3"], [L3 / (1 + L3), 1 / (1 + L3), 0])  # .38685 .61315
    np.testing.assert_allclose(pu["map@3"], [0.25, 0.5, 0])  # (1/2)/2, (1/1)/2
    np.testing.assert_allclose(pu["mrr@3"], [0.5, 1.0, 0])
    np.testing.assert_allclose(pu["hit@3"], [1, 1, 0])
    # top-1: user 0 -> [0] miss; user 1 -> [5] hit (ideal DCG over min(2, 1) = 1 hit)
    np.testing.assert_allclose(pu["precision@1"], [0, 1, 0])
    np.testing.assert_allclose(pu["recall@1"], [0, 0.5, 0])
    np.testing.assert_allclose(pu["ndcg@1"], [0, 1, 0])
    np.testing.assert_allclose(pu["map@1"], [0, 1, 0])
    # coverage@1: {0, 5, 1} of 6; coverage@3: {0, 2, 3, 5, 4, 1} = all
    assert res.aggregate == {"coverage@1": 0.5, "coverage@3": 1.0}
    means = res.means()
    assert means["ndcg@3"] == pytest.approx(1 / 3)  # (L3 + 1) / (1 + L3) / 3
    assert means["coverage@3"] == 1.0
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in pu.values())


def test_exclusion_forms_agree_and_are_honoured():
    model = TableModel(TABLE).fit()
    as_list = evaluate(model, TEST, exclude=[TRAIN, VALID], ks=(3,))
    as_csr = evaluate(model, TEST, exclude=TRAIN.to_csr() + VALID.to_csr(), ks=(3,))
    for key in as_list.per_user:
        np.testing.assert_array_equal(as_list.per_user[key], as_csr.per_user[key])
    # without exclusion user 0 ranks [0, 1, 2] (hit at 3) and user 3 ranks item 0 first (hit at 1)
    none = evaluate(model, TEST, ks=(3,))
    np.testing.assert_allclose(none.per_user["mrr@3"], [1 / 3, 1.0, 1.0])
    np.testing.assert_allclose(as_list.per_user["mrr@3"], [0.5, 1.0, 0.0])


def test_cold_items_count_in_recall_denominator():
    model = TableModel(TABLE).fit()
    test = _inter([(1, 5), (1, 8), (1, 9), (2, 7)], 4, 10)  # user 2: only a cold item
    res = evaluate(model, test, ks=(6,))
    assert res.users.tolist() == [1, 2]
    np.testing.assert_allclose(res.per_user["recall@6"], [1 / 3, 0.0])
    np.testing.assert_allclose(res.per_user["ndcg@6"], [1 / (1 + L3 + 0.5), 0.0])


# ---------------------------------------------------------------------------- random cases
def _random_problem(seed: int, n_users: int = 40, n_items: int = 30):
    rng = np.random.default_rng(seed)
    table = np.round(rng.random((n_users, n_items)), 1)  # many ties
    pairs = rng.random((n_users, n_items))
    train = np.argwhere(pairs < 0.2)
    test = np.argwhere(pairs > 0.85)
    test = test[test[:, 0] % 5 != 0]  # some users have no test item
    mk = lambda a: Interactions.from_arrays(a[:, 0], a[:, 1], n_users=n_users, n_items=n_items)  # noqa: E731
    return TableModel(table).fit(), mk(train), mk(test)


def _brute_force(model, test, exclude_csr, k):
    """Per-user loop reference: sort all items (score desc, index asc), drop excluded."""
    truth = test.to_csr()
    out = {"precision": [], "recall": [], "ndcg": [], "map": [], "mrr": [], "hit": []}
    for u in np.flatnonzero(np.diff(truth.indptr)):
        s = model.score(np.array([u]))[0].astype(np.float64)
        banned = set(exclude_csr[[u]].indices.tolist()) if exclude_csr is not None else set()
        order = [i for i in np.lexsort((np.arange(len(s)), -s)) if i not in banned][:k]
        rel = set(truth[[u]].indices.tolist())
        h = [i in rel for i in order]
        ranks = [r + 1 for r, x in enumerate(h) if x]
        out["precision"].append(sum(h) / k)
        out["recall"].append(sum(h) / len(rel))
        ideal = sum(1 / np.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        out["ndcg"].append(sum(1 / np.log2(r + 1) for r in ranks) / ideal)
        out["map"].append(sum((j + 1) / r for j, r in enumerate(ranks)) / min(len(rel), k))
        out["mrr"].append(1 / ranks[0] if ranks else 0.0)
        out["hit"].append(float(bool(ranks)))
    return out


def test_matches_per_user_brute_force():
    model, train, test = _random_problem(0)
    res = evaluate(model, test, exclude=train, ks=(5, 10))
    for k in (5, 10):
        ref = _brute_force(model, test, train.to_csr(), k)
        for name, values in ref.items():
            np.testing.assert_allclose(res.per_user[f"{name}@{k}"], values, err_msg=name)


def test_batch_size_invariance_full_and_sampled():
    model, train, test = _random_problem(1)
    counts = train.item_counts()
    cats = np.arange(30) % 4
    kw = dict(exclude=train, ks=(3, 10), item_counts=counts, item_categories=cats)
    runs = [evaluate(model, test, batch_size=b, **kw) for b in (1, 7, 1000)]
    sampled = [evaluate(model, test, batch_size=b, sampled=5, rng=3, exclude=train, ks=(3, 10))
               for b in (1, 7, 1000)]
    for group in (runs, sampled):
        first = group[0]
        for other in group[1:]:
            np.testing.assert_array_equal(first.users, other.users)
            assert first.per_user.keys() == other.per_user.keys()
            for key in first.per_user:
                np.testing.assert_array_equal(first.per_user[key], other.per_user[key])
            assert first.aggregate == other.aggregate


def test_beyond_accuracy_matches_recommend():
    model, train, test = _random_problem(2)
    counts = train.item_counts()
    emb = np.random.default_rng(0).normal(size=(30, 4))
    res = evaluate(model, test, exclude=train, ks=(4,), item_counts=counts, item_embeddings=emb)
    recs = model.recommend(res.users, k=4, exclude=train.to_csr())
    np.testing.assert_allclose(res.per_user["novelty@4"], M.novelty(recs.items, counts, 40))
    np.testing.assert_allclose(res.per_user["popularity@4"],
                               M.average_popularity(recs.items, counts))
    np.testing.assert_allclose(res.per_user["diversity@4"],
                               M.intra_list_diversity(recs.items, embeddings=emb))
    assert res.aggregate["coverage@4"] == M.coverage(recs.items, 30)
    hits = M.hit_matrix(recs.items, test.to_csr()[res.users])
    n_rel = np.diff(test.to_csr().indptr)[res.users]
    np.testing.assert_allclose(res.per_user["ndcg@4"], M.ndcg(hits, n_rel, 4))


# ---------------------------------------------------------------------------- sampled
def test_sampled_is_labelled_and_ranks_among_negatives():
    # every user's relevant item scores lowest of all: full ranking never hits it
    n_users, n_items = 5, 12
    table = np.tile(np.arange(n_items, 0, -1, dtype=np.float64), (n_users, 1))  # item 11 lowest
    model = TableModel(table).fit()
    test = _inter([(u, 11) for u in range(n_users)], n_users, n_items)
    full = evaluate(model, test, ks=(3,))
    assert full.means()["hit@3"] == 0.0
    res = evaluate(model, test, ks=(3,), sampled=2, rng=np.random.default_rng(0))
    assert res.sampled and res.n_negatives == 2
    assert res.aggregate == {}
    means = res.means()
    assert means and all(k.startswith("sampled_") for k in means)
    # 1 relevant + 2 negatives: the relevant item is always in the top 3, at rank 3
    assert means["sampled_hit@3"] == 1.0
    np.testing.assert_allclose(res.per_user["mrr@3"], 1 / 3)


def test_sampled_with_every_negative_equals_full_ranking():
    model, train, test = _random_problem(5)
    full = evaluate(model, test, exclude=train, ks=(5,))
    res = evaluate(model, test, exclude=train, ks=(5,), sampled=1000, sampling="uniform")
    for key in full.per_user:
        np.testing.assert_array_equal(full.per_user[key], res.per_user[key])


def test_popularity_sampling_never_draws_zero_count_items():
    # items 1..3 score highest but have count 0; negatives come from items 4, 5 only
    table = np.array([[0.5, 0.9, 0.9, 0.9, 0.1, 0.2]] * 2)
    model = TableModel(table).fit()
    test = _inter([(0, 0), (1, 0)], 2, 6)
    counts = np.array([5, 0, 0, 0, 1, 1])
    res = evaluate(model, test, ks=(3,), sampled=2, sampling="popularity", item_counts=counts)
    np.testing.assert_allclose(res.per_user["mrr@3"], [1.0, 1.0])
    uni = evaluate(model, test, ks=(3,), sampled=5, sampling="uniform", rng=0)
    np.testing.assert_allclose(uni.per_user["mrr@3"], [0.0, 0.0])  # items 1-3 beat item 0


def test_argument_errors():
    model = TableModel(TABLE).fit()
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(model, TEST, metrics=("ndcg", "auc"))
    with pytest.raises(ValueError, match="item_counts"):
        evaluate(model, TEST, sampled=3, sampling="popularity")
    with pytest.raises(ValueError, match="not both"):
        evaluate(model, TEST, item_categories=np.zeros(6), item_embeddings=np.zeros((6, 2)))
    with pytest.raises(TypeError, match="exclude"):
        evaluate(model, TEST, exclude=np.zeros((4, 6)))
    with pytest.raises(RuntimeError, match="not fitted"):
        evaluate(TableModel(TABLE), TEST)
    with pytest.raises(ValueError, match="ks"):
        evaluate(model, TEST, ks=(0,))


def test_sparse_exclude_matrix_can_be_passed_as_csr_matrix():
    model = TableModel(TABLE).fit()
    ex = sp.csr_matrix(TRAIN.to_csr())
    res = evaluate(model, TEST, exclude=ex, ks=(3,))
    np.testing.assert_allclose(res.per_user["mrr@3"], [0.5, 1.0, 1.0])
