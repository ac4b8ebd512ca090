"""One model-agnostic training loop for every torch model (ranking, sequence and click).

A model hands the trainer an ``nn.Module`` with a ``loss(batch) -> Tensor`` method, a function
that yields the batches of one epoch (built by tensor indexing, never a per-example
DataLoader), and optionally a validation callback returning a higher-is-better number. The
trainer owns the optimiser (Adam/AdamW/SGD, weight decay), the learning-rate schedule (linear
warm-up, then constant, step, cosine or reduce-on-plateau), gradient clipping, early stopping
with restore of the best weights, a rich progress bar, mixed precision on CUDA and the seed::

    trainer = Trainer(TrainConfig(epochs=50, lr=1e-3, patience=5))
    with seeded(seed):
        module = MyModule(...)
        history = trainer.fit(module, lambda epoch: batches(epoch), validate=valid_ndcg)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

__all__ = [
    "AMP_MODES",
    "OPTIMIZERS",
    "SCHEDULES",
    "RecModule",
    "TrainConfig",
    "TrainHistory",
    "Trainer",
    "index_batches",
    "resolve_device",
    "seeded",
    "torch_generator",
]

OPTIMIZERS = ("adam", "adamw", "sgd")
AMP_MODES = ("auto", "bf16", "off")
SCHEDULES = ("constant", "step", "cosine", "plateau")

Batch = Any  # a tuple/dict of tensors; only the module's ``loss`` reads it


class RecModule(Protocol):
    """The ``nn.Module`` inside every torch recommender: what the trainer and scoring call."""

    def loss(self, batch: Batch) -> Tensor:
        """Scalar training loss of one batch."""

    def score_all(self, query: Tensor) -> Tensor:
        """Scores of every item for a batch of queries, shape (B, n_items)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Every field is also a flat hyperparameter of every torch model, ranking, sequence and
    click alike (``create("bprmf", min_delta=0.01)``, ``--params '{"mlp": {"lr": 0.01}}'``,
    a manifest's ``"params"``): a field added here needs no other change.

    Attributes
    ----------
    epochs : int
        Maximum passes over the training examples.
    batch_size : int
        Examples per optimiser step (the model decides what an example is).
    lr : float
        Peak learning rate.
    optimizer : {"adam", "adamw", "sgd"}
    weight_decay : float
        L2 penalty (Adam, SGD) or decoupled weight decay (AdamW).
    schedule : {"constant", "step", "cosine", "plateau"}
        After warm-up: keep ``lr``; multiply by ``gamma`` every ``step_size`` epochs; cosine
        decay to 0 over the remaining epochs; or multiply by ``gamma`` after ``step_size``
        validations without improvement (needs a validation callback).
    warmup_epochs : float
        Linear warm-up from 0 to ``lr`` over this many epochs (fractions allowed).
    step_size : int
    gamma : float
    clip_norm : float or None
        Clip the global gradient norm to this value.
    patience : int
        Stop after this many validations without improvement and restore the best weights;
        0 trains every epoch (the best weights are still restored when validating).
    eval_every : int
        Epochs between validations.
    min_delta : float
        Improvement of the validation value needed to count as better (>= 0): with
        ``patience``, stop once the gains stay this small.
    device : str
        ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    amp : {"auto", "bf16", "off"}
        Mixed precision: ``"auto"`` runs bfloat16 autocast on CUDA and float32 on CPU;
        ``"bf16"`` runs bfloat16 autocast on either (on CPU it pays off where the CPU has
        bfloat16 instructions, e.g. AVX512-BF16 or AMX, and for large matrix products);
        ``"off"`` is float32 everywhere. ``True``/``False`` mean ``"auto"``/``"off"``.
    progress : bool
        Show a rich progress bar (epochs, loss, validation metric).
    """

    epochs: int = 100
    batch_size: int = 2048
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.5
    clip_norm: float | None = None
    patience: int = 5
    eval_every: int = 1
    min_delta: float = 0.0
    device: str = "auto"
    amp: str = "auto"
    progress: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):  # the older boolean form
            object.__setattr__(self, "amp", "auto" if self.amp else "off")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("epochs, batch_size and eval_every must be >= 1")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if (self.patience < 0 or self.warmup_epochs < 0 or self.weight_decay < 0
                or self.min_delta < 0):
            raise ValueError("patience, warmup_epochs, weight_decay and min_delta must be >= 0")


@dataclass
class TrainHistory:
    """What happened during :meth:`Trainer.fit`.

    Attributes
    ----------
    losses : list of float
        Mean training loss per epoch.
    valid : list of (epoch, value)
        Validation results (epochs count from 1).
    epoch_seconds : list of float
        Wall time of each epoch's training steps (validation excluded).
    valid_seconds : list of float
        Wall time from the start of ``fit`` to the end of each validation in ``valid``
        (training and validation so far): the x axis of a time-to-quality curve.
    best_epoch : int
        Epoch whose weights the module holds at the end (the last one without validation).
    best_value : float
        Validation value at ``best_epoch`` (NaN without validation).
    stopped_early : bool
    """

    losses: list[float] = field(default_factory=list)
    valid: list[tuple[int, float]] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    valid_seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float = math.nan
    stopped_early: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-friendly digest (for logs and benchmark rows)."""
        secs = self.epoch_seconds
        return {"epochs": len(self.losses), "best_epoch": self.best_epoch,
                "best_value": self.best_value, "stopped_early": self.stopped_early,
                "seconds_per_epoch": sum(secs) / len(secs) if secs else math.nan,
                "final_loss": self.losses[-1] if self.losses else math.nan}


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} asked for but CUDA is not available; "
                           "use device='auto' or 'cpu'")
    return dev


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's RNGs seeded, restoring the previous global state afterwards.

    Parameter initialisation and dropout draw from torch's global generator; forking it keeps
    a fit reproducible for a seed without reseeding anything outside the block.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for permutations and sampling)."""
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def index_batches(n: int, batch_size: int, generator: torch.Generator | None = None,
                  *, shuffle: bool = True) -> list[Tensor]:
    """Index tensors covering ``range(n)`` in batches of ``batch_size`` (last one smaller).

    Models build a batch by indexing their in-memory tensors with these, e.g.
    ``users[idx], items[idx]`` — no per-example Python work.
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return list(torch.split(order, batch_size))


class Trainer:
    """Train a module whose ``loss(batch)`` returns a scalar.

    Parameters
    ----------
    config : TrainConfig
    """

    def __init__(self, config: TrainConfig | None = None) -> None:
        self.config = config or TrainConfig()
        self.device = resolve_device(self.config.device)

    # ------------------------------------------------------------------ pieces
    def _optimizer(self, module: nn.Module) -> torch.optim.Optimizer:
        c = self.config
        params = [p for p in module.parameters() if p.requires_grad]
        # the fused kernels update all parameters in one pass (CPU and CUDA); deterministic
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype == torch.float32
                    for p in params)
        if c.optimizer == "adam":
            return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay, fused=fused)
        return torch.optim.SGD(params, lr=c.lr, weight_decay=c.weight_decay, momentum=0.9)

    def _lr_factor(self, step: int, steps_per_epoch: int, plateau_scale: float) -> float:
        """Multiplier of ``lr`` at optimiser step ``step`` (0-based)."""
        c = self.config
        epoch = step / max(steps_per_epoch, 1)  # fractional epochs done
        warm = c.warmup_epochs
        if warm > 0 and epoch < warm:
            return (step + 1) / (warm * steps_per_epoch)
        if c.schedule == "step":
            return c.gamma ** int((epoch - warm) // c.step_size)
        if c.schedule == "cosine":
            span = max(c.epochs - warm, 1e-9)
            return 0.5 * (1.0 + math.cos(math.pi * min((epoch - warm) / span, 1.0)))
        if c.schedule == "plateau":
            return plateau_scale
        return 1.0

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        amp = self.config.amp
        if amp == "bf16" or (amp == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        module: nn.Module,
        batches: Callable[[int], Iterable[Batch]],
        *,
        validate: Callable[[], float] | None = None,
        to_device: Callable[[Batch, torch.device], Batch] | None = None,
    ) -> TrainHistory:
        """Train ``module`` in place and return the history.

        Parameters
        ----------
        module : nn.Module
            Has ``loss(batch) -> Tensor`` (scalar). Moved to the trainer's device.
        batches : callable
            ``batches(epoch)`` yields the batches of epoch ``epoch`` (0-based); shuffling and
            negative sampling happen there, seeded by the model.
        validate : callable, optional
            Returns a higher-is-better validation number with the module in eval mode and
            gradients off; drives early stopping, ``schedule="plateau"`` and the restored
            best weights.
        to_device : callable, optional
            Moves one batch to the device (default: tensors, tuples/lists/dicts of tensors).
        """
        c = self.config
        module.to(self.device)
        move = to_device or _to_device
        opt = self._optimizer(module)
        run = _RunState(base_lrs=[g["lr"] for g in opt.param_groups])
        hist = TrainHistory()
        bar = _Bar(c.epochs) if c.progress else None
        t_start = time.perf_counter()
        try:
            for epoch in range(c.epochs):
                module.train()
                t0 = time.perf_counter()
                mean_loss = self._train_epoch(module, opt, batches(epoch), move, run, epoch)
                hist.epoch_seconds.append(time.perf_counter() - t0)
                hist.losses.append(mean_loss)
                value = math.nan
                if validate is not None and ((epoch + 1) % c.eval_every == 0
                                             or epoch + 1 == c.epochs):
                    module.eval()
                    with torch.no_grad():
                        value = float(validate())
                    hist.valid.append((epoch + 1, value))
                    hist.valid_seconds.append(time.perf_counter() - t_start)
                    self._record_validation(value, epoch, module, hist, run)
                if bar is not None:
                    bar.update(epoch + 1, hist.losses[-1], value, run.best)
                if c.patience and validate is not None and run.bad >= c.patience:
                    hist.stopped_early = True
                    break
        finally:
            if bar is not None:
                bar.close()
        if run.best_state is not None:
            module.load_state_dict(run.best_state)
        else:
            hist.best_epoch = len(hist.losses)
        module.eval()
        return hist

    def _train_epoch(self, module: nn.Module, opt: torch.optim.Optimizer,
                     epoch_batches: Iterable[Batch], move: Callable[[Batch, torch.device], Batch],
                     run: _RunState, epoch: int) -> float:
        """One pass of optimiser steps over ``epoch_batches``; the mean training loss."""
        c = self.config
        total, count = torch.zeros((), device=self.device), 0
        if run.steps_per_epoch == 0 and hasattr(epoch_batches, "__len__"):
            run.steps_per_epoch = len(epoch_batches)  # type: ignore[arg-type]
        for batch in epoch_batches:
            factor = self._lr_factor(run.step, run.steps_per_epoch or 1, run.plateau_scale)
            for g, lr in zip(opt.param_groups, run.base_lrs, strict=True):
                g["lr"] = lr * factor
            with self._autocast():
                loss = module.loss(move(batch, self.device))
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"training loss became {loss.item()} at epoch {epoch + 1}: lower "
                    "lr, add clip_norm or weight_decay")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if c.clip_norm is not None:
                nn.utils.clip_grad_norm_(module.parameters(), c.clip_norm)
            opt.step()
            total += loss.detach()
            count += 1
            run.step += 1
        # an epoch without a length is counted once it has run
        run.steps_per_epoch = run.steps_per_epoch or count
        return float(total) / max(count, 1)

    def _record_validation(self, value: float, epoch: int, module: nn.Module,
                           hist: TrainHistory, run: _RunState) -> None:
        """Keep the best weights on improvement; else count towards early stopping and the
        plateau schedule."""
        c = self.config
        if value > run.best + c.min_delta:
            run.best, run.bad, run.plateau_bad = value, 0, 0
            hist.best_epoch, hist.best_value = epoch + 1, value
            run.best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return
        run.bad += 1
        run.plateau_bad += 1
        if c.schedule == "plateau" and run.plateau_bad >= c.step_size:
            run.plateau_scale *= c.gamma
            run.plateau_bad = 0


@dataclass
class _RunState:
    """The loop's counters between epochs (one :meth:`Trainer.fit` call)."""

    base_lrs: list[float]
    step: int = 0
    steps_per_epoch: int = 0
    best: float = -math.inf
    bad: int = 0
    plateau_scale: float = 1.0
    plateau_bad: int = 0
    best_state: dict[str, Tensor] | None = None


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True) if batch.device != device else batch
    if isinstance(batch, tuple | list):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


class _Bar:
    """A rich progress bar over epochs showing the loss and the validation metric."""

    def __init__(self, epochs: int) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                                  transient=True)
        self._task = self._progress.add_task("train", total=epochs, info="")
        self._progress.start()

    def update(self, epoch: int, loss: float, value: float, best: float) -> None:
        info = f"loss {loss:.4f}"
        if not math.isnan(value):
            info += f"  valid {value:.4f}  best {best:.4f}"
        self._progress.update(self._task, completed=epoch, info=info)

    def close(self) -> None:
        self._progress.stop()
