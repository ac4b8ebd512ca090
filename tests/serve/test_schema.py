"""Property-based API test: schemathesis cases from the service's OpenAPI schema never get a
5xx, and every answer (2xx and 4xx alike) has a status, content type and body the published
schema declares for that route.

The schema is read at import from an app that is created but never started (``create_app``
loads nothing until its lifespan), so collection costs nothing. The cases of each
operation go in-process to a fresh app on a tiny system (this module's copy of the session's
one): schemathesis' ASGI transport runs that app's lifespan (models load, consumer starts) on
the first call, and its pytest plugin ends it after the test. Admin routes get a valid bearer token, so their bodies reach the handlers. Accepted writes are followed
up: events must be applied by the consumer without making ``/readyz`` fail, and added
items must be servable (similar items, recommendations).
Positive and negative cases (schemathesis' default modes), at most ``MAX_EXAMPLES`` per
operation.

(``schemathesis.pytest.from_fixture`` would be the natural way to load the schema from a
fixture, but schemathesis 4.32 sets ``node._nodeid``, which pytest 9 no longer has.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streamrec.serve.app import create_app  # noqa: E402
from streamrec.serve.settings import Settings  # noqa: E402
from tests.serve._system import copy_registry  # noqa: E402

TOKEN = "schema-token"
MAX_EXAMPLES = 50

# the OpenAPI document only: this app is never started
schema = schemathesis.openapi.from_dict(
    create_app(Settings(registry=Path("unused-registry"), admin_token=TOKEN)).openapi())


@pytest.fixture(scope="module")
def registry(tiny_registry: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's own copy of the tiny system: the generated admin requests may promote."""
    return copy_registry(tiny_registry, tmp_path_factory.mktemp("schema") / "registry")


@pytest.fixture
def app(registry: Path, tmp_path: Path) -> Iterator[Any]:
    """A fresh app per operation: schemathesis' pytest plugin ends the ASGI lifespans after
    each test item, and a ServiceState whose lifespan ran once cannot start again (its
    stop event stays set, so a second start-up leaves a dead consumer and /readyz 503)."""
    from schemathesis.python.asgi import shutdown_lifespans

    served = create_app(Settings(registry=registry, state_dir=tmp_path / "state",
                                 admin_token=TOKEN, reload_interval_s=0))
    try:
        yield served
    finally:
        shutdown_lifespans()  # the lifespan's shutdown: consumer stopped, queue closed


def _wait_consumed(app: Any, timeout: float = 10.0) -> None:
    svc = app.state.service
    deadline = time.monotonic() + timeout
    while svc.queue.lag() and time.monotonic() < deadline:
        time.sleep(0.01)


def _follow_up(case: schemathesis.Case, response: Any, app: Any) -> None:
    """Writes that were accepted must not break what comes after them: events are applied
    by the consumer (a poison event would show as /readyz 503), added items are served."""
    from schemathesis.python.asgi import get_client

    op = f"{case.method.upper()} {case.operation.path}"
    if op == "POST /v1/events" and response.status_code == 202:
        _wait_consumed(app)
        users = {e["user_id"] for e in case.body["events"]}
        paths = [f"/v1/users/{u}/recommendations" for u in sorted(users)[:3]]
    elif op == "POST /admin/items" and response.status_code == 201:
        items = response.json()["items"]
        paths = [f"/v1/items/{i}/similar" for i in items[:3]] + [
            "/v1/users/1/recommendations", f"/v1/users/{10**9}/recommendations"]
    else:
        return
    with get_client(app) as http:
        for path in ["/readyz", *paths]:
            r = http.get(path)
            assert r.status_code < 500, f"after {op} {case.body!r}: GET {path} -> " \
                                        f"{r.status_code} {r.text[:500]}"


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_server_errors(case: schemathesis.Case, app: Any) -> None:
    response = case.call(app=app, base_url="http://testserver",
                         headers={"Authorization": f"Bearer {TOKEN}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance,
                                             status_code_conformance,
                                             content_type_conformance])
    _follow_up(case, response, app)


def test_session_items_beyond_int64_is_a_4xx(app: Any) -> None:
    from schemathesis.python.asgi import get_client

    with get_client(app) as http:
        r = http.post("/v1/sessions/1/next", json={"items": [-(2**63) - 1]})
    assert r.status_code < 500, r.text


def test_add_items_with_a_repeated_new_id(app: Any) -> None:
    from schemathesis.python.asgi import get_client

    with get_client(app) as http:
        r = http.post("/admin/items", headers={"Authorization": f"Bearer {TOKEN}"},
                      json={"items": [{"item_id": 10**9, "title": "a"},
                                      {"item_id": 10**9, "title": "a"}]})
    engine = app.state.service.engine
    aligned = len(engine.state.items) == engine.items.height == len(engine.models.item_vectors)
    assert r.status_code < 500 and aligned, (r.status_code, len(engine.state.items),
                                             engine.items.height,
                                             len(engine.models.item_vectors))
