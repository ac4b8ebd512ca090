"""Trainer settings: one TrainConfig shared by every torch model, reachable as flat
hyperparameters (create, get_params, manifests, search grids)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from streamrec.models.base import Model
from streamrec.models.neural.settings import TrainSettingsMixin, train_setting_names
from streamrec.models.neural.trainer import TrainConfig
from streamrec.models.zoo import available, create, get_class

TORCH = [(kind, name) for kind in ("ranking", "ctr") for name in available(kind)
         if issubclass(get_class(name, kind), TrainSettingsMixin)]


def test_every_torch_model_is_found():
    # 12 ranking / sequence models and 8 click models train through the Trainer
    assert len([k for k, _ in TORCH if k == "ranking"]) == 12
    assert len([k for k, _ in TORCH if k == "ctr"]) == 8


@pytest.mark.parametrize(("kind", "name"), TORCH)
def test_every_setting_is_a_flat_hyperparameter(kind, name):
    model = create(name, kind)
    params = model.get_params()
    cfg = dataclasses.asdict(model.train_config)
    assert set(train_setting_names()) <= set(params)
    assert {k: params[k] for k in cfg} == cfg
    # every setting can be set by its flat name, like a --params JSON object does
    changed = create(name, kind, lr=0.0123, schedule="cosine", warmup_epochs=0.5)
    assert (changed.train_config.lr, changed.train_config.schedule,
            changed.train_config.warmup_epochs) == (0.0123, "cosine", 0.5)


@pytest.mark.parametrize(("kind", "name"), TORCH)
def test_params_round_trip_through_a_manifest(kind, name):
    model = create(name, kind, epochs=3, clip_norm=1.5, min_delta=0.001)
    stored = json.loads(json.dumps(model.get_params(), default=list))  # as manifest.json
    again = get_class(name, kind)(**{k: tuple(v) if isinstance(v, list) else v
                                     for k, v in stored.items()})
    assert again.train_config == model.train_config
    assert json.loads(json.dumps(again.get_params(), default=list)) == stored


def test_unknown_setting_is_a_type_error_naming_the_model_and_the_valid_ones():
    with pytest.raises(TypeError) as err:
        create("bprmf", learning_rate=0.1)
    msg = str(err.value)
    assert "BPRMF" in msg and "learning_rate" in msg
    assert "factors" in msg and all(f in msg for f in train_setting_names())
    with pytest.raises(TypeError, match="MLPClassifier.*epoch"):
        create("mlp", kind="ctr", epoch=3)


def test_setting_values_are_validated_when_the_model_is_created():
    with pytest.raises(ValueError, match="schedule"):
        create("sasrec", schedule="linear")


def test_per_class_defaults_are_declared_once_and_merged_down():
    assert create("sasrec").train_config.clip_norm == 5.0  # the sequence models' default
    assert create("sasrec").train_config.epochs == 200  # SASRec's own
    assert create("gru4rec").train_config.epochs == 100  # TrainConfig's
    assert create("mlp", kind="ctr").train_config.amp == "off"  # click models: float32
    assert create("mf", kind="ctr").train_config.batch_size == 1024
    assert create("bprmf").train_config.clip_norm is None


def test_train_defaults_naming_an_unknown_setting_fail_at_class_creation():
    with pytest.raises(TypeError, match="train_defaults.*epoch"):
        type("Bad", (TrainSettingsMixin,), {"train_defaults": {"epoch": 3}})


def test_search_grids_and_params_use_the_flat_names():
    from streamrec.eval.benchmark import search_points

    points = search_points("bprmf", 50, __import__("numpy").random.default_rng(0))
    assert any("lr" in p for p in points)
    for p in points:
        assert create("bprmf", **p).train_config.lr == p.get("lr", 1e-3)


def test_neumf_pretraining_shares_the_trainer_settings_but_lr_and_optimizer():
    m = create("neumf", pretrain_lr=0.01, lr=0.002, optimizer="sgd", epochs=7,
               schedule="step", patience=2)
    gmf, mlp = m._branch_models()
    for branch in (gmf, mlp):
        assert dataclasses.replace(branch.train_config, lr=0.002, optimizer="sgd") == \
            m.train_config
        assert (branch.train_config.lr, branch.train_config.optimizer) == (0.01, "adam")
    assert mlp.layers == m.layers and gmf.factors == m.factors


class _Plain(Model):
    def __init__(self, a: int = 1, *args: Any, b: str = "x", **kwargs: Any) -> None:
        self._set_params(locals())

    def _check_fitted(self) -> None: ...

    def _get_state(self): return {}

    def _set_state(self, state): ...


class _Child(_Plain):
    def __init__(self, c: float = 0.5, **kwargs: Any) -> None:
        self._set_params(locals())
        super().__init__(**kwargs)


def test_get_params_skips_variadic_parameters_and_follows_forwarded_kwargs():
    assert _Plain().get_params() == {"a": 1, "b": "x"}
    assert _Child(c=2.0, a=3).get_params() == {"c": 2.0, "a": 3, "b": "x"}
    assert _Child.param_names() == ("c", "a", "b")


def test_train_config_is_the_one_settings_dataclass():
    assert train_setting_names() == tuple(f.name for f in dataclasses.fields(TrainConfig))


# ---------------------------------------------------------------------------- min_delta
def test_min_delta_reaches_the_train_config_of_ranking_and_click_models():
    assert create("mlp", kind="ctr", min_delta=0.01).train_config.min_delta == 0.01
    assert create("bprmf", min_delta=0.01).train_config.min_delta == 0.01
    assert create("bprmf").train_config.min_delta == 0.0


def _spy_trainer(monkeypatch) -> list[TrainConfig]:
    """Record the config of every Trainer.fit call."""
    from streamrec.models.neural import trainer as trainer_mod

    seen: list[TrainConfig] = []
    real = trainer_mod.Trainer.fit

    def fit(self, *args, **kwargs):
        seen.append(self.config)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(trainer_mod.Trainer, "fit", fit)
    return seen


def test_min_delta_flows_from_benchmark_params_to_the_trainer(monkeypatch, prepared_split):
    """The CLI hands ``--params '{"bprmf": {"min_delta": 0.01}}'`` to BenchmarkConfig.params,
    which run_benchmark passes to create."""
    from streamrec.data.clean import CleanConfig
    from streamrec.eval.benchmark import BenchmarkConfig, run_benchmark

    seen = _spy_trainer(monkeypatch)
    split = prepared_split("synthetic:users=120,items=60,days=8,seed=3", on_bad_rows="quarantine",
                           clean=CleanConfig(keep_events=("play", "like")))[1]
    params = {"bprmf": {"min_delta": 0.01, "epochs": 2, "factors": 4}}
    res = run_benchmark(split, BenchmarkConfig(models=("bprmf",), seeds=1, ks=(10,),
                                               params=params), protocol="temporal_user")
    assert res.runs[0].params["min_delta"] == 0.01
    assert [c.min_delta for c in seen] == [0.01]


def test_min_delta_flows_from_ctr_benchmark_params_to_the_trainer(monkeypatch):
    from streamrec.eval.benchmark import BenchmarkConfig
    from streamrec.eval.ctr import run_ctr_benchmark
    from streamrec.testing.ctr_conformance import tiny_ctr_data

    seen = _spy_trainer(monkeypatch)
    cfg = BenchmarkConfig(models=("mlp",), seeds=1,
                          params={"mlp": {"min_delta": 0.01, "epochs": 2, "hidden": (8,)}})
    res = run_ctr_benchmark(tiny_ctr_data(), cfg, protocol="random")
    assert res.runs[0].params["min_delta"] == 0.01
    assert [c.min_delta for c in seen] == [0.01]
