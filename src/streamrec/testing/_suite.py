"""What the two conformance suites share: named checks run one at a time or all in order,
on one model fitted once, every failure naming the model and the check."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = ["Suite"]


class Suite(ABC):
    """Named checks of the model built by ``factory``.

    :meth:`check` runs one check (what a parametrised test does); :meth:`run_all` runs every
    check that applies, in :attr:`CHECKS` order, and stops at the first failure. The model
    is fitted once, on first need; a failed fit fails every check that needs it.

    Subclasses set :attr:`CHECKS`, :attr:`WHAT` and :attr:`BASE` and implement the checks'
    methods and :meth:`fit`.
    """

    #: the class every model of the suite must be an instance of
    BASE: ClassVar[type] = object
    #: check name -> the method that runs it, in the order :meth:`run_all` runs them
    CHECKS: ClassVar[dict[str, str]] = {}
    #: the suite's name in failure messages
    WHAT: ClassVar[str] = "conformance"
    #: exceptions a check lets through unchanged (others fail the check)
    PASS_THROUGH: ClassVar[tuple[type[BaseException], ...]] = (AssertionError,)

    def __init__(self, factory: Callable[[], Any], name: str = "") -> None:
        self.factory = factory
        self.name = name
        self.label = name or "model"
        self._fitted: Any = None
        self._fit_error: AssertionError | None = None

    # ------------------------------------------------------------------ reporting
    def fail(self, check: str, detail: str) -> AssertionError:
        return AssertionError(f"{self.label}: {self.WHAT} check '{check}' failed: {detail}")

    def expect(self, ok: bool, check: str, detail: str) -> None:
        if not ok:
            raise self.fail(check, detail)

    def guard(self, check: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn``; an unexpected exception becomes an AssertionError naming ``check``."""
        try:
            return fn()
        except self.PASS_THROUGH:
            raise
        except Exception as exc:  # any crash inside a check fails that check
            raise self.fail(check, f"raised {exc!r}") from exc

    def fresh(self) -> Any:
        """A new model from the factory (the first one names the model in messages)."""
        model = self.factory()
        self.expect(isinstance(model, self.BASE), "factory",
                    f"factory returned {type(model).__name__}, not a {self.BASE.__name__}")
        if self.label == (self.name or "model"):
            self.label = f"{type(model).__name__} ({self.name or model.name or 'unregistered'})"
        return model

    @abstractmethod
    def fit(self, model: Any) -> Any:
        """Fit ``model`` the suite's way (``rng=0``)."""

    def check_fitted_state(self, model: Any) -> None:
        """Checks of a model just fitted (none by default)."""
        return None

    # ------------------------------------------------------------------ running
    def applicable(self) -> list[str]:
        """The checks that apply to this model (default: all of :attr:`CHECKS`)."""
        return list(self.CHECKS)

    def check(self, name: str) -> None:
        """Run the check ``name``; AssertionError when it fails."""
        if name not in self.CHECKS:
            raise KeyError(f"unknown check {name!r}; the checks are {', '.join(self.CHECKS)}")
        self.guard(name, getattr(self, self.CHECKS[name]))

    def run_all(self) -> None:
        """Every applicable check in order; stops at the first failure."""
        for name in self.applicable():
            self.check(name)

    @property
    def fitted(self) -> Any:
        """The model fitted by :meth:`_fit_model` (once; a failed fit is raised again)."""
        if self._fit_error is not None:
            raise self._fit_error
        if self._fitted is None:
            try:
                self._fitted = self._fit_model()
            except AssertionError as exc:
                self._fit_error = exc
                raise
        return self._fitted

    def _fit_model(self) -> Any:
        model = self.fresh()
        fitted = self.guard("fit", lambda: self.fit(model))
        self.expect(fitted is model, "fit returns self",
                    f"fit returned {type(fitted).__name__}, not the model itself")
        self.check_fitted_state(model)
        return model
