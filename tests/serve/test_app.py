"""The service end to end (in-process, lifespan on): routes, live state, cold start, errors."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from streamrec.serve.app import create_app
from streamrec.serve.engine import load_models
from streamrec.serve.ranker import SlateEncoder
from streamrec.serve.registry import ModelRegistry, TamperedArtifactError
from streamrec.serve.settings import Settings
from tests.serve._system import wait_drained

TOKEN = "s3cret"


@pytest.fixture()
def client(tiny_registry, tmp_path):
    app = create_app(Settings(registry=tiny_registry, state_dir=tmp_path / "service",
                              admin_token=TOKEN, reload_interval_s=0))
    with TestClient(app) as c:
        yield c


def _engine(client):
    return client.app.state.service.engine


def _active_user(engine, rank: float = 0.5) -> int:
    st = engine.state
    plays = st.u_n_play[: len(st.users)]
    active = np.flatnonzero(plays >= 5)
    return int(st.users.ids[active[np.argsort(plays[active])[int(rank * (len(active) - 1))]]])


def test_recommendations_for_a_known_user(client):
    eng = _engine(client)
    user = _active_user(eng)
    r = client.get(f"/v1/users/{user}/recommendations", params={"k": 8})
    assert r.status_code == 200
    body = r.json()
    ids = [it["item_id"] for it in body["items"]]
    assert len(ids) == 8 and len(set(ids)) == 8 and not body["cold_start"]
    seen = eng.state.items.ids[eng.state.seen(eng.state.users.row(user))]
    assert not set(ids) & set(seen.tolist())
    assert {it["source"] for it in body["items"]} <= {"ann", "covisit", "popular", "new"}
    assert {it["stage"] for it in body["items"]} <= {"ranked", "explore"}
    assert set(body["versions"]) == {"retrieval", "ranker", "session", "catalog"}
    scores = [it["score"] for it in body["items"] if it["stage"] == "ranked"]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert all(0 < it["p_click"] < 1 for it in body["items"])
    assert set(body["timings_ms"]) == {"retrieve", "rank", "policy"}


def test_a_click_changes_the_next_recommendation_within_a_second(client):
    eng = _engine(client)
    st = eng.state
    user = _active_user(eng, 0.2)
    row = st.users.row(user)
    before = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
    n_ev = st.u_n_ev[row]
    # the user clicks and plays the most popular items of a category they never played
    target = int(np.argmin(st.uc[row, 1:, 2])) + 1
    items = [int(st.items.ids[i]) for i in eng.popular if st.i_cat[i] == target][:4]
    events = [{"event_id": f"t-{user}-{i}-{kind}", "user_id": user, "item_id": i,
               "event": kind, "session_id": 77, "value": 0.9}
              for i in items for kind in ("click", "play")]
    t0 = time.monotonic()
    r = client.post("/v1/events", json={"events": events})
    assert r.status_code == 202 and r.json() == {"accepted": len(events), "duplicates": 0}
    changed = False
    while time.monotonic() - t0 < 1.0 and not changed:
        after = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        changed = after["items"] != before["items"]
    assert changed, "the recommendations did not change within one second"
    assert st.u_n_ev[row] == n_ev + len(events)
    # the clicked items are now seen: never recommended again
    ids = {it["item_id"] for it in after["items"]}
    assert not ids & set(items)
    # idempotency: the same events again are duplicates and change no counter
    r = client.post("/v1/events", json={"events": events})
    assert r.json() == {"accepted": 0, "duplicates": len(events)}
    wait_drained(client)
    assert st.u_n_ev[row] == n_ev + len(events)
    # the consumed events are in the training log
    log = client.app.state.service.event_log.read()
    assert set(log["event_id"].to_list()) >= {e["event_id"] for e in events}


def test_cold_start_users_and_onboarding_genres(client):
    eng = _engine(client)
    unknown = int(eng.state.users.ids.max()) + 12345
    body = client.get(f"/v1/users/{unknown}/recommendations", params={"k": 6}).json()
    assert body["cold_start"] and len(body["items"]) == 6
    assert {it["source"] for it in body["items"]} <= {"popular", "new"}
    genres = eng.state.categories[:2]
    r = client.get(f"/v1/users/{unknown}/recommendations",
                   params={"k": 6, "genres": ",".join(genres)})
    assert r.status_code == 200
    rows = eng.state.items.lookup(np.array([it["item_id"] for it in r.json()["items"]]))
    assert len(rows) == 6
    assert set(eng.state.i_cat[rows].tolist()) <= {1, 2}
    r = client.get(f"/v1/users/{unknown}/recommendations", params={"genres": "no-such-genre"})
    assert r.status_code == 422 and "unknown genre" in r.json()["detail"]


def test_similar_items_and_sessions(client):
    eng = _engine(client)
    item = int(eng.state.items.ids[eng.popular[0]])
    r = client.get(f"/v1/items/{item}/similar", params={"k": 5})
    assert r.status_code == 200
    ids = [it["item_id"] for it in r.json()["items"]]
    assert len(ids) == 5 and item not in ids
    assert client.get("/v1/items/999999999/similar").status_code == 404
    seq = [int(x) for x in eng.state.items.ids[eng.popular[:3]]]
    r = client.post("/v1/sessions/5/next", json={"items": seq, "k": 4})
    assert r.status_code == 200 and r.json()["source"] == "session"
    assert not set(seq) & {it["item_id"] for it in r.json()["items"]}
    assert client.post("/v1/sessions/6/next", json={}).json()["source"] == "popular"
    r = client.post("/v1/sessions/6/next", json={"items": [999999999]})
    assert r.status_code == 422 and "unknown item" in r.json()["detail"]
    # a session fed by events
    user = _active_user(eng)
    client.post("/v1/events", json={"events": [
        {"event_id": f"s-{j}", "user_id": user, "item_id": i, "event": "play",
         "session_id": 4242} for j, i in enumerate(seq)]})
    wait_drained(client)
    body = client.post("/v1/sessions/4242/next", json={"k": 3}).json()
    assert body["session_length"] == 3 and body["source"] == "session"


def test_new_items_are_retrievable_at_once(client):
    eng = _engine(client)
    st = eng.state
    new_id = int(st.items.ids.max()) + 1
    item = {"item_id": new_id, "title": "Night Derby", "description": "football goal derby",
            "category": st.categories[0], "length_seconds": 1200}
    r = client.post("/admin/items", json={"items": [item]})
    assert r.status_code == 401
    r = client.post("/admin/items", json={"items": [item]},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201
    row = st.items.row(new_id)
    vec = eng.models.item_vectors[row]
    n = len(eng.models.index)
    assert n == len(st.items)
    ids, scores = eng.models.index.search(vec[None, :], n)
    assert row in ids[0]
    assert scores[0][list(ids[0]).index(row)] == pytest.approx(float(vec @ vec), rel=1e-4)
    assert client.get(f"/v1/items/{new_id}/similar", params={"k": 3}).status_code == 200
    # a new item is eligible for the exploration slot of every list
    body = client.get(f"/v1/users/{_active_user(eng)}/recommendations",
                      params={"k": 10}).json()
    explored = [it for it in body["items"] if it["stage"] == "explore"]
    assert len(explored) == 1
    assert bool(eng._is_new(st.items.lookup(np.array([explored[0]["item_id"]])), eng.clock())[0])
    # events on the new item are accepted now
    r = client.post("/v1/events", json={"events": [
        {"event_id": "new-1", "user_id": 1, "item_id": new_id, "event": "play"}]})
    assert r.status_code == 202


BAD_REQUESTS = [
    ("get", "/v1/users/1/recommendations?k=0", None, 422),
    ("get", "/v1/users/1/recommendations?k=-3", None, 422),
    ("get", "/v1/users/1/recommendations?k=100000", None, 422),
    ("get", "/v1/users/1/recommendations?k=abc", None, 422),
    ("get", "/v1/users/-1/recommendations", None, 422),
    ("get", "/v1/users/abc/recommendations", None, 422),
    ("get", "/v1/users/99999999999999999999999/recommendations", None, 422),
    ("get", "/v1/items/abc/similar", None, 422),
    ("post", "/v1/events", b"{not json", 422),
    ("post", "/v1/events", {"events": []}, 422),
    ("post", "/v1/events", {"events": "x"}, 422),
    ("post", "/v1/events", {}, 422),
    ("post", "/v1/events", {"events": [{"user_id": 1, "item_id": 1, "event": "click"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": "a", "user_id": "x", "item_id": 1,
                                        "event": "click"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": "a", "user_id": 1, "item_id": 1,
                                        "event": "teleport"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": "a", "user_id": 1, "item_id": 1,
                                        "event": "play", "value": "NaN"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": "a", "user_id": 1, "item_id": 1,
                                        "event": "play", "colour": "red"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": "a", "user_id": 1, "item_id": 10**15,
                                        "event": "play"}]}, 422),
    ("post", "/v1/events", {"events": [{"event_id": f"b{i}", "user_id": 1, "item_id": 1,
                                        "event": "play"} for i in range(1001)]}, 413),
    ("post", "/v1/sessions/1/next", {"k": 0}, 422),
    ("post", "/v1/sessions/1/next", {"items": "abc"}, 422),
    ("post", "/admin/reload", None, 401),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD_REQUESTS)
def test_bad_input_is_a_clear_4xx(client, method, path, body, status):
    if method == "get":
        r = client.get(path)
    elif isinstance(body, bytes):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 10


def test_oversize_body_and_admin_tokens(client, tiny_registry, tmp_path):
    r = client.post("/v1/events", content=b"x" * 3_000_000,
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    bad = client.post("/admin/reload", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 403
    ok = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["swapped"] is False
    app = create_app(Settings(registry=tiny_registry, state_dir=tmp_path / "s2",
                              reload_interval_s=0))
    with TestClient(app) as c:
        r = c.post("/admin/reload", headers={"Authorization": "Bearer x"})
        assert r.status_code == 403 and "STREAMREC_ADMIN_TOKEN" in r.json()["detail"]


def test_health_metrics_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] and ready["versions"]["ranker"] == "v1"
    user = _active_user(_engine(client))
    client.get(f"/v1/users/{user}/recommendations")
    text = client.get("/metrics").text
    assert 'streamrec_request_seconds_bucket{le="0.005",method="GET",route="/v1/users/' \
           '{user_id}/recommendations"}' in text
    assert 'streamrec_stage_seconds_count{stage="rank"}' in text
    assert "streamrec_queue_lag" in text
    assert 'streamrec_model_version{name="ranker",version="v1"} 1.0' in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/users/{user_id}/recommendations", "/v1/events", "/v1/items/{item_id}/similar",
            "/v1/sessions/{session_id}/next", "/admin/promote"} <= set(schema["paths"])


def test_settings_from_the_environment(tiny_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMREC_MAX_K", "5")
    monkeypatch.setenv("STREAMREC_STATE_DIR", str(tmp_path / "env-service"))
    s = Settings(registry=tiny_registry, reload_interval_s=0)
    assert s.max_k == 5 and s.resolved_queue_url().endswith("env-service/queue.db")
    with TestClient(create_app(s)) as c:
        assert c.get("/v1/users/1/recommendations", params={"k": 6}).status_code == 422
        assert c.get("/v1/users/1/recommendations", params={"k": 5}).status_code == 200


def test_slate_encoder_equals_the_offline_encoder(tiny_registry):
    models = load_models(ModelRegistry(tiny_registry))
    from streamrec.serve.features import FeatureState

    st = FeatureState.load(models.catalog_dir / "state")
    plays = st.u_n_play[: len(st.users)]
    row = int(np.argmax(plays))
    items = np.arange(0, len(st.items), 3)
    now = int(st.u_last_t.max()) + 600
    collab = np.linspace(-1, 1, len(items))
    frame = st.features(row, items, now, platform="tv", collaborative=collab,
                        item_ids=st.items.ids[items], user_id=int(st.users.ids[row]))
    want = models.encoder.transform(frame)
    got = SlateEncoder(models.encoder, st.items.ids).encode(
        st.feature_arrays(row, items, now, platform="tv", collaborative=collab), items,
        int(st.users.ids[row]))
    np.testing.assert_array_equal(got.dense, want.dense)
    np.testing.assert_array_equal(got.categorical, want.categorical)
    if want.history is not None:
        np.testing.assert_array_equal(got.history, want.history)
    # and so the same click probabilities
    np.testing.assert_array_equal(models.ranker.predict_proba(got),
                                  models.ranker.predict_proba(want))


def test_a_tampered_artifact_is_refused(own_registry):
    reg = ModelRegistry(own_registry)
    target = reg.resolve("ranker").artifacts / "encoder.json"
    target.write_text(target.read_text().replace("user_", "usr_", 1))
    with pytest.raises(TamperedArtifactError, match="encoder.json"):
        load_models(reg)


def test_restart_replays_the_log_into_the_state(tiny_registry, tmp_path):
    s = Settings(registry=tiny_registry, state_dir=tmp_path / "svc", reload_interval_s=0)
    with TestClient(create_app(s)) as c:
        eng = _engine(c)
        user = _active_user(eng)
        row = eng.state.users.row(user)
        base = eng.state.u_n_ev[row]
        item = int(eng.state.items.ids[0])
        c.post("/v1/events", json={"events": [
            {"event_id": f"r{j}", "user_id": user, "item_id": item, "event": "impression"}
            for j in range(7)]})
        wait_drained(c)
        assert eng.state.u_n_ev[row] == base + 7
    with TestClient(create_app(s)) as c:  # a restart: same log, same queue
        eng = _engine(c)
        assert eng.state.u_n_ev[eng.state.users.row(user)] == base + 7
        log = c.app.state.service.event_log.read()
        assert log.filter(pl.col("event_id").str.starts_with("r")).height == 7


def test_the_app_starts_again_after_a_shutdown(tiny_registry, tmp_path):
    app = create_app(Settings(registry=tiny_registry, state_dir=tmp_path / "again",
                              reload_interval_s=0))
    for run in range(2):
        with TestClient(app) as c:
            assert c.get("/readyz").status_code == 200
            item = int(_engine(c).state.items.ids[0])
            r = c.post("/v1/events", json={"events": [
                {"event_id": f"again-{run}", "user_id": 5, "item_id": item, "event": "click"}]})
            assert r.status_code == 202
            wait_drained(c)
            assert c.get("/readyz").json()["queue_lag"] == 0


def test_idle_refresh_follows_the_hour(tiny_registry):
    from streamrec.serve.engine import Engine
    from streamrec.serve.features import HOUR

    t = {"now": 10 * HOUR + 3000}
    eng = Engine(load_models(ModelRegistry(tiny_registry)), clock=lambda: t["now"])
    assert not eng.refresh_if_stale()  # computed at start-up
    t["now"] += 30
    assert not eng.refresh_if_stale()
    t["now"] = 11 * HOUR + 1  # a new hour: the trending snapshot is for the old one
    assert eng.state._trend_snapshot[0] == 10
    assert eng.refresh_if_stale() and eng.state._trend_snapshot[0] == 11
    assert not eng.refresh_if_stale()
    t["now"] += 61  # over a minute: new items may have aged out
    assert eng.refresh_if_stale() and eng._lists_at == t["now"]
