"""Request and response bodies of the HTTP API (pydantic: the service boundary)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamrec.serve.features import EVENT_TYPES

__all__ = [
    "AddItemsRequest",
    "EventIn",
    "EventsAccepted",
    "EventsRequest",
    "PromoteRequest",
    "RecItem",
    "Recommendations",
    "ScoredItem",
    "SessionRequest",
    "SessionResponse",
    "SimilarItems",
]

ID = Field(ge=0, le=2**62, description="non-negative integer id")
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One engagement event."""

    event_id: str = Field(min_length=1, max_length=128,
                          description="idempotency key: an event sent twice is applied once")
    user_id: int = ID
    item_id: int = ID
    event: EventType = Field(description=f"one of {', '.join(EVENT_TYPES)}")
    timestamp: int | None = Field(None, ge=0, le=2**40,
                                  description="unix seconds (default: the server's clock)")
    session_id: int | None = Field(None, ge=0, le=2**62)
    value: float | None = Field(None, ge=0, le=1e6, allow_inf_nan=False,
                                description="completion ratio of a play / progress")
    platform: str | None = Field(None, max_length=32)


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


class Recommendations(BaseModel):
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
    items: list[Annotated[int, Field(ge=0, le=2**62)]] | None = Field(
        None, max_length=200, description="the session's items so far, oldest first "
                                          "(default: the events received for this session)")
    k: int = Field(10, ge=1, le=1000)


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
    creator_id: int | None = Field(None, ge=0, le=2**62)
    length_seconds: int | None = Field(None, ge=0, le=10**7)
    release_ts: int | None = Field(None, ge=0, le=2**40)


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
    name: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=2, max_length=16)
    alias: str = Field("production", min_length=1, max_length=64)
