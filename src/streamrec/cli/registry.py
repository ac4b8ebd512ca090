"""``streamrec registry``: list, show, verify, promote and roll back registered models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from streamrec.cli._ui import console, fail, fmt

if TYPE_CHECKING:
    from streamrec.serve.registry import ModelRegistry, ModelVersion

registry_app = typer.Typer(
    help="The versioned model registry: list the registered models, show a manifest, verify "
    "the artifacts' sha256, promote a version to an alias (production, staging) and roll an "
    "alias back.\n\nLayout: DIR/NAME/vN/{manifest.json,artifacts/} and DIR/NAME/aliases.json.",
    no_args_is_help=True,
)

RegistryOpt = Annotated[Path, typer.Option(
    "--registry", "-r", envvar="STREAMREC_REGISTRY",
    help="registry root directory (default: $STREAMREC_REGISTRY)")]
AliasOpt = Annotated[str, typer.Option("--alias", "-a", help="alias to move")]
NameArg = Annotated[str, typer.Argument(help="model name in the registry")]
RefArg = Annotated[str, typer.Argument(
    help="an alias (production, staging, ...), a version (v3) or 'latest'")]


def _label(exc: Exception) -> str:
    """"refused" when the version failed its check (sha256 or load), else "error"."""
    from streamrec.serve.registry import TamperedArtifactError, UnloadableVersionError

    return "refused" if isinstance(exc, TamperedArtifactError | UnloadableVersionError) else "error"


def _open(root: Path) -> ModelRegistry:
    from streamrec.serve.registry import ModelRegistry

    return ModelRegistry(root)


def _model_label(mv: ModelVersion) -> str:
    info = mv.model_info()
    cls = str(info.get("class") or "").rsplit(".", 1)[-1]
    reg = info.get("registry_name")
    if reg and cls:
        return f"{reg} ({cls})"
    return str(reg or cls)


def _metrics_label(mv: ModelVersion, top: int = 3) -> str:
    metrics = mv.manifest.get("metrics") or {}
    return ", ".join(f"{k}={fmt(v)}" for k, v in list(metrics.items())[:top])


@registry_app.command(
    name="list",
    help="List every version: the aliases pointing at it, creation time, model class, the "
    "first three metrics (by name) and the number of artifact files.",
)
def list_(
    registry: RegistryOpt,
    name: Annotated[str | None, typer.Option("--name", "-n", help="only this model")] = None,
) -> None:
    """List every registered version (a rich table)."""
    from streamrec.serve.registry import RegistryError

    if not registry.is_dir():
        fail(f"{registry}: no such registry directory; register a model first "
             "(ModelRegistry(DIR).register(NAME, SAVED_MODEL_DIR))")
    reg = _open(registry)
    try:
        names = [name] if name is not None else reg.names()
        rows = []
        for n in names:
            by_version: dict[str, list[str]] = {}
            for alias, version in sorted(reg.aliases(n).items()):
                by_version.setdefault(version, []).append(alias)
            rows += [(mv, by_version.get(mv.version, [])) for mv in reg.versions(n)]
    except RegistryError as exc:
        fail(str(exc))
    if not rows:
        console.print(f"no models registered in {escape(str(registry))}")
        return
    table = Table(title=f"model registry {registry}", title_justify="left")
    for col in ("name", "version", "aliases", "created", "model", "metrics", "files"):
        table.add_column(col, justify="right" if col == "files" else "left")
    for mv, aliases in rows:
        created = str(mv.manifest.get("created", ""))[:19].replace("T", " ")
        table.add_row(mv.name, mv.version, ", ".join(aliases), created, _model_label(mv),
                      _metrics_label(mv), str(len(mv.manifest.get("files") or {})))
    console.print(table)


@registry_app.command()
def show(name: NameArg, ref: RefArg = "production", *, registry: RegistryOpt) -> None:
    """Print the registry manifest of NAME at REF as JSON."""
    from streamrec.serve.registry import RegistryError

    try:
        mv = _open(registry).resolve(name, ref)
    except RegistryError as exc:
        fail(str(exc))
    typer.echo(json.dumps(mv.manifest, indent=2, sort_keys=True))


@registry_app.command(
    help="Recompute the sha256 of every artifact of NAME at REF; exit code 1 when a file was "
    "changed, removed or added after registration (2 for a bad name or reference).",
)
def verify(name: NameArg, ref: RefArg = "production", *, registry: RegistryOpt) -> None:
    """Verify the artifacts of NAME at REF against their sha256."""
    from streamrec.serve.registry import RegistryError, TamperedArtifactError

    reg = _open(registry)
    try:
        mv = reg.resolve(name, ref)
        reg.verify(mv)
    except TamperedArtifactError as exc:
        fail(str(exc), label="tampered", code=1)
    except RegistryError as exc:
        fail(str(exc))
    n_files = len(mv.manifest.get("files") or {})
    console.print(f"[green]ok[/] {escape(name)} {mv.version}: {n_files} file(s) match their "
                  "sha256", highlight=False)


@registry_app.command()
def promote(name: NameArg, version: Annotated[str, typer.Argument(help="version, e.g. v3")],
            *, registry: RegistryOpt, alias: AliasOpt = "production") -> None:
    """Point ALIAS (default production) at VERSION of NAME (atomic), once every sha256 of
    VERSION verifies and it loads (serving entries as the service loads them). A refusal
    names the file at fault and leaves the alias as it was (exit code 2)."""
    from streamrec.serve.engine import load_entry
    from streamrec.serve.registry import RegistryError

    try:
        previous = _open(registry).promote(name, version, alias, load=load_entry)
    except RegistryError as exc:
        fail(str(exc), label=_label(exc))
    console.print(f"{escape(name)} {escape(alias)}: {previous or '(unset)'} -> {version}",
                  highlight=False)


@registry_app.command()
def rollback(name: NameArg, *, registry: RegistryOpt, alias: AliasOpt = "production") -> None:
    """Move ALIAS (default production) of NAME back to the version it pointed to before,
    once that version verifies and loads (exit code 2 otherwise)."""
    from streamrec.serve.engine import load_entry
    from streamrec.serve.registry import RegistryError

    reg = _open(registry)
    try:
        current = reg.aliases(name).get(alias)
        target = reg.rollback(name, alias, load=load_entry)
    except RegistryError as exc:
        fail(str(exc), label=_label(exc))
    console.print(f"{escape(name)} {escape(alias)}: {current} -> {target} (rolled back)",
                  highlight=False)
