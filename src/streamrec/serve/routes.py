"""HTTP routes of the service (mounted by :func:`streamrec.serve.app.create_app`).

The read routes are ``async`` and return their JSON directly: their work is a few
milliseconds of CPU (a thread-pool hop and response-model validation would add about a
millisecond each); the response models still document them in the OpenAPI schema. Event
ingestion waits on the queue's fsync, so it runs in the thread pool.

Bad input is a 4xx with a message that says what to fix, never a 500: validation errors
are 422, unknown items 404 (path) or 422 (in a body), oversize bodies 413, stalled bodies
408, admin routes without a valid bearer token 401/403, refused promotions 409, and 503
while the models are still loading or the queue cannot store events (with Retry-After).
Every 4xx/5xx body is an :class:`~streamrec.serve.schemas.ErrorBody`, declared for every
route in the OpenAPI document.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamrec.serve.schemas import (
    AddItemsRequest,
    ErrorBody,
    EventsAccepted,
    EventsRequest,
    Health,
    ItemsAdded,
    PromoteRequest,
    PromoteResult,
    ReadyStatus,
    ReloadResult,
    SessionRequest,
    SessionResponse,
    SimilarItems,
    UserRecommendations,
)
from streamrec.serve.service import ServiceState

__all__ = ["router"]

RETRY_AFTER_S = 5  # what a client is told to wait when storage refuses a write


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    why = {400: "the body is not readable", 401: "no bearer token", 403: "wrong or "
           "disabled admin token", 404: "unknown id, model or version", 408: "the body "
           "stalled", 409: "refused: the version does not verify or load", 413: "body or "
           "batch too large", 422: "invalid request", 500: "internal error", 503: "starting, "
           "or storage cannot take writes now (see Retry-After)"}
    return {c: {"model": ErrorBody, "description": why[c]} for c in codes}


# every route can meet these: the body guard, validation, start-up and the unexpected
router = APIRouter(responses=_errors(400, 408, 413, 422, 500, 503))
_ADMIN_ERRORS = _errors(401, 403)

UserId = Annotated[int, Path(ge=0, le=2**62, description="user id")]
ItemId = Annotated[int, Path(ge=0, le=2**62, description="item id")]
SessionId = Annotated[int, Path(ge=0, le=2**62, description="session id")]


class RequestError(HTTPException):
    """An HTTP error that also lists each failed check (the ``errors`` of ErrorBody)."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(status, detail)
        self.errors = errors


async def service(request: Request) -> ServiceState:
    """The app's :class:`~streamrec.serve.service.ServiceState`, 503 until it is ready."""
    svc: ServiceState = request.app.state.service
    if not svc.ready:
        raise HTTPException(503, "the service is starting (models loading); retry shortly",
                            headers={"Retry-After": str(RETRY_AFTER_S)})
    return svc


Service = Annotated[ServiceState, Depends(service)]


def _check_k(svc: ServiceState, k: int) -> None:
    if k > svc.settings.max_k:
        raise HTTPException(422, f"k={k} is over the limit max_k={svc.settings.max_k}")


def _storage_full(what: str, exc: Exception) -> HTTPException:
    return HTTPException(503, f"{what} cannot be stored now ({exc}); nothing was stored: retry "
                              "after a few seconds", headers={"Retry-After": str(RETRY_AFTER_S)})


# ---------------------------------------------------------------------------- recommendations
@router.get("/v1/users/{user_id}/recommendations", response_model=UserRecommendations,
            tags=["recommendations"])
async def recommendations(
    user_id: UserId, svc: Service,
    k: Annotated[int, Query(ge=1, description="list length (<= max_k)")] = 10,
    platform: Annotated[str | None, Query(max_length=32, description="the request's "
                                          "platform (a ranking feature)")] = None,
    genres: Annotated[str | None, Query(max_length=1000, description="comma-separated "
                                        "onboarding genres (cold-start users)")] = None,
) -> JSONResponse:
    """Top-k items for a user: retrieve (ANN + co-visitation + popular + new) -> rank (the
    CTR model on point-in-time features) -> policy (seen items, category caps, exploration).
    Unknown users get a cold-start list (popular, or popular in their onboarding genres)."""
    _check_k(svc, k)
    timings: dict[str, float] = {}
    wanted = [g.strip() for g in genres.split(",") if g.strip()] if genres else None
    if wanted:
        unknown = [g for g in wanted if g not in svc.engine.state.categories]
        if unknown:
            raise HTTPException(422, f"unknown genre(s) {unknown[:10]}; known: "
                                     f"{svc.engine.state.categories}")
    out = svc.engine.recommend(user_id, k, platform=platform, genres=wanted, timings=timings)
    for stage, seconds in timings.items():
        svc.metrics.stage.labels(stage).observe(seconds)
    return JSONResponse({"user_id": user_id, **out,
                         "timings_ms": {s: round(v * 1e3, 3) for s, v in timings.items()}})


@router.get("/v1/items/{item_id}/similar", response_model=SimilarItems, tags=["recommendations"],
            responses=_errors(404))
async def similar(item_id: ItemId, svc: Service,
                  k: Annotated[int, Query(ge=1, description="list length (<= max_k)")] = 10,
                  ) -> JSONResponse:
    """Items closest to this one in the retrieval model's vector space."""
    from streamrec.serve.engine import UnknownIdError

    _check_k(svc, k)
    try:
        return JSONResponse({"item_id": item_id, **svc.engine.similar(item_id, k)})
    except UnknownIdError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.post("/v1/sessions/{session_id}/next", response_model=SessionResponse,
             tags=["recommendations"])
async def session_next(session_id: SessionId, body: SessionRequest, svc: Service,
                       ) -> JSONResponse:
    """Next items of a live session from the sequence model: the items in the body, or the
    events this service received with this ``session_id``."""
    from streamrec.serve.engine import UnknownIdError

    _check_k(svc, body.k)
    try:
        out = svc.engine.session_next(session_id, body.k, items=body.items)
    except UnknownIdError as exc:
        raise HTTPException(422, str(exc)) from exc
    return JSONResponse({"session_id": session_id, **out})


# ---------------------------------------------------------------------------- events
@router.post("/v1/events", status_code=202, response_model=EventsAccepted, tags=["events"])
def post_events(body: EventsRequest, svc: Service) -> dict[str, int]:
    """Append a batch of events to the durable queue; 202 means they are stored (an event
    id seen before is counted as a duplicate and not applied again). The consumer applies
    them to the user state within about a second. Event times may be at most
    ``max_future_s`` (default 300 s) after the server's clock; a missing time is the
    server's clock."""
    from streamrec.serve.queue import QueueError

    events = body.events
    limit = svc.settings.max_events_per_request
    if len(events) > limit:
        raise HTTPException(413, f"{len(events)} events in one request; the limit is {limit}: "
                                 "split the batch")
    items = np.fromiter((e.item_id for e in events), np.int64, len(events))
    unknown = svc.engine.unknown_items(items)
    if len(unknown):
        raise HTTPException(422, f"unknown item_id(s) {unknown[:10].tolist()}: add them to the "
                                 "catalog first (POST /admin/items)")
    now = svc.now()
    rows = [e.model_dump() for e in events]
    _check_times(rows, now, svc.settings.max_future_s)
    for r in rows:  # the request's events (at most max_events_per_request)
        r["received_at"] = now
        if r["timestamp"] is None:
            r["timestamp"] = now
    try:
        res = svc.queue.append(rows)
    except QueueError as exc:
        raise _storage_full("the events", exc) from exc
    svc.metrics.events.labels("accepted").inc(res.accepted)
    svc.metrics.events.labels("duplicate").inc(res.duplicates)
    return {"accepted": res.accepted, "duplicates": res.duplicates}


def _check_times(rows: list[dict[str, Any]], now: int, max_future_s: int) -> None:
    """422 naming each event timestamped beyond the window (they would move the service's
    clock and age out its trending counts)."""
    ts = np.array([-1 if r["timestamp"] is None else r["timestamp"] for r in rows], np.int64)
    late = np.flatnonzero(ts > now + max_future_s)
    if not len(late):
        return
    errors = [{"loc": ["body", "events", int(i), "timestamp"],
               "msg": f"{int(ts[i])} is more than {max_future_s} s after the server clock {now}",
               "type": "timestamp_in_future"} for i in late[:100]]
    raise RequestError(422, f"{len(late)} event(s) timestamped more than {max_future_s} s after "
                            f"the server clock ({now}), first events[{int(late[0])}].timestamp="
                            f"{int(ts[late[0]])}; send event times from a synchronised clock, or "
                            "leave them out to use the server's", errors)


# ---------------------------------------------------------------------------- health
@router.get("/healthz", tags=["ops"], response_model=Health)
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], response_model=ReadyStatus,
            responses={503: {"model": ReadyStatus, "description": "not ready (see reason)"}})
def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Readiness: the models are loaded and every acknowledged event is being applied (the
    consumer runs, its current batch is not failing, and at most ``ready_max_lag`` events
    wait)."""
    ok, out = request.app.state.service.readiness()
    if not ok:
        response.status_code = 503
    return out


@router.get("/metrics", tags=["ops"], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})
def metrics(request: Request) -> Response:
    """Prometheus metrics: latency per route, stage timings, queue lag, consumer failures,
    model versions."""
    svc = request.app.state.service
    if svc.ready:
        try:
            svc.metrics.queue_lag.set(svc.queue.lag())
        except Exception:  # an unreachable queue: keep the last value (readyz says why)
            pass
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------- admin
async def admin(svc: Service, authorization: Annotated[str | None, Header()] = None,
                ) -> ServiceState:
    """Bearer-token check of the admin routes."""
    token = svc.settings.admin_token
    if token is None:
        raise HTTPException(403, "admin routes are disabled: set STREAMREC_ADMIN_TOKEN "
                                 "(or --admin-token-file) to enable them")
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing 'Authorization: Bearer <token>' header",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(authorization[7:].encode(), token.get_secret_value().encode()):
        raise HTTPException(403, "invalid admin token")
    return svc


Admin = Annotated[ServiceState, Depends(admin)]


@router.post("/admin/reload", tags=["admin"], response_model=ReloadResult,
             responses={**_ADMIN_ERRORS, **_errors(409)})
def reload(svc: Admin) -> dict[str, Any]:
    """Load the registry's current versions and hot-swap them (requests keep flowing)."""
    from streamrec.serve.registry import RegistryError
    from streamrec.serve.service import PromotionRefused

    try:
        return svc.reload()
    except (PromotionRefused, RegistryError) as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/admin/promote", tags=["admin"], response_model=PromoteResult,
             responses={**_ADMIN_ERRORS, **_errors(404, 409)})
def promote(body: PromoteRequest, svc: Admin) -> dict[str, Any]:
    """Point an alias at a version (production by default) once every sha256 verifies and
    the version loads; for the served alias, the new set is loaded before the alias moves
    and then hot-swapped. A refusal (409) leaves the alias where it was."""
    from streamrec.serve.registry import (
        RegistryError,
        TamperedArtifactError,
        UnloadableVersionError,
    )
    from streamrec.serve.service import PromotionRefused

    try:
        return svc.promote(body.name, body.version, body.alias)
    except (TamperedArtifactError, UnloadableVersionError, PromotionRefused) as exc:
        raise HTTPException(409, str(exc)) from exc
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from exc


@router.post("/admin/items", status_code=201, tags=["admin"], response_model=ItemsAdded,
             responses=_ADMIN_ERRORS)
def add_items(body: AddItemsRequest, svc: Admin) -> dict[str, Any]:
    """Add items to the catalog (or update them); each new one gets a vector from its
    content (title, description, category, length) and is retrievable at once. Additions
    are logged durably before the 201 and survive a restart."""
    t0 = time.perf_counter()
    try:
        frame = svc.add_items([i.model_dump() for i in body.items])
    except OSError as exc:
        raise _storage_full("the catalog change", exc) from exc
    return {"added": frame.height, "items": frame["item_id"].to_list(),
            "seconds": round(time.perf_counter() - t0, 4)}
