"""Click models: the CTR conformance suite catches a bad model (every registered model passes
it in tests/testing/test_conformance.py); the FM, DCN-v2, CIN and DIN building blocks compute
what their papers define."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Self

import numpy as np
import pytest
import torch
from torch import nn

from streamrec.data.ctr import CTRData
from streamrec.models.ctr.base import CTRModel
from streamrec.models.ctr.dcn import CrossNetwork
from streamrec.models.ctr.fm import pairwise_interaction
from streamrec.models.ctr.xdeepfm import CIN
from streamrec.models.neural.trainer import seeded
from streamrec.models.zoo import available, create
from streamrec.testing.ctr_conformance import (
    check_all_ctr,
    check_ctr_model,
    ctr_conformance_params,
    tiny_ctr_data,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny data: one thread is faster

DEEP = ["fm", "mlp", "wide_deep", "deepfm", "dcn_v2", "xdeepfm", "din"]


def _fast(name: str, **extra) -> CTRModel:
    return create(name, kind="ctr", **{**ctr_conformance_params(name), **extra})


@pytest.fixture(autouse=True)
def _torch_seed():
    """Each test draws from torch's generator seeded 0, restored afterwards (no global seed)."""
    with seeded(0):
        yield


@pytest.fixture(scope="module")
def split():
    return tiny_ctr_data()


# ---------------------------------------------------------------------------- conformance
# every registered click model runs every check in tests/testing/test_conformance.py
def test_the_models_of_this_suite_are_registered():
    assert set(DEEP) <= set(available("ctr"))


def test_check_all_ctr_on_a_subset():
    assert check_all_ctr(["fm"]) == {}


class _Constant(CTRModel):
    """Predicts the training click rate for everyone: must fail the 'learns' check."""

    def __init__(self) -> None:
        pass

    def fit(self, train, *, valid=None, rng=None) -> Self:
        y = self._check_train(train)
        self.schema_ = train.schema
        self.rate_ = np.array([y.mean()], dtype=np.float32)
        return self

    def predict_proba(self, data):
        self._check_data(data)
        return np.full(len(data), self.rate_[0], dtype=np.float32)

    def _get_state(self):
        return {"schema": self.schema_.to_array(), "rate": self.rate_}

    def _set_state(self, state):
        from streamrec.data.ctr import FeatureSchema

        self.schema_ = FeatureSchema.from_array(state["schema"])
        self.rate_ = state["rate"]


def test_suite_rejects_a_constant_predictor(split):
    with pytest.raises(AssertionError, match="learns"):
        check_ctr_model(_Constant, name="constant", data=split)


def test_tiny_ctr_data_is_deterministic_and_learnable():
    a, b = tiny_ctr_data(0), tiny_ctr_data(0)
    np.testing.assert_array_equal(a.train.categorical, b.train.categorical)
    np.testing.assert_array_equal(a.train.history, b.train.history)
    assert not np.array_equal(tiny_ctr_data(1).train.dense, a.train.dense)
    assert sum(map(len, a)) == 400 and len(a.train) == 280
    assert a.train.schema.item_field == "item" and a.train.schema.n_history_items == 31
    h = a.train.history
    assert h.shape == (280, 8) and h.min() == 0 and h.max() <= 30
    # right-aligned: once a position is real, every later one is too
    assert (np.diff((h > 0).astype(int), axis=1) >= 0).all()
    assert 0.2 < a.train.positive_rate < 0.8
    from streamrec.eval.metrics import auc

    assert auc(a.train.labels, a.train.truth) > 0.8
    bare = tiny_ctr_data(0, with_history=False)
    assert bare.train.history is None and bare.train.schema.item_field is None
    np.testing.assert_array_equal(bare.train.labels, a.train.labels)


# ---------------------------------------------------------------------------- FM
def test_fm_second_order_equals_brute_force_pairs():
    gen = torch.Generator().manual_seed(0)
    e = torch.randn(3, 5, 4, generator=gen, dtype=torch.float64)  # (B, F, k)
    brute = sum((e[:, i] * e[:, j]).sum(-1) for i, j in itertools.combinations(range(5), 2))
    torch.testing.assert_close(pairwise_interaction(e), brute)


def test_fm_l2_penalty(split):
    assert _fast("fm")._build(split.train.schema).penalty() is None
    module = _fast("fm", l2=0.1)._build(split.train.schema)
    table = module.embed.table.weight
    expected = 0.1 * (table.square().sum() + module.embed.dense_vectors.square().sum())
    torch.testing.assert_close(module.penalty(), expected)
    with pytest.raises(ValueError, match="l2"):
        _fast("fm", l2=-1.0).fit(split.train, rng=0)


# ---------------------------------------------------------------------------- DCN-v2
def test_dcn_cross_layer_formula():
    cross = CrossNetwork(3, n_layers=2)
    x0 = torch.randn(4, 3)  # (B, d)
    x = x0
    for layer in cross.layers:  # a loop over layers
        w, b = layer.weight, layer.bias
        x = x0 * (x @ w.T + b) + x  # x_{l+1} = x0 ⊙ (W x_l + b) + x_l
    torch.testing.assert_close(cross(x0), x)


def test_dcn_low_rank_cross_is_u_v_transpose():
    cross = CrossNetwork(6, n_layers=1, rank=2)
    v, u = cross.layers[0][0], cross.layers[0][1]  # V: d -> r, U: r -> d
    assert v.weight.shape == (2, 6) and u.weight.shape == (6, 2)
    x0 = torch.randn(4, 6)
    w = u.weight @ v.weight  # (d, d) of rank 2
    torch.testing.assert_close(cross(x0), x0 * (x0 @ w.T + u.bias) + x0)
    with pytest.raises(ValueError, match="rank"):
        CrossNetwork(6, 1, rank=-1)


@pytest.mark.parametrize(("name", "params"), [
    ("dcn_v2", {"structure": "stacked"}), ("dcn_v2", {"rank": 2, "n_cross": 1}),
    ("xdeepfm", {"embed_dense": True}), ("xdeepfm", {"split_half": False}),
], ids=["dcn-stacked", "dcn-low-rank", "xdeepfm-dense-fields", "xdeepfm-no-split"])
def test_model_variants_fit(split, name, params):
    model = _fast(name, **params).fit(split.train, rng=0)
    p = model.predict_proba(split.test)
    assert p.shape == (len(split.test),) and np.isfinite(p).all()


def test_dcn_rejects_unknown_structure(split):
    with pytest.raises(ValueError, match="structure"):
        _fast("dcn_v2", structure="diagonal").fit(split.train, rng=0)


# ---------------------------------------------------------------------------- xDeepFM / CIN
def test_cin_output_shape():
    x0 = torch.randn(2, 5, 3)  # (B, m, k)
    half = CIN(5, (4, 6), split_half=True)
    assert half.out_dim == 4 // 2 + 6 and half(x0).shape == (2, 8)
    full = CIN(5, (4, 6), split_half=False)
    assert full.out_dim == 10 and full(x0).shape == (2, 10)
    with pytest.raises(ValueError, match="even"):
        CIN(5, (3, 6), split_half=True)


def test_cin_first_layer_matches_its_definition():
    cin = CIN(4, (3,), split_half=False).double()
    x0 = torch.randn(2, 4, 5, dtype=torch.float64)  # (B, m, k)
    w = cin.layers[0].weight.reshape(3, 4, 4)  # (H, H_prev, m)
    # x1[b, h, k] = Σ_ij W[h, i, j] x0[b, i, k] x0[b, j, k] + bias, then sum over k
    x1 = torch.einsum("hij,bik,bjk->bhk", w, x0, x0) + cin.layers[0].bias[None, :, None]
    torch.testing.assert_close(cin(x0), x1.sum(-1))


# ---------------------------------------------------------------------------- DIN
@pytest.fixture(scope="module")
def din_module(split):
    with seeded(0), torch.no_grad():
        module = _fast("din")._build(split.train.schema)
        for p in module.parameters():  # a loop over parameters: scores away from zero,
            p.normal_(0.0, 0.5)  # so the checks below are not vacuous
    return module.eval()


def _din_inputs(data: CTRData):
    return (torch.from_numpy(data.dense), torch.from_numpy(data.categorical),
            torch.from_numpy(data.history))


def test_din_padding_is_ignored(din_module, split):
    dense, cat, hist = _din_inputs(split.test)
    with torch.no_grad():
        base = din_module(dense, cat, hist)
        longer = torch.cat([torch.zeros(len(hist), 3, dtype=torch.long), hist], dim=1)
        torch.testing.assert_close(din_module(dense, cat, longer), base)
        # the weights are not softmax-normalised: they do not sum to 1 per row
        rows, pos = (hist != 0).nonzero(as_tuple=True)
        c = din_module.items.weight[cat[:, din_module.item_col]]
        w = din_module.attention.weights(din_module.items.weight[hist[rows, pos]], c, rows)
        per_row = torch.zeros(len(hist), dtype=w.dtype).index_add(0, rows, w)
    assert not torch.allclose(per_row[hist.any(1)], torch.ones(1))


def test_din_history_order_does_not_matter(din_module, split):
    dense, cat, hist = _din_inputs(split.test)
    # reverse the real items of each row, keeping the padding on the left
    n_real = (hist > 0).sum(1, keepdim=True)
    pos = torch.arange(hist.shape[1]).expand_as(hist)
    start = hist.shape[1] - n_real
    src = torch.where(pos >= start, start + (hist.shape[1] - 1 - pos), pos)
    reversed_hist = hist.gather(1, src)
    assert not torch.equal(reversed_hist, hist)
    torch.testing.assert_close((reversed_hist > 0), (hist > 0))
    with torch.no_grad():
        torch.testing.assert_close(din_module(dense, cat, reversed_hist),
                                   din_module(dense, cat, hist))


def test_din_without_history_scores_as_empty_history(din_module, split):
    dense, cat, hist = _din_inputs(split.test)
    with torch.no_grad():
        empty = din_module(dense, cat, torch.zeros_like(hist))
        torch.testing.assert_close(din_module(dense, cat, None), empty)
        assert not torch.allclose(empty, din_module(dense, cat, hist))


def test_din_needs_histories(split):
    bare = tiny_ctr_data(with_history=False)
    with pytest.raises(ValueError, match="user histories"):
        _fast("din").fit(bare.train, rng=0)
    with pytest.raises(ValueError, match="train.history is None"):
        _fast("din").fit(replace(split.train, history=None), rng=0)
    with pytest.raises(ValueError, match="item_field"):
        _fast("din")._build(bare.train.schema)


def test_din_rejects_a_larger_history_code_space(split):
    model = _fast("din", epochs=1).fit(split.train, rng=0)
    test = split.test
    wider = replace(test, schema=replace(test.schema, n_history_items=50))
    with pytest.raises(ValueError, match="item codes"):
        model.predict_proba(wider)


# ---------------------------------------------------------------------------- all models
def _linear_widths(module: nn.Module) -> list[int]:
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name", [n for n in DEEP if n != "fm"])
def test_hidden_dims_are_configurable(name, split):
    widths = _linear_widths(_fast(name, hidden=(7, 5))._build(split.train.schema))
    assert 7 in widths and 5 in widths
    assert 13 not in widths


def test_din_attention_dims_are_configurable(split):
    module = _fast("din", att_hidden=(11, 3))._build(split.train.schema)
    assert _linear_widths(module.attention) == [11, 3, 1]

