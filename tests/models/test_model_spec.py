"""ModelSpec: a model looked up once (class, kind, grid, capabilities); capabilities are
declared on the classes, not probed."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.models.base import Model, Recommender
from streamrec.models.capabilities import CAPABILITIES, Capabilities, ItemVectors
from streamrec.models.zoo import ModelSpec, available, create, get_class, register, spec

ALL = [(kind, name) for kind in ("ranking", "ctr") for name in available(kind)]


def test_spec_holds_the_class_kind_grid_and_capabilities():
    s = spec("two_tower")
    assert (s.name, s.kind, s.cls) == ("two_tower", "ranking", get_class("two_tower"))
    assert dict(s.search_space) == get_class("two_tower").search_space
    assert s.uses_side_features and s.item_vectors and s.stochastic
    assert not (s.scores_sessions or s.has_attention or s.uses_item_categories)
    assert spec("lstm_attention").has_attention and spec("lstm_attention").scores_sessions
    assert spec("pop").scores_sessions and not spec("pop").stochastic
    assert spec("pop_last_category").uses_item_categories
    assert spec("din", "ctr").requires_history and spec("din").kind == "ctr"
    assert spec("mlp").kind == "ranking" and spec("mlp", "ctr").kind == "ctr"
    with pytest.raises(TypeError):  # read-only grid
        s.search_space["factors"] = [1]  # type: ignore[index]


def test_spec_creates_and_names_the_model_in_errors():
    assert spec("ease").create(lam=3.0).get_params() == {"lam": 3.0, "binary": True}
    with pytest.raises(TypeError, match="^ease: "):
        spec("ease").create(lamb=3.0)
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        spec("nope")


def test_fit_kwargs_gives_only_the_inputs_a_model_takes():
    side, cats = object(), np.arange(3)
    assert spec("two_tower").fit_kwargs(side=side, item_categories=cats) == {"side": side}
    assert spec("two_tower").fit_kwargs(item_categories=cats) == {}
    assert spec("pop_last_category").fit_kwargs(side=side, item_categories=cats) == {
        "item_categories": cats}
    assert spec("ease").fit_kwargs(side=side, item_categories=cats) == {}


@pytest.mark.parametrize(("kind", "name"), ALL)
def test_declared_capabilities_match_the_methods(kind, name):
    cls = get_class(name, kind)
    s = spec(name, kind)
    assert s.scores_sessions == hasattr(cls, "score_sequences")
    assert s.has_attention == hasattr(cls, "attention")
    assert s.item_vectors == hasattr(cls, "item_vectors")
    assert s.uses_side_features == ("side" in __import__("inspect").signature(cls.fit).parameters)


def test_capability_defaults_live_on_the_base_class():
    assert set(CAPABILITIES) == {"uses_side_features", "uses_item_categories",
                                 "scores_sessions", "has_attention", "requires_history"}
    assert issubclass(Model, Capabilities)
    assert not any(getattr(Recommender, c) for c in CAPABILITIES)
    assert not issubclass(Recommender, ItemVectors)


def test_register_refuses_classes_without_the_capability_flags():
    with pytest.raises(TypeError, match="does not declare"):
        register("not-a-model")(type("NotAModel", (), {}))


def test_spec_of_an_unregistered_class():
    from streamrec.models.popularity import Popularity

    s = ModelSpec.of("", "ranking", Popularity)
    assert s.scores_sessions and s.create().get_params() == {"recency_half_life_days": None}


def test_benchmark_looks_each_model_up_once(monkeypatch, prepared_split):
    import streamrec.eval.benchmark as bm
    from streamrec.data.clean import CleanConfig

    calls: list[str] = []

    def counting(name, kind=None):
        calls.append(name)
        return spec(name, kind)

    monkeypatch.setattr(bm, "model_spec", counting)
    split = prepared_split("synthetic:users=80,items=40,days=6,seed=2", on_bad_rows="quarantine",
                           clean=CleanConfig(keep_events=("play", "like")))[1]
    bm.run_benchmark(split, bm.BenchmarkConfig(models=("pop", "ease"), seeds=1, ks=(10,),
                                               tune=True, max_trials=2),
                     protocol="temporal_user")
    assert calls == ["pop", "ease"]


def test_create_still_returns_a_fresh_model():
    a, b = create("ease"), create("ease")
    assert a is not b and isinstance(a, Recommender)
