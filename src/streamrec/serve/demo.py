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
from typing import Any

import httpx
import numpy as np

from streamrec.serve.settings import Settings

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


def walkthrough(registry: str | Path, *, port: int | None = None, k: int = 10,
                state_dir: str | Path | None = None) -> list[Step]:
    """Start the service on ``registry`` and exercise every route a client uses.

    Steps: health; recommendations for a known user; events (the user clicks and plays
    items of a category they had not watched) and the recommendations after them; a
    cold-start user (no history), with onboarding genres; similar items; the next items of a
    live session; a new item added to the catalog and retrieved at once; bad input (4xx);
    metrics. Returns the :class:`Step` list.
    """
    settings = Settings(registry=Path(registry), port=port or free_port(), admin_token="demo",
                        state_dir=Path(state_dir) if state_dir else None,
                        reload_interval_s=0)
    steps: list[Step] = []
    with ServerThread(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        engine = srv.app.state.service.engine
        st = engine.state

        def get(title: str, path: str, **params: Any) -> dict[str, Any]:
            r = http.get(path, params=params)
            steps.append(Step(title, f"GET {path}", r.status_code, r.json()))
            return r.json()

        def post(title: str, path: str, body: dict, **headers: str) -> dict[str, Any]:
            r = http.post(path, json=body, headers=headers)
            steps.append(Step(title, f"POST {path}", r.status_code, r.json()))
            return r.json()

        get("health", "/readyz")
        # a known user with a typical history (the median of those with 10+ plays)
        plays_per_user = st.u_n_play[: len(st.users)]
        active = np.flatnonzero(plays_per_user >= 10)
        user_row = int(active[np.argsort(plays_per_user[active])[len(active) // 2]])
        user = int(st.users.ids[user_row])
        before = get("recommendations, known user", f"/v1/users/{user}/recommendations", k=k)
        # clicks and plays on a category the user has not played
        plays = st.uc[user_row, :, 2]
        target = int(plays[1:].argmin()) + 1
        cat_items = [int(i) for i in engine.popular
                     if st.i_cat[i] == target][:5]
        ids = st.items.ids[cat_items].tolist()
        session = 10**12 + user
        events = [{"event_id": f"demo-{user}-{j}-{kind}", "user_id": user, "item_id": i,
                   "event": kind, "session_id": session, "value": 1.0}
                  for j, i in enumerate(ids) for kind in ("impression", "click", "play")]
        post(f"events: user {user} clicks and plays {len(ids)} "
             f"'{st.categories[target - 1]}' items (a category they had not played)", "/v1/events", {"events": events})
        post("the same events again (idempotent)", "/v1/events", {"events": events})
        deadline = time.monotonic() + 5
        while http.get("/readyz").json().get("queue_lag", 0) and time.monotonic() < deadline:
            time.sleep(0.02)
        after = get("recommendations after the events", f"/v1/users/{user}/recommendations",
                    k=k)
        target_name = st.categories[target - 1]

        def n_target(body: dict[str, Any]) -> int:
            rows = st.items.lookup(np.asarray(_ids(body), np.int64))
            return int((st.i_cat[rows] == target).sum())

        steps[-1].detail |= {"changed": _ids(before) != _ids(after),
                             "target_category": target_name,
                             "target_before": n_target(before), "target_after": n_target(after)}
        new_user = int(st.users.ids.max()) + 1000
        get("cold start: unknown user", f"/v1/users/{new_user}/recommendations", k=k)
        get("cold start with onboarding genres", f"/v1/users/{new_user}/recommendations", k=k,
            genres=",".join(st.categories[:2]))
        get("similar items", f"/v1/items/{ids[0]}/similar", k=5)
        post("next items of the live session", f"/v1/sessions/{session}/next", {"k": 5})
        new_item = int(st.items.ids.max()) + 1
        post("add a new item (content vector, retrievable at once)", "/admin/items",
             {"items": [{"item_id": new_item, "title": "Midnight Goal Rush",
                         "description": "football highlights goal derby",
                         "category": st.categories[target - 1], "length_seconds": 900}]},
             Authorization="Bearer demo")
        get("similar items of the new item", f"/v1/items/{new_item}/similar", k=5)
        get("bad input: k=0", f"/v1/users/{user}/recommendations", k=0)
        post("bad input: unknown item", "/v1/events", {"events": [
            {"event_id": "x", "user_id": 1, "item_id": 10**15, "event": "click"}]})
        r = http.get("/metrics")
        lines = [ln for ln in r.text.splitlines() if ln.startswith(
            ("streamrec_request_seconds_count", "streamrec_events_consumed_total",
             "streamrec_queue_lag", "streamrec_model_version"))]
        steps.append(Step("metrics (Prometheus)", "GET /metrics", r.status_code,
                          {"lines": lines}))
    return steps
