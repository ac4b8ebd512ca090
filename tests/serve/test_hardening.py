"""The service's defences against bad input and lost state: durable catalog additions,
the event time window, one error body, strict ids, full storage on writes, the admin
token, and hand-edited registry files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from streamrec.serve.app import create_app
from streamrec.serve.demo import free_port
from streamrec.serve.queue import QueueError, open_queue
from streamrec.serve.registry import ModelRegistry, RegistryError
from streamrec.serve.schemas import ErrorBody
from streamrec.serve.settings import Settings
from tests.serve._system import run_streamrec, wait_drained

TOKEN = "hardening-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NEW_ITEM = 10**9


def _app(registry: Path, state_dir: Path, **kw: Any) -> Any:
    return create_app(Settings(registry=registry, state_dir=state_dir, admin_token=TOKEN,
                               reload_interval_s=0, **kw))


def _plays(tag: str, user: int, items: list[int]) -> list[dict[str, Any]]:
    return [{"event_id": f"{tag}-{n}", "user_id": user, "item_id": i, "event": kind,
             "value": 0.8, "session_id": 5} for n, (i, kind) in enumerate(
                 (i, k) for i in items for k in ("click", "play"))]


def _user_state(app: Any, user: int) -> dict[str, Any]:
    st = app.state.service.engine.state
    row = st.users.row(user)
    return {"n_ev": int(st.u_n_ev[row]), "uc": st.uc[row].tolist(),
            "recent": st.history(row).tolist(), "n_items": len(st.items)}


# --------------------------------------------------------------------------- catalog additions
def test_items_added_live_survive_a_restart_in_order(tiny_registry: Path, tmp_path: Path) -> None:
    """Items added (then re-categorised) through /admin/items are back after a restart, and
    the events on them are replayed against the catalog they met: the user's per-category
    counts equal the live ones."""
    state = tmp_path / "state"
    user = 777_000
    app = _app(tiny_registry, state)
    with TestClient(app) as client:
        cats = app.state.service.engine.state.categories
        item = {"item_id": NEW_ITEM, "title": "live item", "description": "added live",
                "category": cats[0], "length_seconds": 600}
        assert client.post("/admin/items", json={"items": [item]}, headers=ADMIN
                           ).status_code == 201
        old = [int(i) for i in app.state.service.engine.state.items.ids[:3]]
        r = client.post("/v1/events", json={"events": _plays("a", user, [NEW_ITEM, *old])})
        assert r.status_code == 202
        wait_drained(client)
        moved = {**item, "category": cats[1]}  # the same item, now in another category
        assert client.post("/admin/items", json={"items": [moved]}, headers=ADMIN
                           ).status_code == 201
        client.post("/v1/events", json={"events": _plays("b", user, [NEW_ITEM])})
        wait_drained(client)
        live = _user_state(app, user)
        live_similar = client.get(f"/v1/items/{NEW_ITEM}/similar", params={"k": 5}).json()
    assert live["n_ev"] == 10
    app = _app(tiny_registry, state)
    with TestClient(app) as client:
        r = client.get(f"/v1/items/{NEW_ITEM}/similar", params={"k": 5})
        assert r.status_code == 200 and r.json()["items"] == live_similar["items"]
        assert _user_state(app, user) == live
        rec = client.get(f"/v1/users/{user}/recommendations").json()
        assert not rec["cold_start"]
        # events on the item are accepted after the restart too
        r = client.post("/v1/events", json={"events": _plays("c", user, [NEW_ITEM])})
        assert r.status_code == 202


def test_a_full_disk_refuses_writes_with_503(tiny_registry: Path, tmp_path: Path) -> None:
    app = _app(tiny_registry, tmp_path / "state")
    with TestClient(app) as client:
        svc = app.state.service

        def full(*_: Any, **__: Any) -> Any:
            raise QueueError("append to SQLite queue failed: database or disk is full")

        svc.queue.append = full
        item = int(svc.engine.state.items.ids[0])
        r = client.post("/v1/events", json={"events": [
            {"event_id": "x", "user_id": 1, "item_id": item, "event": "play"}]})
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "disk is full" in ErrorBody.model_validate(r.json()).detail

        def no_space(*_: Any, **__: Any) -> None:
            raise OSError(28, "No space left on device")

        svc.catalog_log.append = no_space
        r = client.post("/admin/items", json={"items": [{"item_id": NEW_ITEM}]}, headers=ADMIN)
        assert r.status_code == 503 and r.headers["retry-after"]
        assert svc.engine.state.items.row(NEW_ITEM) < 0  # not live when not durable


# --------------------------------------------------------------------------- time window
def test_far_future_events_are_refused(tiny_registry: Path, tmp_path: Path) -> None:
    app = _app(tiny_registry, tmp_path / "state")
    with TestClient(app) as client:
        svc = app.state.service
        now = svc.now()
        item = int(svc.engine.state.items.ids[0])

        def post(ts: int) -> httpx.Response:
            return client.post("/v1/events", json={"events": [
                {"event_id": f"t{ts}", "user_id": 1, "item_id": item, "event": "play"},
                {"event_id": f"u{ts}", "user_id": 1, "item_id": item, "event": "play",
                 "timestamp": ts}]})

        for ts in (now + 3600, 4_102_444_800, 2**40):
            r = post(ts)
            assert r.status_code == 422, r.text
            body = ErrorBody.model_validate(r.json())
            assert body.errors and body.errors[0].loc == ["body", "events", 1, "timestamp"]
        assert post(now + 60).status_code == 202  # within the window (default 300 s)
        wait_drained(client)
        assert abs(client.get("/readyz").json()["now"] - now) < 60


def _legacy_line(event_id: str, user: int, item: int, ts: int) -> str:
    return json.dumps({"event_id": event_id, "user_id": user, "item_id": item,
                       "session_id": None, "timestamp": ts, "event": "play", "value": 1.0,
                       "platform": None})


def test_replay_sets_far_future_events_aside(tiny_registry: Path, tmp_path: Path) -> None:
    """A log written before the window existed holds a year-2100 event: the restart neither
    applies it nor moves the clock."""
    state = tmp_path / "state"
    app = _app(tiny_registry, state)
    with TestClient(app) as client:
        before = client.get("/readyz").json()["now"]
        item = int(app.state.service.engine.state.items.ids[0])
    day = datetime.now(UTC).strftime("%Y%m%d")
    with open(state / "log" / f"events-{day}.jsonl", "a") as fh:
        fh.write(_legacy_line("future", 555_001, item, 4_102_444_800) + "\n")
        fh.write(_legacy_line("fine", 555_002, item, before - 10) + "\n")
    app = _app(tiny_registry, state)
    with TestClient(app) as client:
        body = client.get("/readyz").json()
        assert body["ready"] and body["quarantined"] == 1
        assert body["now"] - before < 3600, "a set-aside event moved the clock"
        st = app.state.service.engine.state
        assert st.users.row(555_001) < 0 and st.u_n_ev[st.users.row(555_002)] == 1


def test_the_consumer_sets_aside_bad_events_from_other_producers(tiny_registry: Path,
                                                                 tmp_path: Path) -> None:
    """Events written to the queue without the API (another producer) are checked by the
    consumer: the bad ones go to the quarantine file with a reason, the good one is
    applied, and the consumer never stalls on them."""
    state = tmp_path / "state"
    app = _app(tiny_registry, state)
    with TestClient(app) as client:
        svc = app.state.service
        now = svc.now()
        item = int(svc.engine.state.items.ids[0])
        base = {"user_id": 888_000, "item_id": item, "event": "play", "timestamp": now}
        with open_queue(svc.settings.resolved_queue_url()) as producer:
            producer.append([
                {**base, "event_id": "future", "timestamp": now + 10**6, "received_at": now},
                {**base, "event_id": "no-item", "item_id": NEW_ITEM},
                {**base, "event_id": "bad-user", "user_id": "12"},
                {**base, "event_id": "no-time", "timestamp": None},
                {**base, "event_id": "good"}])
        body = wait_drained(client)
        assert body["ready"] and body["quarantined"] == 4
        lines = [json.loads(x) for x in
                 (state / "quarantine" / "events.jsonl").read_text().splitlines()]
        reasons = {x["event"]["event_id"]: x["reason"] for x in lines}
        assert set(reasons) == {"future", "no-item", "bad-user", "no-time"}
        assert "after it was received" in reasons["future"]
        assert "catalog" in reasons["no-item"] and "user_id" in reasons["bad-user"]
        logged = set(svc.event_log.read()["event_id"].to_list())
        assert logged == {"good"}
        st = svc.engine.state
        assert st.u_n_ev[st.users.row(888_000)] == 1


# --------------------------------------------------------------------------- the error body
def test_every_error_answer_has_the_published_error_body(tiny_registry: Path,
                                                         tmp_path: Path) -> None:
    app = _app(tiny_registry, tmp_path / "state")
    doc = app.openapi()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                if status[0] in "45" and not (path == "/readyz" and status == "503"):
                    ref = resp["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorBody"), (method, path, status)
    with TestClient(app) as client:
        item = int(app.state.service.engine.state.items.ids[0])
        cases = [
            ("get", f"/v1/items/{item}/similar?k=0", None, {}, 422),
            ("get", "/v1/items/999999999/similar", None, {}, 404),
            ("post", "/admin/promote", {"name": "ranker"}, ADMIN, 422),
            ("post", "/admin/promote", {"name": "ranker", "version": "v1", "alias": "v2"},
             ADMIN, 422),
            ("post", "/admin/items", {"items": [{"item_id": -1}]}, ADMIN, 422),
            ("post", "/admin/items", {"items": [{"item_id": 5}]}, {}, 401),
            ("post", "/v1/events", {"events": []}, {}, 422),
        ]
        for method, path, body, headers, status in cases:
            r = client.request(method, path, json=body, headers=headers)
            assert r.status_code == status, (path, r.text)
            parsed = ErrorBody.model_validate(r.json())
            assert parsed.detail and (status != 422 or parsed.errors)
        r = client.post("/v1/events", content=b"x" * 3_000_000,
                        headers={"content-type": "application/json"})
        assert r.status_code == 413 and ErrorBody.model_validate(r.json()).detail


@pytest.mark.parametrize("body", [
    {"events": [{"event_id": "a", "user_id": "12", "item_id": 1, "event": "play"}]},
    {"events": [{"event_id": "a", "user_id": True, "item_id": 1, "event": "play"}]},
    {"events": [{"event_id": "a", "user_id": 1, "item_id": 1.0, "event": "play"}]},
    {"events": [{"event_id": "a", "user_id": 1, "item_id": 1, "event": "play",
                 "timestamp": "1700000000"}]},
    {"events": [{"event_id": 5, "user_id": 1, "item_id": 1, "event": "play"}]},
])
def test_ids_and_times_are_strict_integers(tiny_registry: Path, tmp_path: Path,
                                           body: dict[str, Any]) -> None:
    app = _app(tiny_registry, tmp_path / "state")
    with TestClient(app) as client:
        assert client.post("/v1/events", json=body).status_code == 422
        assert client.post("/v1/sessions/1/next", json={"items": [True]}).status_code == 422
        assert client.post("/v1/sessions/1/next", json={"items": ["3"]}).status_code == 422


# --------------------------------------------------------------------------- admin token
def test_an_empty_admin_token_is_refused() -> None:
    for token in ("", "   ", " padded "):
        with pytest.raises(ValidationError, match="admin token is empty"):
            Settings(admin_token=token)
    assert Settings(admin_token="fine").admin_token is not None


def test_the_admin_token_never_goes_on_the_command_line(tiny_registry: Path,
                                                        tmp_path: Path) -> None:
    serve = ["serve", "--registry", str(tiny_registry)]
    done = run_streamrec(*serve, "--admin-token", "s3cret")
    assert done.returncode == 2 and "No such option" in done.stderr
    done = run_streamrec(*serve, env={"STREAMREC_ADMIN_TOKEN": ""})
    assert done.returncode == 2 and "admin token is empty" in done.stderr
    assert "Traceback" not in done.stderr
    done = run_streamrec(*serve, "--admin-token-file", str(tmp_path / "missing"))
    assert done.returncode == 2 and "cannot read the admin token file" in done.stderr
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamrec.cli.main", *serve, "--port", str(port),
         "--admin-token-file", str(token_file), "--log-level", "warning"],
        env={**os.environ, "STREAMREC_STATE_DIR": str(tmp_path / "state"),
             "STREAMREC_RELOAD_INTERVAL_S": "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, "serve failed"
                time.sleep(0.1)
            assert http.post("/admin/reload", headers=ADMIN).status_code == 200
            assert http.post("/admin/reload", headers={"Authorization": "Bearer no"}
                             ).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- registry files
def test_a_hand_edited_alias_file_is_a_one_line_error(own_registry: Path) -> None:
    (own_registry / "ranker" / "aliases.json").write_text(json.dumps(
        {"aliases": {"production": "../../etc"}, "history": {}}))
    with pytest.raises(RegistryError, match="aliases.json: alias 'production'"):
        ModelRegistry(own_registry).resolve("ranker")
    done = run_streamrec("registry", "show", "ranker", "--registry", str(own_registry))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "aliases.json" in done.stderr


def test_item_batches_reject_floats_and_strings(tiny_registry: Path,
                                                              tmp_path: Path) -> None:
    app = _app(tiny_registry, tmp_path / "state")
    with TestClient(app) as client:
        for bad in ({"item_id": "7"}, {"item_id": 7, "release_ts": 1.5},
                    {"item_id": 7, "title": 3}):
            r = client.post("/admin/items", json={"items": [bad]}, headers=ADMIN)
            assert r.status_code == 422, (bad, r.text)
