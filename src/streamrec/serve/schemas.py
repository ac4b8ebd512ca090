"""Request and response bodies of the HTTP API (pydantic: the service boundary)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamrec.serve.features import EVENT_TYPES

__all__ = [
    "AddItemsRequest",
    "ErrorBody",
    "ErrorItem",
    "Health",
    "ItemsAdded",
    "PromoteResult",
    "ReadyStatus",
    "ReloadResult",
    "EventIn",
    "EventsAccepted",
    "EventsRequest",
    "QueuedEvent",
    "PromoteRequest",
    "RecItem",
    "UserRecommendations",
    "ScoredItem",
    "SessionRequest",
    "SessionResponse",
    "SimilarItems",
]

# strict: "12" and true are refused, never coerced into ids or times
ID = Field(ge=0, le=2**62, strict=True, description="non-negative integer id")
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    # strict strings too: a number is not silently turned into a title or an event id
    model_config = ConfigDict(extra="forbid", strict=True)


class EventIn(_Strict):
    """One engagement event."""

    event_id: str = Field(min_length=1, max_length=128,
                          description="idempotency key: an event sent twice is applied once")
    user_id: int = ID
    item_id: int = ID
    event: EventType = Field(description=f"one of {', '.join(EVENT_TYPES)}")
    timestamp: int | None = Field(
        None, ge=0, le=2**40, strict=True,
        description="unix seconds (default: the server's clock); at most max_future_s "
                    "(default 300) after the server's clock")
    session_id: int | None = Field(None, ge=0, le=2**62, strict=True)
    value: float | None = Field(None, ge=0, le=1e6, allow_inf_nan=False, strict=True,
                                description="completion ratio of a play / progress")
    platform: str | None = Field(None, max_length=32, strict=True)


class QueuedEvent(EventIn):
    """An event as ``POST /v1/events`` puts it on the queue: the time filled in, and when
    the service received it (the consumer checks events from other producers with it)."""

    timestamp: int = Field(ge=0, le=2**40, strict=True)
    received_at: int | None = Field(None, ge=0, le=2**40, strict=True,
                                    description="the service clock when it was received")


class EventsRequest(_Strict):
    events: list[EventIn] = Field(min_length=1, description="a batch of events")


class EventsAccepted(BaseModel):
    accepted: int = Field(description="events appended to the durable queue")
    duplicates: int = Field(description="events whose event_id was already received")


class RecItem(BaseModel):
    item_id: int
    score: float = Field(description="the final order's score: the click probability's "
                               "percentile blended with the retrieval score's (settings.blend)")
    p_click: float = Field(description="the ranker's click probability")
    source: str = Field(description="retrieval source: ann, covisit, popular, new, onboarding")
    stage: str = Field(description="ranked (by the ranker) or explore (an exploration slot)")


class UserRecommendations(BaseModel):
    user_id: int
    items: list[RecItem]
    cold_start: bool = Field(description="the user had no vector and no history")
    versions: dict[str, str] = Field(description="registry version of each model used")
    timings_ms: dict[str, float]


class ScoredItem(BaseModel):
    item_id: int
    score: float


class SimilarItems(BaseModel):
    item_id: int
    items: list[ScoredItem]
    versions: dict[str, str]


class SessionRequest(_Strict):
    items: list[Annotated[int, Field(ge=0, le=2**62, strict=True)]] | None = Field(
        None, max_length=200, description="the session's items so far, oldest first "
                                          "(default: the events received for this session)")
    k: int = Field(10, ge=1, le=1000, strict=True)


class SessionResponse(BaseModel):
    session_id: int
    items: list[ScoredItem]
    source: str = Field(description="session (the sequence model) or popular (empty session)")
    session_length: int
    versions: dict[str, str]


class NewItem(_Strict):
    item_id: int = ID
    title: str = Field("", max_length=500)
    description: str = Field("", max_length=5000)
    category: str | None = Field(None, max_length=64)
    creator_id: int | None = Field(None, ge=0, le=2**62, strict=True)
    length_seconds: int | None = Field(None, ge=0, le=10**7, strict=True)
    release_ts: int | None = Field(None, ge=0, le=2**40, strict=True)


class AddItemsRequest(_Strict):
    items: list[NewItem] = Field(min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _distinct_ids(self) -> AddItemsRequest:
        ids = [i.item_id for i in self.items]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:10]
            raise ValueError(f"item_id(s) {dup} appear more than once in the batch")
        return self


class PromoteRequest(_Strict):
    """Point ``alias`` at ``version`` of ``name`` once it verifies and loads."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    version: str = Field(min_length=2, max_length=16, pattern=r"^v[1-9][0-9]*$",
                         description="v1, v2, ...")
    alias: str = Field("production", min_length=1, max_length=64,
                       pattern=r"^[a-z][a-z0-9_-]*$")

    @model_validator(mode="after")
    def _alias_is_a_name(self) -> PromoteRequest:
        if self.alias == "latest" or re.fullmatch(r"v[1-9][0-9]*", self.alias):
            raise ValueError(f"alias {self.alias!r} reads as a version reference; use a name "
                             "such as production, staging or canary")
        return self


# ---------------------------------------------------------------------------- errors
class ErrorItem(BaseModel):
    """One failed check of a request (422)."""

    loc: list[str | int] = Field(description="where: body/query/path, then field names and "
                                             "list positions, e.g. ['body', 'events', 3, "
                                             "'timestamp']")
    msg: str
    type: str = Field(description="pydantic's error type, e.g. int_type, less_than_equal")


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer of the service has this body."""

    detail: str = Field(description="what went wrong and what to do, one line")
    errors: list[ErrorItem] | None = Field(
        None, description="each failed check of a 422 (absent on other statuses)")


# ---------------------------------------------------------------------------- ops and admin
class Health(BaseModel):
    status: Literal["ok"]


class ReadyStatus(BaseModel):
    """``/readyz``: ready means the models are loaded and every acknowledged event is being
    applied (the consumer is running, its last batch did not fail, the lag is in bound)."""

    ready: bool
    reason: str | None = Field(None, description="why not ready")
    versions: dict[str, str] | None = None
    queue_lag: int | None = Field(None, description="events acknowledged, not yet applied")
    consumer_error: str | None = Field(None, description="the failure the consumer is "
                                                         "retrying, if any")
    consumer_failures: int | None = Field(None, description="failed batch attempts since "
                                                            "start-up")
    failing_since: float | None = Field(None, description="unix time of the first failure "
                                                          "of the batch being retried")
    reload_error: str | None = Field(None, description="why the registry's current versions "
                                                       "are not served (the last good set is)")
    quarantined: int | None = Field(None, description="events set aside since start-up "
                                                      "(outside the time window, invalid)")
    now: int | None = Field(None, description="the service clock (unix s)")


class ReloadResult(BaseModel):
    swapped: bool
    versions: dict[str, str] | None = None
    previous_versions: dict[str, str] | None = None


class PromoteResult(ReloadResult):
    previous: str | None = Field(description="the version the alias pointed at before")


class ItemsAdded(BaseModel):
    added: int
    items: list[int]
    seconds: float
