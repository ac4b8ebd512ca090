"""The benchmark runner behind ``streamrec benchmark``.

For each model: tune hyperparameters on **valid only** (fit on train, rank valid items with
train items excluded), then fit with the chosen hyperparameters on train once per seed and
evaluate on test with train and valid items excluded (full ranking, as RecBole does on the
same split files). Deterministic models are fitted once. Peers (RecBole) run as separate
processes on the same split files written in RecBole's atomic format.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamrec.data.dataset import Dataset
from streamrec.data.interactions import Interactions
from streamrec.data.splits import Split
from streamrec.eval.protocol import EvalResult, evaluate, evaluate_next_item
from streamrec.models.zoo import ModelSpec, create
from streamrec.models.zoo import spec as model_spec

if TYPE_CHECKING:
    from streamrec.features.side import SideFeatures

#: names of StreamRec models and their RecBole counterparts (for ``--peers recbole``)
RECBOLE_MODELS = {"pop": "Pop", "itemknn": "ItemKNN", "ease": "EASE", "bpr": "BPR",
                  "bprmf": "BPR", "multvae": "MultiVAE", "multdae": "MultiDAE", "cdae": "CDAE",
                  "neumf": "NeuMF", "sasrec": "SASRec", "gru4rec": "GRU4Rec"}
DEFAULT_PEERS_VENV = Path.home() / ".cache" / "streamrec-peers"
#: protocols whose valid/test parts are whole sessions of users unseen in train: every
#: prefix predicts the next item (:func:`~streamrec.eval.protocol.evaluate_next_item`)
SESSION_PROTOCOLS = ("case_study", "session_temporal")
#: protocols where a sequence model's test history is train + valid (the SASRec convention:
#: the valid item is the one just before the test item). Elsewhere every model, sequence or
#: not, ranks the test items from the same train data, so no model sees the valid events.
VALID_HISTORY_PROTOCOLS = ("leave_last_out",)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to run.

    Attributes
    ----------
    models : tuple of str
        Registry names.
    seeds : int
        Test fits per stochastic model (seeds 0..seeds-1); deterministic models fit once.
    tune : bool
        Search each model's declared ``search_space`` on valid; else its defaults.
    tune_metric : str
        Valid metric to maximise, e.g. ``"ndcg@10"``.
    max_trials : int
        Full grid when it has at most this many points, else this many random points
        (seeded; the defaults are always tried first).
    ks : tuple of int
        Cut-offs of every metric.
    batch_size : int
        Users scored at once by the evaluator (results do not depend on it).
    params : dict
        Fixed hyperparameters per model name, applied on top of defaults / tuning.
    refit : {"train", "train+valid"}
        Data of the test fits after tuning: train only (what RecBole does on the same split
        files: like for like with the peers), or train plus the valid rows of warm users and
        items (more and more recent data; test still excludes train and valid items).
    against : tuple of str
        Reference models (e.g. ``("ease", "ials")``): the report adds paired tests of every
        other model against each of them, besides the tests against the best.
    tune_seeds : int
        Fits per tuning point of a stochastic model (seeds ``0 .. tune_seeds - 1``; the
        point with the best mean valid metric wins).
    grids : dict
        Search grid per model name (``{param: [values, ...]}``) replacing its declared
        ``search_space`` when tuning; ``params`` still override the searched values.
    """

    models: tuple[str, ...]
    seeds: int = 3
    tune: bool = False
    tune_metric: str = "ndcg@10"
    max_trials: int = 24
    ks: tuple[int, ...] = (10, 20)
    batch_size: int = 2048
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    refit: str = "train"
    against: tuple[str, ...] = ()
    tune_seeds: int = 1
    grids: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tune_seeds < 1:
            raise ValueError(f"tune_seeds must be >= 1 (got {self.tune_seeds})")
        for model, grid in self.grids.items():
            if model not in self.models:
                raise ValueError(f"grids names a model not benchmarked: {model}")
            bad = [k for k, v in grid.items() if not isinstance(v, list | tuple) or not v]
            if bad:
                raise ValueError(f"grids[{model!r}]: {', '.join(bad)} must be non-empty lists "
                                 "of values")
        missing = [m for m in self.against if m not in self.models]
        if missing:
            raise ValueError(f"against names models not benchmarked: {', '.join(missing)}")
        if self.refit not in ("train", "train+valid"):
            raise ValueError(f"refit must be 'train' or 'train+valid' (got {self.refit!r})")


@dataclass
class Run:
    """One test evaluation of one fitted model (or one peer result)."""

    model: str
    system: str
    params: dict[str, Any]
    seed: int
    protocol: str
    metrics: dict[str, float]
    fit_seconds: float
    eval_seconds: float = 0.0
    result: EvalResult | None = None
    training: dict[str, Any] | None = None
    refit: str = "train"  # data of the fit: "train" or "train+valid"

    def row(self) -> dict[str, Any]:
        """The results.json row (``training`` only for models with a training history)."""
        row = {"model": self.model, "system": self.system, "params": self.params,
               "seed": self.seed, "protocol": self.protocol, "refit": self.refit,
               "metrics": {k: round(float(v), 6) for k, v in self.metrics.items()},
               "fit_seconds": round(self.fit_seconds, 3),
               "eval_seconds": round(self.eval_seconds, 3)}
        if self.training is not None:
            row["training"] = self.training
        return row


def training_record(model: Any) -> dict[str, Any] | None:
    """A torch model's training history as JSON: epochs, losses and the valid curve.

    ``valid`` holds ``[epoch, valid metric, wall seconds since the start of fit]``; None for
    models without a ``history_``.
    """
    hist = getattr(model, "history_", None)
    if hist is None:
        return None
    return {**hist.summary(),
            "epoch_seconds": [round(s, 3) for s in hist.epoch_seconds],
            "losses": [round(v, 6) for v in hist.losses],
            "valid": [[e, round(v, 6), round(t, 3)]
                      for (e, v), t in zip(hist.valid, hist.valid_seconds, strict=True)]}


@dataclass
class Trial:
    """One tuning point: hyperparameters and the valid metric."""

    model: str
    params: dict[str, Any]
    valid: float
    fit_seconds: float


@dataclass
class BenchmarkResult:
    runs: list[Run]
    trials: list[Trial]
    chosen: dict[str, dict[str, Any]]
    config: BenchmarkConfig
    protocol: str
    data: str
    split_counts: dict[str, int]
    task: str = "ranking"  # or "ctr" (click prediction: rows carry auc, logloss, ap, ece)

    def rows(self) -> list[dict[str, Any]]:
        return [r.row() for r in self.runs]


def search_points(name: str, max_trials: int, rng: np.random.Generator,
                  kind: str | None = None,
                  space: dict[str, list[Any]] | None = None) -> list[dict[str, Any]]:
    """Hyperparameter points for ``name`` (of ``kind``): its defaults first, then the grid
    ``space`` (default: the model's declared ``search_space``), all of it when small enough,
    else a seeded random sample."""
    if space is None:
        space = dict(model_spec(name, kind).search_space)
    points: list[dict[str, Any]] = [{}]
    if not space:
        return points
    keys = sorted(space)
    grid = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(space[k] for k in keys))]
    if len(grid) > max_trials - 1:
        pick = rng.choice(len(grid), size=max(max_trials - 1, 0), replace=False)
        grid = [grid[i] for i in sorted(pick)]
    return points + grid


def _fit(spec: ModelSpec, params: dict[str, Any], train, valid, seed: int,
         side: SideFeatures | None = None, item_categories: np.ndarray | None = None):
    """Fit ``spec``'s model on ``train``, handing ``fit`` the side features and item
    categories when the model declares it uses them."""
    model = spec.create(**params)
    extra = spec.fit_kwargs(side=side, item_categories=item_categories)
    start = time.perf_counter()
    model.fit(train, valid=valid, rng=np.random.default_rng(seed), **extra)
    return model, time.perf_counter() - start


def evaluate_part(model, part: Interactions, split: Split, protocol: str, cfg: BenchmarkConfig,
                  *, exclude: list[Interactions], recent: Interactions | None = None,
                  item_counts: np.ndarray | None = None,
                  item_categories: np.ndarray | None = None) -> EvalResult:
    """Evaluate ``model`` on ``part`` (valid or test) the way ``protocol`` asks.

    Session protocols rank the next item after every prefix of each held-out session;
    the others rank all items for each user (full ranking, ``exclude`` masked). Sequence
    models first append ``recent`` (the valid events when testing a model fitted on train,
    under :data:`VALID_HISTORY_PROTOCOLS`) to the users' histories, as the service would
    from its event stream.
    """
    if protocol in SESSION_PROTOCOLS:
        return evaluate_next_item(model, part, ks=cfg.ks, batch_size=cfg.batch_size)
    if recent is not None and hasattr(model, "update_history"):
        model.update_history(recent)
    return evaluate(model, part, exclude=exclude, ks=cfg.ks, batch_size=cfg.batch_size,
                    item_counts=item_counts, item_categories=item_categories)


def tune_model(name: str, split: Split, cfg: BenchmarkConfig,
               progress: Progress | None = None, side: SideFeatures | None = None,
               item_categories: np.ndarray | None = None, protocol: str = "",
               ) -> tuple[dict[str, Any], list[Trial]]:
    """Pick hyperparameters for ``name`` on valid (fit on train with seed 0, or the mean over
    seeds ``0 .. cfg.tune_seeds - 1`` for stochastic models; ``side``: the split's
    :class:`~streamrec.features.side.SideFeatures` for models that use them)."""
    return _tune(model_spec(name), split, cfg, progress, side, item_categories, protocol)


def _tune(spec: ModelSpec, split: Split, cfg: BenchmarkConfig, progress: Progress | None,
          side: SideFeatures | None, item_categories: np.ndarray | None, protocol: str,
          ) -> tuple[dict[str, Any], list[Trial]]:
    name = spec.name
    fixed = cfg.params.get(name, {})
    space = cfg.grids.get(name, dict(spec.search_space))
    points = (search_points(name, cfg.max_trials, np.random.default_rng(0), space=space)
              if cfg.tune else [{}])
    tune_seeds = range(cfg.tune_seeds if spec.stochastic else 1)
    trials: list[Trial] = []
    for i, point in enumerate(points):
        params = {**point, **fixed}
        if len(points) > 1:
            values, secs = [], 0.0
            for seed in tune_seeds:
                # valid also drives early stopping here, as it does in the test fits
                model, s = _fit(spec, params, split.train, split.valid, seed, side,
                                item_categories)
                res = evaluate_part(model, split.valid, split, protocol, cfg,
                                    exclude=[split.train])
                values.append(float(res.means()[cfg.tune_metric]))
                secs += s
            trials.append(Trial(name, params, float(np.mean(values)), secs))
        if progress is not None:
            progress(f"tuning {name}", i + 1, len(points))
    if not trials:
        return dict(fixed), trials
    best = max(trials, key=lambda t: t.valid)
    return dict(best.params), trials


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` as results.json stores them (tuples become lists)."""
    return json.loads(json.dumps(params))


def reusable_run(done: list[Run], name: str, params: dict[str, Any], seed: int, protocol: str,
                 refit: str, test_users: np.ndarray, kind: str | None = None) -> Run | None:
    """The run of ``done`` that a fresh fit of ``name(**params)`` with ``seed`` would repeat:
    same model, seed, protocol, refit data, every hyperparameter (defaults included) and
    test users. None when there is none (then the fit runs).

    An earlier run's hyperparameters are completed with today's defaults first, so that a
    run recorded before a hyperparameter existed (e.g. a newer trainer setting) still
    matches when the new one is at its default."""
    full = _json_params(create(name, kind, **params).get_params())
    for r in done:  # a handful of earlier runs
        if (r.system == "streamrec" and r.model == name and r.seed == seed
                and r.protocol == protocol and r.refit == refit
                and _completed(name, kind, r.params) == full
                and r.result is not None and np.array_equal(r.result.users, test_users)):
            return r
    return None


def _completed(name: str, kind: str | None, params: dict[str, Any]) -> dict[str, Any] | None:
    """``params`` with every other hyperparameter at its default (None when the model no
    longer takes one of them)."""
    try:
        return _json_params(create(name, kind, **params).get_params())
    except (TypeError, ValueError):
        return None


def run_benchmark(split: Split, cfg: BenchmarkConfig, *, protocol: str, data: str = "",
                  item_categories: np.ndarray | None = None,
                  progress: Progress | None = None,
                  dataset: Dataset | None = None,
                  done: list[Run] | None = None,
                  on_run: Callable[[BenchmarkResult], object] | None = None) -> BenchmarkResult:
    """Tune (optionally), fit over seeds and evaluate every model of ``cfg`` on ``split``.

    ``dataset`` (the one ``split`` was made from) provides the user/item side features of
    models declaring ``uses_side_features`` (e.g. two_tower); without it they use ids only.
    ``done``: test runs of an earlier benchmark (:func:`streamrec.eval.report.load_runs`);
    a fit they already hold (:func:`reusable_run`) is reused instead of repeated, so an
    interrupted benchmark resumes and seeds can be added later. ``on_run`` is called with
    the result so far after every test run (checkpoints).
    """
    specs = {name: model_spec(name) for name in cfg.models}
    side = None
    if dataset is not None and any(s.uses_side_features for s in specs.values()):
        from streamrec.features.side import side_features

        side = side_features(dataset, split)
    runs: list[Run] = []
    trials: list[Trial] = []
    chosen: dict[str, dict[str, Any]] = {}
    item_counts = split.train.item_counts()
    fit_data: Interactions = split.train
    fit_valid: Interactions | None = split.valid
    if cfg.refit == "train+valid":
        fit_data, fit_valid = train_plus_valid(split), None
    test_users = np.unique(split.test.users)
    counts = {k: len(getattr(split, k)) for k in ("train", "valid", "test")}

    def so_far() -> BenchmarkResult:
        return BenchmarkResult(runs, trials, chosen, cfg, protocol, data, counts)

    for name, spec in specs.items():
        params, tr = _tune(spec, split, cfg, progress, side, item_categories, protocol)
        trials += tr
        chosen[name] = params
        seeds = range(cfg.seeds) if spec.stochastic else range(1)
        for seed in seeds:
            earlier = (reusable_run(done, name, params, seed, protocol, cfg.refit, test_users)
                       if done else None)
            if earlier is not None:
                runs.append(earlier)
                if progress is not None:
                    progress(f"reused {name}", seed + 1, len(seeds))
                continue
            model, secs = _fit(spec, params, fit_data, fit_valid, seed, side, item_categories)
            start = time.perf_counter()
            res = evaluate_part(model, split.test, split, protocol, cfg,
                                exclude=[split.train, split.valid],
                                recent=split.valid if (fit_data is split.train and protocol
                                                       in VALID_HISTORY_PROTOCOLS) else None,
                                item_counts=item_counts, item_categories=item_categories)
            runs.append(Run(name, "streamrec", model.get_params(), seed, protocol,
                            res.means(), secs, time.perf_counter() - start, res,
                            training_record(model), cfg.refit))
            if on_run is not None:
                on_run(so_far())
            if progress is not None:
                progress(f"testing {name}", seed + 1, len(seeds))
    return so_far()


def train_plus_valid(split: Split) -> Interactions:
    """Train plus the valid rows whose user and item are known in train (train index space)."""
    v = split.valid
    warm = np.flatnonzero((v.users < split.train.n_users) & (v.items < split.train.n_items))
    both = Interactions.concat([split.train, v.take(warm)])
    return both.with_sizes(split.train.n_users, split.train.n_items)


# ---------------------------------------------------------------------------- peers
def peers_dir() -> Path | None:
    """The folder of RecBole's runner script (``run_recbole.py``): ``$STREAMREC_PEERS_DIR``,
    else a ``shared/peers`` folder next to this source checkout (the team's layout); None
    when neither exists. Looked up when a peer runs, not at import."""
    env = os.environ.get("STREAMREC_PEERS_DIR")
    if env:
        return Path(env)
    beside = Path(__file__).resolve().parents[3].parent / "shared" / "peers"
    return beside if (beside / "run_recbole.py").exists() else None


def peers_python(venv: str | Path | None = None) -> Path | None:
    """The peers venv's python (``$STREAMREC_PEERS_VENV`` or ~/.cache/streamrec-peers)."""
    root = Path(venv) if venv else Path(os.environ.get("STREAMREC_PEERS_VENV")
                                        or DEFAULT_PEERS_VENV)
    py = root / "bin" / "python"
    return py if py.exists() else None


def run_recbole_peer(split_dir: Path, name: str, model: str, protocol: str, *,
                     params: dict[str, Any] | None = None, venv: str | Path | None = None,
                     timeout: float = 3600.0) -> Run:
    """Run RecBole's runner (:func:`peers_dir`) on ``split_dir/name/name.*.inter``.

    Raises
    ------
    FileNotFoundError
        When the peers venv or script is missing (say how to create it).
    RuntimeError
        When RecBole fails (its last lines of stderr are in the message).
    """
    py = peers_python(venv)
    folder = peers_dir()
    script = folder / "run_recbole.py" if folder is not None else None
    if py is None or script is None or not script.exists():
        raise FileNotFoundError(
            f"RecBole peers not found (looked for {py or DEFAULT_PEERS_VENV}/bin/python and "
            f"{script or 'STREAMREC_PEERS_DIR/run_recbole.py'}): set STREAMREC_PEERS_VENV to a "
            "venv with RecBole 1.2 and STREAMREC_PEERS_DIR to the folder of its runner script")
    rb_model = RECBOLE_MODELS.get(model, model)
    split_dir = Path(split_dir).resolve()  # RecBole runs in it: a relative path would nest
    cmd = [str(py), str(script), str(split_dir), name, rb_model]
    if params:
        cmd.append(json.dumps(params))
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                          check=False, cwd=split_dir)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"RecBole {rb_model} failed (exit {proc.returncode}):\n{tail}")
    out = json.loads(lines[-1])
    return Run(model, out.get("system", "recbole"), out.get("params", {}), 0, protocol,
               {k.lower(): float(v) for k, v in out["test"].items()}, float(out["seconds"]))
