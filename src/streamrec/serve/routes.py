"""HTTP routes of the service (mounted by :func:`streamrec.serve.app.create_app`).

The read routes are ``async`` and return their JSON directly: their work is a few
milliseconds of CPU (a thread-pool hop and response-model validation would add about a
millisecond each); the response models still document them in the OpenAPI schema. Event
ingestion waits on the queue's fsync, so it runs in the thread pool.

Bad input is a 4xx with a message that says what to fix, never a 500: validation errors
are 422, unknown items 404 (path) or 422 (in a body), oversize batches 413, admin routes
without a valid bearer token 401/403, and 503 while the models are still loading.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

import numpy as np
import polars as pl
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamrec.serve.schemas import (
    AddItemsRequest,
    EventsAccepted,
    EventsRequest,
    PromoteRequest,
    Recommendations,
    SessionRequest,
    SessionResponse,
    SimilarItems,
)

__all__ = ["router"]

router = APIRouter()

UserId = Annotated[int, Path(ge=0, le=2**62, description="user id")]
ItemId = Annotated[int, Path(ge=0, le=2**62, description="item id")]
SessionId = Annotated[int, Path(ge=0, le=2**62, description="session id")]


async def service(request: Request) -> Any:
    """The app's :class:`~streamrec.serve.app.ServiceState`, 503 until it is ready."""
    svc = request.app.state.service
    if not svc.ready:
        raise HTTPException(503, "the service is starting (models loading); retry shortly")
    return svc


Service = Annotated[Any, Depends(service)]


def _check_k(svc: Any, k: int) -> None:
    if k > svc.settings.max_k:
        raise HTTPException(422, f"k={k} is over the limit max_k={svc.settings.max_k}")


# ---------------------------------------------------------------------------- recommendations
@router.get("/v1/users/{user_id}/recommendations", response_model=Recommendations,
            tags=["recommendations"],
            responses={422: {"description": "invalid k, platform or genres"},
                       503: {"description": "models still loading"}})
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
            responses={404: {"description": "unknown item"}})
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
             tags=["recommendations"], responses={422: {"description": "unknown items"}})
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
@router.post("/v1/events", status_code=202, response_model=EventsAccepted, tags=["events"],
             responses={413: {"description": "too many events in one request"},
                        422: {"description": "invalid event or unknown item"}})
def post_events(body: EventsRequest, svc: Service) -> dict[str, int]:
    """Append a batch of events to the durable queue; 202 means they are stored (an event
    id seen before is counted as a duplicate and not applied again). The consumer applies
    them to the user state within about a second."""
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
    for r in rows:  # a loop over the request's events: fill the default time
        if r["timestamp"] is None:
            r["timestamp"] = now
    res = svc.queue.append(rows)
    svc.metrics.events.labels("accepted").inc(res.accepted)
    svc.metrics.events.labels("duplicate").inc(res.duplicates)
    return {"accepted": res.accepted, "duplicates": res.duplicates}


# ---------------------------------------------------------------------------- health
@router.get("/healthz", tags=["ops"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["ops"], responses={503: {"description": "not ready"}})
def readyz(request: Request, response: Response) -> dict[str, Any]:
    """Readiness: models loaded and the event consumer running."""
    svc = request.app.state.service
    alive = all(t.is_alive() for t in svc.threads)
    ok = bool(svc.ready and alive and svc.consumer_error is None)
    if not ok:
        response.status_code = 503
    out: dict[str, Any] = {"ready": ok}
    if svc.ready:
        out |= {"versions": svc.engine.versions, "queue_lag": svc.queue.lag(),
                "consumer_error": svc.consumer_error, "now": svc.now()}
    return out


@router.get("/metrics", tags=["ops"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics: latency per route, stage timings, queue lag, model versions."""
    svc = request.app.state.service
    if svc.ready:
        svc.metrics.queue_lag.set(svc.queue.lag())
    return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------- admin
async def admin(svc: Service, authorization: Annotated[str | None, Header()] = None) -> Any:
    """Bearer-token check of the admin routes."""
    token = svc.settings.admin_token
    if token is None:
        raise HTTPException(403, "admin routes are disabled: set STREAMREC_ADMIN_TOKEN "
                                 "(or --admin-token) to enable them")
    if not authorization or not authorization.startswith("Bearer "):
        raise HTTPException(401, "missing 'Authorization: Bearer <token>' header",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(authorization[7:].encode(), token.get_secret_value().encode()):
        raise HTTPException(403, "invalid admin token")
    return svc


Admin = Annotated[Any, Depends(admin)]


@router.post("/admin/reload", tags=["admin"])
def reload(svc: Admin) -> dict[str, Any]:
    """Load the registry's current versions and hot-swap them (requests keep flowing)."""
    try:
        return svc.reload()
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from exc


@router.post("/admin/promote", tags=["admin"],
             responses={404: {"description": "unknown model or version"}})
def promote(body: PromoteRequest, svc: Admin) -> dict[str, Any]:
    """Point an alias at a version (production by default), then hot-swap."""
    from streamrec.serve.registry import RegistryError

    try:
        previous = svc.registry.promote(body.name, body.version, body.alias)
    except RegistryError as exc:
        raise HTTPException(404, str(exc)) from exc
    out = svc.reload() if body.alias == svc.settings.ref else {"swapped": False}
    return {"previous": previous, **out}


@router.post("/admin/items", status_code=201, tags=["admin"])
def add_items(body: AddItemsRequest, svc: Admin) -> dict[str, Any]:
    """Add items to the catalog; each gets a vector from its content (title, description,
    category, length) and is retrievable at once."""
    t0 = time.perf_counter()
    frame = pl.DataFrame([i.model_dump() for i in body.items], infer_schema_length=None)
    frame = frame.with_columns(pl.col("release_ts").fill_null(svc.now()))
    rows = svc.engine.add_items(frame)
    return {"added": len(rows), "items": frame["item_id"].to_list(),
            "seconds": round(time.perf_counter() - t0, 4)}
