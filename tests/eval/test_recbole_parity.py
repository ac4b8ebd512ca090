"""The evaluation chain against RecBole on ML-100K (slow: needs ../shared/data).

RecBole 1.2.1 on the same temporal_user split files gives EASE (λ=250) 0.1348 NDCG@10 and
0.1225 Recall@10 (../shared/peers, measured on this machine); StreamRec's split, EASE and
full-ranking evaluator must give the same numbers.
"""

from __future__ import annotations

import pytest

from tests._paths import ML100K, needs_ml100k

pytestmark = [pytest.mark.slow, needs_ml100k]


def test_ease_and_pop_on_ml100k_match_the_peer_figures(prepared_split):
    from streamrec.eval.protocol import evaluate
    from streamrec.models import create

    sp = prepared_split(f"recbole:{ML100K}")[1]
    ease = create("ease", lam=250.0).fit(sp.train)
    m = evaluate(ease, sp.test, exclude=[sp.train, sp.valid], ks=(10, 20)).means()
    assert m["ndcg@10"] == pytest.approx(0.1348, abs=5e-5)
    assert m["recall@10"] == pytest.approx(0.1225, abs=5e-5)
    assert m["hit@10"] == pytest.approx(0.5249, abs=5e-5)
    pop = evaluate(create("pop").fit(sp.train), sp.test, exclude=[sp.train, sp.valid]).means()
    assert 0.06 <= pop["ndcg@10"] <= 0.09
