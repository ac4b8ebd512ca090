"""Click prediction in the benchmark runner: data, splits, metrics and the run loop.

``streamrec benchmark`` takes this path when its models are click models (``--task ctr``, or
automatically for ``--data synthetic-clicks`` and for models that exist only as click
models, e.g. ``logistic,deepfm``). Data per SPEC:

- ``synthetic-clicks[:n=..,seed=..]``: the case study's generator
  (:func:`streamrec.data.synthetic.clicks.generate_clicks`, 20,000 samples, seed 42), with the
  generator's true probability, so the report adds an ``oracle`` row;
- ``recbole:DIR`` / ``movielens:DIR``: MovieLens as CTR — every rating is an impression,
  rating ≥ 4 a click; user and item ids, the users' and items' side columns (categorical
  codes, bucketed and standardised numbers, genres as 0/1 columns) as features
  (:func:`movielens_ctr`), plus count and taste-profile features from the train rows only
  (:func:`add_train_profiles`);
- ``synthetic[:users=..,items=..,days=..]``: the StreamRec world's impressions, labelled by
  clicks, with the 20 point-in-time StreamRec features, the candidate item, the hashed user
  and the user's last 20 clicked items (for DIN); 80/10/10.

Protocols: ``random`` (rows shuffled with seed 42, 70/15/15 for train/valid/test; 80/10/10 on
MovieLens, as RecBole's context-aware quick start) and ``temporal`` (oldest rows train,
newest test; needs timestamps). Metrics on test: AUC, LogLoss, AP and the expected
calibration error; the report compares models with DeLong's test of correlated AUCs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from streamrec.data.ctr import (
    CTRData,
    CTRSplit,
    FeatureSchema,
    random_split,
    split_indices,
    temporal_split,
)
from streamrec.eval.protocol import EvalResult
from streamrec.metrics import auc, average_precision_score, calibration, log_loss
from streamrec.models.zoo import ModelSpec, available
from streamrec.models.zoo import spec as model_spec

__all__ = ["CTR_METRICS", "CTR_PROTOCOLS", "ctr_metrics", "ctr_split", "is_ctr_task",
           "add_train_profiles", "load_ctr_split", "movielens_ctr", "run_ctr_benchmark"]

CTR_PROTOCOLS = ("random", "temporal")
CTR_METRICS = ("auc", "logloss", "ap", "ece")
#: the system name of the generator's true click probability (the oracle row)
ORACLE_MODEL = "oracle"


def is_ctr_task(data: str, models: tuple[str, ...]) -> bool:
    """Whether ``benchmark`` should treat ``models`` on ``data`` as click prediction: the
    data is ``synthetic-clicks``, or some model exists only as a click model."""
    from streamrec.data.spec import parse_spec

    if parse_spec(data).kind == "synthetic-clicks":
        return True
    ranking = set(available())
    return any(m in available("ctr") and m not in ranking for m in models)


def ctr_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """AUC, LogLoss, AP and ECE (10 equal-width bins) of probabilities ``probs``."""
    return {"auc": auc(labels, probs), "logloss": log_loss(labels, probs),
            "ap": average_precision_score(labels, probs),
            "ece": calibration(labels, probs).ece}


# ---------------------------------------------------------------------------- data
def load_ctr_split(data: str, protocol: str, *,
                   progress: Callable[[int, int], None] | None = None) -> CTRSplit:
    """The train/valid/test impressions a data SPEC names (see the module docstring).

    ``synthetic[:users=..]`` builds the StreamRec world's impressions with the 20 features
    (:func:`streamrec.features.streamrec.streamrec_impressions`), splits the rows, then fits
    the encoders on the train rows only and applies them unchanged to valid and test.
    """
    from streamrec.data.spec import (
        SpecError,
        click_config_from_options,
        parse_spec,
        world_config_from_options,
    )

    if protocol not in CTR_PROTOCOLS:
        raise ValueError(f"click prediction protocols are {CTR_PROTOCOLS}, got {protocol!r}")
    spec = parse_spec(data)
    if spec.kind == "synthetic-clicks":
        from streamrec.data.synthetic.clicks import generate_clicks

        return ctr_split(generate_clicks(click_config_from_options(spec.options)), protocol)
    if spec.kind in ("recbole", "movielens"):
        from streamrec.data.pipeline import prepare

        sp = ctr_split(movielens_ctr(prepare(data).dataset), protocol, ratios=(0.8, 0.1, 0.1))
        return add_train_profiles(sp)
    if spec.kind == "synthetic":
        from streamrec.data.synthetic.world import generate_world
        from streamrec.features.streamrec import streamrec_encoder, streamrec_impressions

        world = generate_world(world_config_from_options(spec.options), progress=progress)
        frame = streamrec_impressions(world)
        if protocol == "temporal":  # oldest 80% train, then valid, newest 10% test
            frame = frame.sort("timestamp", maintain_order=True)
            cuts = np.round(np.array([0.8, 0.9]) * frame.height).astype(int)
            idx = np.split(np.arange(frame.height), cuts)
        else:
            idx = split_indices(frame.height, (0.8, 0.1, 0.1), 42)
        parts = [frame[i] for i in idx]
        encoder = streamrec_encoder(parts[0])  # fitted on train rows only
        return CTRSplit(*(encoder.transform(part) for part in parts))
    raise SpecError(f"click prediction reads synthetic-clicks, synthetic (StreamRec "
                    f"impressions), recbole:DIR or movielens:DIR data, not {spec.kind!r}")


def movielens_ctr(dataset: Any, threshold: float = 4.0) -> CTRData:
    """Ratings as impressions: label ``rating >= threshold``; fields user id, item id, the
    side tables' categorical and bucket codes, standardised numbers and genre indicators.

    Id codes are index + 1 (0 = unknown); :func:`ctr_split` maps ids absent from train to 0.
    """
    from streamrec.data.dataset import ITEM, USER
    from streamrec.features.side import EntityFeatures, FeatureEncoder

    inter = dataset.interactions
    if inter.values is None:
        raise ValueError("MovieLens as CTR needs ratings (the interactions have no values)")
    u, i = inter.users.astype(np.int64), inter.items.astype(np.int64)
    dense, dnames = [], []
    cats, cnames, cards = [u + 1, i + 1], ["user_id", "item_id"], [
        len(dataset.user_vocab) + 1, len(dataset.item_vocab) + 1]
    for table, key, rows, prefix in ((dataset.users, USER, u, "user"),
                                     (dataset.items, ITEM, i, "item")):
        if table is None or table.width <= 1:
            continue
        ent: EntityFeatures = FeatureEncoder.fit(table, key=key).transform(table)
        codes = ent.categorical if ent.categorical is not None else np.zeros((table.height, 0))
        for j, name in enumerate(ent.cat_names):
            cats.append(codes[rows, j])
            cnames.append(f"{prefix}_{name}")
            cards.append(ent.cardinalities[j])
        for block, names in ((ent.numeric, ent.num_names), (ent.multi_hot, ent.multi_names)):
            if block is not None and block.shape[1]:
                dense.append(block[rows])
                dnames += [f"{prefix}_{n}" for n in names]
    schema = FeatureSchema(tuple(dnames), tuple(cnames), tuple(cards))
    d = np.concatenate(dense, axis=1) if dense else np.zeros((len(u), 0), np.float32)
    return CTRData(schema, d, np.stack(cats, axis=1),
                   labels=(inter.values >= threshold).astype(np.float32),
                   timestamps=inter.timestamps, groups=u)


def add_train_profiles(split: CTRSplit) -> CTRSplit:
    """Append count and taste features computed from the train rows only to every part.

    Per row: ``user_count`` and ``item_count`` (log1p of the user's / item's train rows) and,
    for every 0/1 item column ``item_<col>=<token>`` (genres), ``user_share_<token>``: the
    share of the user's train rows whose item has that token (the user's taste profile; no
    labels are used). Standardised with the train rows' mean and std. Users or items absent
    from train (code 0) get the profile of code 0, empty: counts 0, shares 0.
    """
    s = split.train.schema
    if "user_id" not in s.categorical or "item_id" not in s.categorical:
        return split
    uc, ic = s.categorical.index("user_id"), s.categorical.index("item_id")
    tokens = [j for j, n in enumerate(s.dense) if n.startswith("item_") and "=" in n]
    tr = split.train
    u, i = tr.categorical[:, uc], tr.categorical[:, ic]
    u_count = np.bincount(u, minlength=s.cardinalities[uc]).astype(np.float64)
    i_count = np.bincount(i, minlength=s.cardinalities[ic]).astype(np.float64)
    u_count[0] = i_count[0] = 0.0  # unknown ids carry no history
    share = np.zeros((s.cardinalities[uc], len(tokens)))
    np.add.at(share, u, tr.dense[:, tokens].astype(np.float64))
    share[0] = 0.0
    share /= np.maximum(u_count, 1.0)[:, None]

    def raw(part: CTRData) -> np.ndarray:
        pu, pi = part.categorical[:, uc], part.categorical[:, ic]
        return np.concatenate([np.log1p(u_count[pu])[:, None], np.log1p(i_count[pi])[:, None],
                               share[pu]], axis=1)  # (N, 2 + T)

    base = raw(tr)
    mean, std = base.mean(axis=0), base.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    names = ("user_count", "item_count",
             *(f"user_share_{s.dense[j].split('=', 1)[1]}" for j in tokens))
    schema = FeatureSchema(s.dense + names, s.categorical, s.cardinalities, s.n_history_items,
                           s.item_field)
    out = []
    for part in split:
        extra = ((raw(part) - mean) / std).astype(np.float32)
        out.append(CTRData(schema, np.concatenate([part.dense, extra], axis=1),
                           part.categorical, part.labels, part.history, part.timestamps,
                           part.groups, part.truth))
    return CTRSplit(*out)


def ctr_split(data: CTRData, protocol: str, *, seed: int = 42,
              ratios: tuple[float, float, float] | None = None) -> CTRSplit:
    """Split impressions by ``protocol`` (``random`` or ``temporal``); id fields
    (``user_id``, ``item_id``) of valid/test rows whose id never occurs in train become 0."""
    if protocol not in CTR_PROTOCOLS:
        raise ValueError(f"click prediction protocols are {CTR_PROTOCOLS}, got {protocol!r}")
    r = ratios or (0.7, 0.15, 0.15)
    sp = random_split(data, r, seed) if protocol == "random" else temporal_split(data, r)
    ids = [j for j, n in enumerate(data.schema.categorical) if n in ("user_id", "item_id")]
    if not ids:
        return sp
    out = [sp.train]
    for part in (sp.valid, sp.test):
        cat = part.categorical.copy()
        for j in ids:
            seen = np.zeros(data.schema.cardinalities[j], bool)
            seen[sp.train.categorical[:, j]] = True
            cat[:, j] = np.where(seen[cat[:, j]], cat[:, j], 0)
        out.append(CTRData(part.schema, part.dense, cat, part.labels, part.history,
                           part.timestamps, part.groups, part.truth))
    return CTRSplit(*out)


# ---------------------------------------------------------------------------- runs
def _ctr_fit(spec: ModelSpec, params: dict[str, Any], split: CTRSplit, seed: int):
    model = spec.create(**params)
    start = time.perf_counter()
    model.fit(split.train, valid=split.valid, rng=np.random.default_rng(seed))
    return model, time.perf_counter() - start


def _ctr_tune(spec: ModelSpec, split: CTRSplit, cfg, progress) -> tuple[dict[str, Any], list]:
    """Best point of the model's declared grid by valid AUC (defaults first; the mean over
    seeds ``0 .. cfg.tune_seeds - 1`` for stochastic models); fixed ``cfg.params`` always
    apply."""
    from streamrec.eval.benchmark import Trial, search_points

    name = spec.name
    fixed = cfg.params.get(name, {})
    if not cfg.tune:
        return dict(fixed), []
    points = search_points(name, cfg.max_trials, np.random.default_rng(0), kind="ctr",
                           space=cfg.grids.get(name, dict(spec.search_space)))
    trials = []
    for j, point in enumerate(points):
        params = {**point, **fixed}
        values, secs = [], 0.0
        for seed in range(cfg.tune_seeds if spec.stochastic else 1):
            model, s = _ctr_fit(spec, params, split, seed)
            values.append(float(auc(split.valid.require_labels("tuning"),
                                    model.predict_proba(split.valid))))
            secs += s
        trials.append(Trial(name, params, float(np.mean(values)), secs))
        if progress is not None:
            progress(f"tuning {name}", j + 1, len(points))
    best = max(trials, key=lambda t: t.valid)
    return dict(best.params), trials


def ctr_result(labels: np.ndarray, probs: np.ndarray) -> EvalResult:
    """Per-example arrays of a CTR run: ``prob`` and ``label`` (rows = test impressions)."""
    return EvalResult(np.arange(len(labels), dtype=np.int64),
                      {"prob": probs.astype(np.float64), "label": labels.astype(np.float64)})


def run_ctr_benchmark(split: CTRSplit, cfg, *, protocol: str, data: str = "",
                      progress: Callable[[str, int, int], None] | None = None,
                      done: list | None = None,
                      on_run: Callable[[Any], object] | None = None):
    """Tune (optionally) on valid AUC, fit every model of ``cfg`` over seeds and evaluate on
    test; the same result type as the ranking runner (rows carry ``auc``, ``logloss``,
    ``ap``, ``ece``), plus an ``oracle`` run when the data has the true probabilities."""
    from streamrec.eval.benchmark import BenchmarkResult, Run, reusable_run, training_record

    labels = split.test.require_labels("test")
    runs: list[Run] = []
    trials: list = []
    chosen: dict[str, dict[str, Any]] = {}
    counts = {"train": len(split.train), "valid": len(split.valid), "test": len(split.test)}
    rows = np.arange(len(split.test), dtype=np.int64)

    def so_far() -> BenchmarkResult:
        return BenchmarkResult(runs, trials, chosen, cfg, protocol, data, counts, task="ctr")

    for name in cfg.models:
        spec = model_spec(name, "ctr")
        params, tr = _ctr_tune(spec, split, cfg, progress)
        trials += tr
        chosen[name] = params
        seeds = range(cfg.seeds) if spec.stochastic else range(1)
        for seed in seeds:
            earlier = (reusable_run(done, name, params, seed, protocol, cfg.refit, rows,
                                    kind="ctr") if done else None)
            if earlier is not None:
                runs.append(earlier)
                continue
            model, secs = _ctr_fit(spec, params, split, seed)
            start = time.perf_counter()
            probs = model.predict_proba(split.test)
            runs.append(Run(name, "streamrec", model.get_params(), seed, protocol,
                            ctr_metrics(labels, probs), secs, time.perf_counter() - start,
                            ctr_result(labels, probs), training_record(model), cfg.refit))
            if on_run is not None:
                on_run(so_far())
            if progress is not None:
                progress(f"testing {name}", seed + 1, len(seeds))
    if split.test.truth is not None:
        from streamrec.eval.report import ORACLE_SYSTEM

        p = split.test.truth.astype(np.float64)
        runs.append(Run(ORACLE_MODEL, ORACLE_SYSTEM, {}, 0, protocol, ctr_metrics(labels, p),
                        0.0, 0.0, ctr_result(labels, p)))
    return so_far()
