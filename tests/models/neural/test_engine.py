"""The shared neural engine: losses, negative samplers, the Trainer, and torch BPR-MF."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from streamrec.data.sampling import NegativeSampler
from streamrec.models.neural import losses
from streamrec.models.neural.bpr import BPRMF
from streamrec.models.neural.trainer import TrainConfig, Trainer, index_batches, seeded
from streamrec.testing.conformance import check_recommender, tiny_interactions

# ---------------------------------------------------------------------------- losses


def test_bce_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(5, generator=g), torch.randn(5, 3, generator=g)
    logits = torch.cat([pos, neg.reshape(-1)])
    labels = torch.cat([torch.ones(5), torch.zeros(15)])
    want = F.binary_cross_entropy_with_logits(logits, labels)
    assert torch.allclose(losses.bce_loss(pos, neg), want, atol=1e-6)


def test_bpr_hand_case() -> None:
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([[1.0], [0.0]])
    want = (-math.log(1 / (1 + math.exp(-1.0))) - math.log(0.5)) / 2
    assert losses.bpr_loss(pos, neg).item() == pytest.approx(want, rel=1e-6)


def test_sampled_softmax_equals_full_softmax_when_negatives_are_the_rest() -> None:
    g = torch.Generator().manual_seed(1)
    q, items = torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g)
    target = torch.tensor([0, 2, 5, 1])
    full = F.cross_entropy(q @ items.T, target)
    # per query: negatives = every other item
    neg = torch.stack([items[[j for j in range(6) if j != t]] for t in target.tolist()])
    got = losses.sampled_softmax_loss(q, items[target], neg, shared_negatives=False)
    assert torch.allclose(got, full, atol=1e-5)


def test_sampled_softmax_logq_shifts_logits() -> None:
    g = torch.Generator().manual_seed(2)
    q, pos, neg = (torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g),
                   torch.randn(5, 4, generator=g))
    logq = torch.log(torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2]))
    logits = torch.cat([(q * pos).sum(1, keepdim=True), q @ neg.T - logq], dim=1)
    want = F.cross_entropy(logits, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(losses.sampled_softmax_loss(q, pos, neg, neg_logq=logq), want)


def test_in_batch_softmax_masks_duplicate_positives() -> None:
    q = torch.eye(3)
    items = torch.eye(3)
    ids = torch.tensor([7, 7, 9])
    got = losses.in_batch_softmax_loss(q, items, item_ids=ids)
    logits = q @ items.T
    logits[0, 1] = logits[1, 0] = -math.inf
    assert torch.allclose(got, F.cross_entropy(logits, torch.arange(3)))


def test_multinomial_and_kl_hand_cases() -> None:
    logits = torch.zeros(1, 4)
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    assert losses.multinomial_loss(logits, x).item() == pytest.approx(2 * math.log(4))
    assert losses.kl_normal(torch.zeros(2, 3), torch.zeros(2, 3)).item() == 0.0
    mu = torch.ones(1, 2)
    assert losses.kl_normal(mu, torch.zeros(1, 2)).item() == pytest.approx(1.0)


def test_mse_weighted() -> None:
    p, t = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 3.0])
    assert losses.mse_loss(p, t).item() == pytest.approx(0.5)
    assert losses.mse_loss(p, t, torch.tensor([1.0, 3.0])).item() == pytest.approx(0.25)


# ---------------------------------------------------------------------------- samplers


def _positives(seed: int = 0, n_users: int = 50, n_items: int = 30) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < 0.5).astype(np.float32)
    x[0, :-1] = 1  # user 0 has a single negative item (the last)
    return sp.csr_array(x)


@pytest.mark.parametrize("strategy", ["uniform", "popularity"])
def test_sampler_never_returns_positives(strategy: str) -> None:
    x = _positives()
    s = NegativeSampler(x, strategy=strategy)
    users = np.repeat(np.arange(x.shape[0]), 20)
    neg = s.sample(users, 5, np.random.default_rng(0))
    assert neg.shape == (len(users), 5)
    dense = x.toarray()
    assert not dense[users[:, None], neg].any()
    assert (neg[users == 0] == x.shape[1] - 1).all()


def test_sampler_is_seeded_and_allow_positives_skips_rejection() -> None:
    x = _positives()
    users = np.arange(x.shape[0])
    a = NegativeSampler(x).sample(users, 3, np.random.default_rng(5))
    b = NegativeSampler(x).sample(users, 3, np.random.default_rng(5))
    assert np.array_equal(a, b)
    loose = NegativeSampler(x, allow_positives=True).sample(
        np.zeros(2000, np.int64), 1, np.random.default_rng(0))
    assert x.toarray()[0, loose[:, 0]].any()  # user 0 owns 29 of 30 items


def test_popularity_sampler_follows_count_power() -> None:
    counts = np.array([100, 10, 1, 0])
    rows = np.concatenate([np.arange(c) for c in counts])  # item i held by counts[i] users
    cols = np.concatenate([np.full(c, i) for i, c in enumerate(counts)])
    x = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(200, 4))
    s = NegativeSampler(x, strategy="popularity", alpha=1.0, allow_positives=True)
    draws = s.sample(np.zeros(100_000, np.int64), 1, np.random.default_rng(0))[:, 0]
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq, counts / counts.sum(), atol=0.01)
    assert freq[3] == 0  # never-seen items have probability 0 ** alpha


def test_hard_sampler_picks_the_highest_scoring_unseen_candidate() -> None:
    x = _positives()
    s = NegativeSampler(x, strategy="hard", hard_candidates=100)

    def score(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return items.astype(float)  # higher index = harder

    users = np.arange(1, x.shape[0])
    neg = s.sample(users, 2, np.random.default_rng(0), score_fn=score)
    dense = x.toarray()
    assert not dense[users[:, None], neg].any()
    best_unseen = np.array([np.flatnonzero(dense[u] == 0).max() for u in users])
    # 100 candidates drawn among ~15 unseen items: the top one is almost always drawn
    assert (neg[:, 0] == best_unseen).mean() > 0.9
    with pytest.raises(ValueError, match="score_fn"):
        s.sample(users, 1, np.random.default_rng(0))


def test_mixed_sampler_share_of_hard() -> None:
    x = sp.csr_array((1, 1000), dtype=np.float32)
    s = NegativeSampler(x, strategy="mixed", hard_ratio=0.25, hard_candidates=50)
    neg = s.sample(np.zeros(4000, np.int64), 1, np.random.default_rng(0),
                   score_fn=lambda u, i: i.astype(float))
    # a hard pick out of 50 uniform candidates is almost surely >= 900
    share = (neg >= 900).mean()
    assert 0.25 < share < 0.40  # 25% hard + ~10% of the uniform ones


# ---------------------------------------------------------------------------- trainer


class _Quadratic(nn.Module):
    """loss = (w - target)^2; validation = -|w - best| peaks at ``best``."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        return ((self.w - batch) ** 2).mean()


def test_trainer_early_stopping_restores_best_weights() -> None:
    m = _Quadratic()
    seen: list[float] = []

    def validate() -> float:
        seen.append(m.w.item())
        return -abs(m.w.item() - 0.5)  # best when w passes 0.5 on its way to 2

    cfg = TrainConfig(epochs=200, lr=0.05, patience=3, optimizer="sgd")
    hist = Trainer(cfg).fit(m, lambda e: [torch.full((4,), 2.0)], validate=validate)
    assert hist.stopped_early
    assert len(hist.losses) < 200
    assert m.w.item() == pytest.approx(seen[hist.best_epoch - 1])
    assert abs(m.w.item() - 0.5) == pytest.approx(-hist.best_value)
    assert abs(m.w.item() - 0.5) < 0.1


def test_trainer_clipping_and_nonfinite_loss() -> None:
    m = _Quadratic()
    cfg = TrainConfig(epochs=1, lr=1.0, optimizer="sgd", clip_norm=0.1, patience=0)
    Trainer(cfg).fit(m, lambda e: [torch.full((1,), 100.0)])
    assert abs(m.w.item()) == pytest.approx(0.1, rel=1e-4)  # one clipped SGD step
    with pytest.raises(FloatingPointError, match="lr"):
        Trainer(cfg).fit(_Quadratic(), lambda e: [torch.full((1,), math.inf)])


@pytest.mark.parametrize(("schedule", "want"), [
    ("constant", [1.0, 1.0, 1.0, 1.0]),
    ("step", [1.0, 1.0, 0.5, 0.5]),
    ("cosine", [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]),
])
def test_lr_schedules(schedule: str, want: list[float]) -> None:
    t = Trainer(TrainConfig(epochs=4, schedule=schedule, step_size=2, gamma=0.5))
    got = [t._lr_factor(e * 10, 10, 1.0) for e in range(4)]
    assert got == pytest.approx(want)
    warm = Trainer(TrainConfig(epochs=4, warmup_epochs=1))
    assert warm._lr_factor(0, 10, 1.0) == pytest.approx(0.1)
    assert warm._lr_factor(9, 10, 1.0) == pytest.approx(1.0)


def test_plateau_schedule_lowers_lr_after_stalled_validations() -> None:
    m = _Quadratic()
    lrs: list[float] = []
    cfg = TrainConfig(epochs=6, lr=0.1, schedule="plateau", step_size=2, gamma=0.1, patience=0,
                      optimizer="sgd")
    trainer = Trainer(cfg)
    orig = trainer._optimizer

    def spy(module: nn.Module) -> torch.optim.Optimizer:
        opt = orig(module)
        step = opt.step

        def record(*a, **k):  # type: ignore[no-untyped-def]
            lrs.append(opt.param_groups[0]["lr"])
            return step(*a, **k)

        opt.step = record  # type: ignore[method-assign]
        return opt

    trainer._optimizer = spy  # type: ignore[method-assign]
    trainer.fit(m, lambda e: [torch.zeros(1)], validate=lambda: 0.0)  # never improves
    # epoch 1 sets the best; epochs 2-3 stall -> x0.1 from epoch 4; 4-5 stall -> x0.01
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.01, 0.01, 0.001])


def test_index_batches_cover_everything_once() -> None:
    b = index_batches(10, 4, torch.Generator().manual_seed(0))
    assert [len(x) for x in b] == [4, 4, 2]
    assert sorted(torch.cat(b).tolist()) == list(range(10))


def test_seeded_restores_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    with seeded(7):
        a = torch.rand(3)
    assert torch.equal(torch.random.get_rng_state(), before)
    with seeded(7):
        assert torch.equal(torch.rand(3), a)


# ---------------------------------------------------------------------------- BPR-MF


SMALL = {"factors": 8, "epochs": 5, "batch_size": 64, "lr": 0.01, "eval_every": 1}


def test_bprmf_conformance() -> None:
    check_recommender(lambda: BPRMF(**SMALL))


@pytest.mark.parametrize("sampler", ["uniform", "popularity", "hard", "mixed"])
def test_bprmf_learns_with_every_sampler(sampler: str) -> None:
    from sklearn.metrics import roc_auc_score

    train, _ = tiny_interactions()
    m = BPRMF(**{**SMALL, "epochs": 30}, sampler=sampler, negatives=2).fit(train, rng=0)
    x = train.to_csr(values="binary").toarray()
    auc = roc_auc_score(x.ravel(), m.score(np.arange(train.n_users)).ravel())
    assert auc > 0.8  # train positives rank above the unseen items


def test_bprmf_early_stopping_uses_valid() -> None:
    train, test = tiny_interactions()
    m = BPRMF(**{**SMALL, "epochs": 30}, patience=2).fit(train, valid=test, rng=0)
    h = m.history_
    assert h.valid and h.best_epoch == max(h.valid, key=lambda ev: ev[1])[0]
    assert len(h.epoch_seconds) == len(h.losses) <= 30


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bprmf_on_cuda_matches_cpu_quality() -> None:
    from sklearn.metrics import roc_auc_score

    train, _ = tiny_interactions()
    m = BPRMF(**{**SMALL, "epochs": 30}, device="cuda").fit(train, rng=0)
    assert m.device_.type == "cuda"
    x = train.to_csr(values="binary").toarray()
    assert roc_auc_score(x.ravel(), m.score(np.arange(train.n_users)).ravel()) > 0.8


def test_trainer_progress_bar_runs() -> None:
    m = _Quadratic()
    hist = Trainer(TrainConfig(epochs=3, progress=True, patience=0)).fit(
        m, lambda e: [torch.ones(2)], validate=lambda: -abs(m.w.item() - 1))
    assert len(hist.losses) == 3 and hist.summary()["epochs"] == 3


# ---------------------------------------------------------------------------- layers
def test_fast_dropout_rate_scale_and_gradient() -> None:
    from streamrec.models.neural.layers import Dropout, dropout

    x = torch.ones(400, 500, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, 0.3)
    kept = y.detach() != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.005  # 200k draws: sd ~0.001
    torch.testing.assert_close(y.detach()[kept], torch.full((int(kept.sum()),), 1 / 0.7))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(x * mask)/dx = mask
    torch.manual_seed(0)
    torch.testing.assert_close(dropout(x, 0.3), y)  # seeded by torch's generator
    layer = Dropout(0.3)
    assert torch.equal(layer.eval()(x), x) and torch.equal(dropout(x, 0.0), x)
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_sparse_multinomial_loss_equals_dense() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 9, generator=g)
    target = (torch.rand(5, 9, generator=g) < 0.3).float()
    target[0, 0] = 1.0
    rows, cols = target.nonzero(as_tuple=True)
    got = losses.sparse_multinomial_loss(logits, rows, cols, target[rows, cols])
    torch.testing.assert_close(got, losses.multinomial_loss(logits, target))


def test_amp_modes() -> None:
    assert TrainConfig(amp=True).amp == "auto" and TrainConfig(amp=False).amp == "off"
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig(amp="fp8")
