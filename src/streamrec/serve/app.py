"""The FastAPI app: ``create_app(settings)``; models load in the lifespan, never at import.

What runs where:

* :class:`~streamrec.serve.service.ServiceState` loads the models, replays the logs and
  runs the event consumer and the registry watcher (``app.state.service``);
* :mod:`streamrec.serve.routes` holds the routes;
* this module wires them together with what every request passes through: the body guard
  (413 as soon as a body, chunked or not, crosses ``max_body_bytes``; 408 when it stalls
  for ``body_timeout_s``), latency and status metrics, and one error body
  (:class:`~streamrec.serve.schemas.ErrorBody`) for every 4xx and 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamrec.serve.metrics import Metrics
from streamrec.serve.service import ServiceState
from streamrec.serve.settings import Settings

__all__ = ["ServiceState", "create_app"]

log = logging.getLogger("streamrec.serve")

def error_response(status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An :class:`~streamrec.serve.schemas.ErrorBody` response."""
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


class _Observe:
    """ASGI middleware: guards request bodies and records latency and status per route
    template (a plain ASGI class: ``BaseHTTPMiddleware`` costs about a millisecond per
    request)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body: int,
                 body_timeout: float) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = dict(scope["headers"]).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_body):
            response = error_response(413, f"request body over {self.max_body} bytes; send "
                                      "smaller batches", headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, self._guard(receive), send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(path, scope["method"]).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(path, str(status)).inc()

    def _guard(self, receive: Receive) -> Receive:
        """``receive`` that counts body bytes as they arrive: a chunked body (no
        Content-Length) is refused the moment it crosses the limit, not after it was read
        and parsed; a body that stalls is refused too (the routes re-raise both)."""
        received = 0
        complete = False

        async def guarded() -> Message:
            nonlocal received, complete
            if complete:  # after the body: only the disconnect is left to wait for
                return await receive()
            # both refusals close the connection: the server stops reading the rest
            try:
                message = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise HTTPException(408, f"the request body stalled for {self.body_timeout:g} "
                                    "s; send the whole body at once",
                                    headers={"Connection": "close"}) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise HTTPException(413, f"request body over {self.max_body} bytes; send "
                                        "smaller batches", headers={"Connection": "close"})
                complete = not message.get("more_body", False)
            return message

        return guarded


def _install_error_handlers(app: FastAPI) -> None:
    """One error body for every failure: validation (422), HTTP errors, and anything
    unexpected (500, with the traceback in the log, never in the answer)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
                  for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in errors)
        return error_response(422, f"invalid request: {where}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        errors = getattr(exc, "errors", None)
        return error_response(exc.status_code, str(exc.detail), errors=errors,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, f"internal error ({type(exc).__name__}); the service log "
                                   "has the details")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The StreamRec service (see :mod:`streamrec.serve.routes` for the API).

    ``app.state.service.start()`` may be called before the server runs (``streamrec
    serve`` does, to report a bad registry in one line); the lifespan starts it otherwise.
    """
    from streamrec.serve.routes import router

    settings = settings or Settings()
    service = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not service.ready:
            service.start()
        try:
            yield
        finally:
            service.shutdown()

    app = FastAPI(
        title="StreamRec", version="0.1.0", lifespan=lifespan,
        description="Two-stage recommendations (retrieve -> rank -> policy) on live state, "
                    "an event stream that updates it, and the model registry's versions.")
    app.state.service = service
    app.include_router(router)
    app.add_middleware(_Observe, metrics=service.metrics, max_body=settings.max_body_bytes,
                       body_timeout=settings.body_timeout_s)
    _install_error_handlers(app)
    return app
