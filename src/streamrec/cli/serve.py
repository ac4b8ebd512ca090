"""``streamrec serve`` (the service) and ``streamrec demo`` (the serving walk-through)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from streamrec.cli._ui import console, fail

__all__ = ["demo", "serve"]


def serve(
    registry: Annotated[Path, typer.Option("--registry", "-r", help="model registry directory "
                                           "(streamrec quickstart writes DIR/registry)")],
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    settings_file: Annotated[Path | None, typer.Option(
        "--settings", help="env file of STREAMREC_* settings (queue_url, admin_token, "
        "max_k, n_ann, max_per_category, explore_slots, clock, ...)")] = None,
    queue_url: Annotated[str | None, typer.Option(
        help="event queue: sqlite:///PATH (default: <registry>/../service/queue.db) or "
        "redis://HOST:PORT/DB (pip install 'streamrec\\[redis]')")] = None,
    admin_token_file: Annotated[Path | None, typer.Option(
        help="file holding the bearer token of the /admin routes (or set "
        "STREAMREC_ADMIN_TOKEN); never given on the command line, where `ps` shows it")] = None,
    workers_log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = (
        "info"),
    access_log: Annotated[bool, typer.Option(help="log every request (uvicorn's access log "
                                             "at info level; /metrics counts them too)")] = True,
) -> None:
    """Serve the registry's production models over HTTP (FastAPI + uvicorn).

    Routes: GET /v1/users/{id}/recommendations, POST /v1/sessions/{id}/next,
    GET /v1/items/{id}/similar, POST /v1/events, GET /healthz /readyz /metrics, and the
    token-protected /admin/reload, /admin/promote, /admin/items. OpenAPI docs at /docs.
    Promotions (`streamrec registry promote`) are picked up live. The models are loaded
    and verified before the port opens: a bad registry is one line and exit code 2.
    """
    import uvicorn
    from pydantic import ValidationError

    from streamrec.serve.app import create_app
    from streamrec.serve.service import StartupError
    from streamrec.serve.settings import Settings

    if not (registry / "ranker").exists():
        fail(f"{registry} holds no serving models; run `streamrec quickstart --workdir DIR` "
             "and serve DIR/registry")
    overrides: dict[str, object] = {"registry": registry, "port": port, "host": host}
    if queue_url:
        overrides["queue_url"] = queue_url
    if admin_token_file is not None:
        try:
            overrides["admin_token"] = admin_token_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read the admin token file {admin_token_file}: "
                 f"{exc.strerror or exc}")
    try:
        settings = Settings(_env_file=settings_file, **overrides) if settings_file else Settings(
            **overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "settings"
        fail(f"bad setting {where}: {first.get('msg', 'invalid')}")
    app = create_app(settings)
    try:
        app.state.service.start()
    except StartupError as exc:
        fail(str(exc))
    console.print(f"serving {registry} on http://{host}:{port}  (docs: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=workers_log_level, access_log=access_log)


def demo(
    workdir: Annotated[Path, typer.Option(help="the quickstart's workdir (run first when "
                                          "DIR/registry is missing)")] = Path(
        "streamrec-quickstart"),
    port: Annotated[int | None, typer.Option(help="port (default: a free one)")] = None,
    k: Annotated[int, typer.Option(help="list length")] = 10,
) -> None:
    """The serving walk-through: start the service on WORKDIR/registry, request
    recommendations, post events, show the recommendations change, cold start, similar
    items, a live session, a new item, bad input, metrics; then stop."""
    from rich.table import Table

    from streamrec.serve.demo import walkthrough

    registry = workdir / "registry"
    if not (registry / "ranker").exists():
        fail(f"no registry at {registry}; run `streamrec quickstart --workdir {workdir}` first")
    import shutil

    state_dir = workdir / "service-demo"  # a fresh event log and queue every run
    shutil.rmtree(state_dir, ignore_errors=True)
    steps = walkthrough(registry, port=port, k=k, state_dir=state_dir)
    for step in steps:
        body = step.detail
        console.rule(f"{step.title}  [dim]{step.request} -> {step.status}[/]")
        if "items" in body and isinstance(body["items"], list) and body["items"] and \
                isinstance(body["items"][0], dict):
            t = Table(show_header=True, box=None)
            cols = [c for c in ("item_id", "score", "p_click", "source", "stage")
                    if c in body["items"][0]]
            for c in cols:
                t.add_column(c)
            for it in body["items"]:
                t.add_row(*(f"{it[c]:.4f}" if isinstance(it[c], float) else str(it[c])
                            for c in cols))
            console.print(t)
            rest = {k2: v for k2, v in body.items() if k2 != "items"}
            if rest:
                console.print(escape(json.dumps(rest)))
        else:
            console.print(escape(json.dumps(body)[:2000]))
