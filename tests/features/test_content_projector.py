"""ContentProjector: item content -> model item vectors (cold start)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from streamrec.data.interactions import Interactions
from streamrec.data.synthetic.world import WorldConfig, generate_world
from streamrec.features.content import ContentEmbedder, ContentProjector, item_texts
from streamrec.models.zoo import create


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(n_users=1000, n_items=300, n_days=14, seed=2))


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of (n, d) arrays."""
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def held_out_quality(items: pl.DataFrame, vectors: np.ndarray, eligible: np.ndarray,
                     seed: int = 0) -> dict[str, float]:
    """Fit on 80% of ``eligible`` items, project the other 20%; centred cosines and the share
    of the 10 nearest true (train) vectors of each projected item that share its category."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(np.flatnonzero(eligible))
    test, train = perm[: len(perm) // 5], perm[len(perm) // 5:]
    proj = ContentProjector().fit(items[train], vectors[train])
    pred = proj.transform(items[test])
    assert pred.shape == (len(test), vectors.shape[1]) and pred.dtype == np.float32
    mu = vectors[train].mean(axis=0)  # centre: model vectors share a common direction
    true_c, pred_c = vectors - mu, pred - mu
    own = cosine(pred_c, true_c[test]).mean()
    # chance: cosine of each projection with the other held-out items' true vectors
    unit_p = pred_c / np.linalg.norm(pred_c, axis=1, keepdims=True)
    unit_t = true_c / np.linalg.norm(true_c, axis=1, keepdims=True)
    pairs = unit_p @ unit_t[test].T
    other = pairs[~np.eye(len(test), dtype=bool)].mean()
    cats = np.unique(items["category"].to_numpy(), return_inverse=True)[1]
    nearest = train[np.argsort(-(unit_p @ unit_t[train].T), axis=1)[:, :10]]
    same = (cats[nearest] == cats[test][:, None]).mean()
    chance = ((np.bincount(cats[train]) / len(train)) ** 2).sum()
    return {"own": own, "other": other, "same": same, "chance": chance}


def test_projects_category_and_text_vectors(world) -> None:
    items = world.items.sort("item_id")
    rng = np.random.default_rng(0)
    cats = np.unique(items["category"].to_numpy(), return_inverse=True)[1]
    text = ContentEmbedder(16).fit(item_texts(items)).transform(item_texts(items))
    vectors = (rng.standard_normal((cats.max() + 1, 12))[cats]
               + text @ rng.standard_normal((16, 12))
               + 0.2 * rng.standard_normal((len(items), 12)))
    q = held_out_quality(items, vectors, np.ones(len(items), bool))
    assert q["own"] > 0.8 and q["other"] < 0.2
    assert q["same"] > 0.8 and q["chance"] < 0.15


def test_projects_ials_item_factors(world) -> None:
    """On vectors learned from plays (iALS), content still predicts them well above chance."""
    ev = world.events.filter(pl.col("event").is_in(["play", "click"]))
    items = world.items.sort("item_id")
    users, item_idx = ev["user_id"].to_numpy() - 1, ev["item_id"].to_numpy() - 1
    train = Interactions.from_arrays(users=users, items=item_idx,
                                     timestamps=ev["timestamp"].to_numpy(),
                                     n_users=int(users.max()) + 1, n_items=len(items))
    model = create("ials", factors=16, iterations=10, num_threads=1).fit(train, rng=0)
    vectors = model.item_factors_.astype(np.float64)
    eligible = np.bincount(item_idx, minlength=len(items)) >= 3  # items with a learned vector
    q = held_out_quality(items, vectors, eligible)
    assert q["own"] > q["other"] + 0.2
    assert q["same"] > 3 * q["chance"]


def test_unknown_levels_nulls_and_save_load(world, tmp_path) -> None:
    items = world.items.sort("item_id")
    vectors = np.random.default_rng(1).standard_normal((len(items), 8))
    proj = ContentProjector(text_dim=8, alpha=0.5, categorical=("category", "creator_id"))
    proj.fit(items, vectors)
    cold = pl.DataFrame({"item_id": [9001, 9002], "title": ["Brand New Show", None],
                         "description": ["football championship final", None],
                         "category": ["never-seen", None], "creator_id": [10_000, 3],
                         "length_seconds": [None, 1200]})
    out = proj.transform(cold)
    assert out.shape == (2, 8) and np.isfinite(out).all()
    # unseen or null category -> zero one-hot block; null text -> zero text block;
    # null length -> the fit mean (0 after standardising)
    design = proj.features(cold)
    n_text, n_cat = 8, len(proj.levels_["category"])
    assert not design[:, n_text:n_text + n_cat].any()
    assert design[1, :n_text].sum() == 0 and design[0, -1] == 0.0
    proj.save(tmp_path / "proj")
    loaded = ContentProjector.load(tmp_path / "proj")
    np.testing.assert_array_equal(loaded.transform(cold), out)
    np.testing.assert_array_equal(loaded.transform(items), proj.transform(items))


def test_content_embedder_state_roundtrip(world) -> None:
    texts = item_texts(world.items)
    emb = ContentEmbedder(12, seed=3).fit(texts)
    state = emb.get_state()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    again = ContentEmbedder.from_state(state)
    np.testing.assert_array_equal(again.transform(texts[:50] + ["unseen words"]),
                                  emb.transform(texts[:50] + ["unseen words"]))


def test_projector_bad_input(world) -> None:
    items = world.items.sort("item_id")
    vectors = np.ones((len(items), 4))
    with pytest.raises(ValueError, match="rows must be aligned"):
        ContentProjector().fit(items, vectors[:-1])
    with pytest.raises(ValueError, match="missing column"):
        ContentProjector().fit(items.drop("category"), vectors)
    with pytest.raises(ValueError, match="2-d"):
        ContentProjector().fit(items, vectors[:, 0])
    with pytest.raises(ValueError, match="alpha"):
        ContentProjector(alpha=0).fit(items, vectors)
    with pytest.raises(RuntimeError, match="fit"):
        ContentProjector().transform(items)
    proj = ContentProjector(text_dim=4).fit(items, vectors)
    with pytest.raises(ValueError, match="length_seconds"):
        proj.transform(items.drop("length_seconds"))
