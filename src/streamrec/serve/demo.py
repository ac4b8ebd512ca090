"""The serving walk-through of ``make demo``: start the service, ask, click, ask again.

:class:`ServerThread` runs uvicorn in a background thread on a loopback port (a real HTTP
server, the one ``streamrec serve`` runs); :func:`walkthrough` drives it with HTTP requests
and returns what happened, step by step, for the CLI to print.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
from pydantic import SecretStr

from streamrec.serve.settings import Settings

if TYPE_CHECKING:
    from streamrec.serve.engine import Engine
    from streamrec.serve.features import FeatureState

__all__ = ["ServerThread", "Step", "free_port", "walkthrough"]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving ``create_app(settings)`` in a thread (context manager)."""

    def __init__(self, settings: Settings, *, startup_timeout: float = 120.0) -> None:
        import uvicorn

        from streamrec.serve.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, host=settings.host, port=settings.port, log_level="warning",
            lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="streamrec-uvicorn",
                                       daemon=True)
        self.timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the service failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the service did not start within {self.timeout:.0f} s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Step:
    """One step of the walk-through: what was done and what came back."""

    title: str
    request: str
    status: int
    detail: dict[str, Any] = field(default_factory=dict)


def _ids(body: dict[str, Any]) -> list[int]:
    return [it["item_id"] for it in body.get("items", [])]


class _Walk:
    """The walk-through's client: every request and its answer become a :class:`Step`."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.steps: list[Step] = []

    def get(self, title: str, path: str, **params: Any) -> dict[str, Any]:
        r = self.http.get(path, params=params)
        self.steps.append(Step(title, f"GET {path}", r.status_code, r.json()))
        return dict(r.json())

    def post(self, title: str, path: str, body: dict[str, Any], **headers: str,
             ) -> dict[str, Any]:
        r = self.http.post(path, json=body, headers=headers)
        self.steps.append(Step(title, f"POST {path}", r.status_code, r.json()))
        return dict(r.json())

    def wait_applied(self, timeout_s: float = 5.0) -> None:
        """Until the consumer has applied every acknowledged event (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while self.http.get("/readyz").json().get("queue_lag", 0) and time.monotonic() < deadline:
            time.sleep(0.02)

    def metrics(self) -> None:
        r = self.http.get("/metrics")
        lines = [ln for ln in r.text.splitlines() if ln.startswith(
            ("streamrec_request_seconds_count", "streamrec_events_consumed_total",
             "streamrec_queue_lag", "streamrec_model_version"))]
        self.steps.append(Step("metrics (Prometheus)", "GET /metrics", r.status_code,
                               {"lines": lines}))


def _typical_user(st: FeatureState) -> int:
    """The row of a known user with a typical history: the median of those with 10+ plays."""
    plays_per_user = st.u_n_play[: len(st.users)]
    active = np.flatnonzero(plays_per_user >= 10)
    return int(active[np.argsort(plays_per_user[active])[len(active) // 2]])


def _new_taste(walk: _Walk, engine: Engine, user_row: int, k: int) -> tuple[int, list[int]]:
    """The user clicks and plays popular items of a category they had not played; their
    recommendations before and after. Returns the category code and the items' ids."""
    st = engine.state
    user = int(st.users.ids[user_row])
    before = walk.get("recommendations, known user", f"/v1/users/{user}/recommendations", k=k)
    plays = st.uc[user_row, :, 2]
    target = int(plays[1:].argmin()) + 1
    cat_items = [int(i) for i in engine.popular if st.i_cat[i] == target][:5]
    ids = st.items.ids[cat_items].tolist()
    session = 10**12 + user
    events = [{"event_id": f"demo-{user}-{j}-{kind}", "user_id": user, "item_id": i,
               "event": kind, "session_id": session, "value": 1.0}
              for j, i in enumerate(ids) for kind in ("impression", "click", "play")]
    walk.post(f"events: user {user} clicks and plays {len(ids)} "
              f"'{st.categories[target - 1]}' items (a category they had not played)",
              "/v1/events", {"events": events})
    walk.post("the same events again (idempotent)", "/v1/events", {"events": events})
    walk.wait_applied()
    after = walk.get("recommendations after the events", f"/v1/users/{user}/recommendations",
                     k=k)

    def n_target(body: dict[str, Any]) -> int:
        rows = st.items.lookup(np.asarray(_ids(body), np.int64))
        return int((st.i_cat[rows] == target).sum())

    walk.steps[-1].detail |= {"changed": _ids(before) != _ids(after),
                              "target_category": st.categories[target - 1],
                              "target_before": n_target(before),
                              "target_after": n_target(after)}
    return target, ids


def walkthrough(registry: str | Path, *, port: int | None = None, k: int = 10,
                state_dir: str | Path | None = None) -> list[Step]:
    """Start the service on ``registry`` and exercise every route a client uses.

    Steps: health; recommendations for a known user; events (the user clicks and plays
    items of a category they had not watched) and the recommendations after them; a
    cold-start user (no history), with onboarding genres; similar items; the next items of a
    live session; a new item added to the catalog and retrieved at once; bad input (4xx);
    metrics. Returns the :class:`Step` list.
    """
    settings = Settings(registry=Path(registry), port=port or free_port(),
                        admin_token=SecretStr("demo"),
                        state_dir=Path(state_dir) if state_dir else None,
                        reload_interval_s=0)
    with ServerThread(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        walk = _Walk(http)
        engine = srv.app.state.service.engine
        st = engine.state
        walk.get("health", "/readyz")
        user_row = _typical_user(st)
        user = int(st.users.ids[user_row])
        target, ids = _new_taste(walk, engine, user_row, k)
        new_user = int(st.users.ids.max()) + 1000
        walk.get("cold start: unknown user", f"/v1/users/{new_user}/recommendations", k=k)
        walk.get("cold start with onboarding genres", f"/v1/users/{new_user}/recommendations",
                 k=k, genres=",".join(st.categories[:2]))
        walk.get("similar items", f"/v1/items/{ids[0]}/similar", k=5)
        walk.post("next items of the live session", f"/v1/sessions/{10**12 + user}/next",
                  {"k": 5})
        new_item = int(st.items.ids.max()) + 1
        walk.post("add a new item (content vector, retrievable at once)", "/admin/items",
                  {"items": [{"item_id": new_item, "title": "Midnight Goal Rush",
                              "description": "football highlights goal derby",
                              "category": st.categories[target - 1], "length_seconds": 900}]},
                  Authorization="Bearer demo")
        walk.get("similar items of the new item", f"/v1/items/{new_item}/similar", k=5)
        walk.get("bad input: k=0", f"/v1/users/{user}/recommendations", k=0)
        walk.post("bad input: unknown item", "/v1/events", {"events": [
            {"event_id": "x", "user_id": 1, "item_id": 10**15, "event": "click"}]})
        walk.metrics()
    return walk.steps
