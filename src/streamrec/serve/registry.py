"""A versioned model registry on the local file system.

Layout::

    <root>/<name>/<version>/manifest.json   # registry manifest: model class, hyperparameters,
                                            # metrics, data fingerprint, split, sha256 per file
    <root>/<name>/<version>/artifacts/...   # the copied artifacts (``Model.save`` output)
    <root>/<name>/aliases.json              # {"aliases": {...}, "history": {...}}

Versions are ``v1``, ``v2``, ... per name; a new version is assembled in a temporary
directory next to them, fsynced and renamed into place (atomic), so a reader never sees a
half-written version. Aliases (``production``, ``staging``) are written to a temporary file
and ``os.replace``d; every alias keeps its history, so a rollback is an alias move.
Artifacts are arrays (``.npz``/``.npy``/safetensors) and JSON, never pickle.

The file handling (digests, durable writes, copies, the pickle checks) is in
:mod:`~streamrec.serve.registry_files`, names and the alias file in
:mod:`~streamrec.serve.registry_aliases`, the errors in :mod:`~streamrec.serve.registry_errors`.

Examples
--------
>>> reg = ModelRegistry("registry")                                  # doctest: +SKIP
>>> mv = reg.register("pop", "runs/pop_model", metrics={"ndcg@10": 0.12},
...                   alias="staging")                                # doctest: +SKIP
>>> reg.promote("pop", mv.version)                                   # doctest: +SKIP
>>> model = Model.load(reg.load_path("pop"))                         # doctest: +SKIP
"""

from __future__ import annotations

import errno
import math
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamrec.serve.layout import MODEL_DIR
from streamrec.serve.registry_aliases import (
    ALIAS_RE,
    LATEST,
    NAME_RE,
    VERSION_RE,
    AliasFile,
    check_alias,
    check_name,
    check_version,
)
from streamrec.serve.registry_errors import (
    RegistryError,
    TamperedArtifactError,
    UnloadableVersionError,
)
from streamrec.serve.registry_files import (
    check_artifacts,
    copy_into,
    dumps,
    fingerprint_arrays,
    fsync_dir,
    read_json,
    sha256_file,
    source_files,
    write_synced,
)

if TYPE_CHECKING:
    from streamrec.models.base import Model

__all__ = [
    "FORMAT_VERSION",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "TamperedArtifactError",
    "UnloadableVersionError",
    "fingerprint_arrays",
    "load_saved_model",
    "sha256_file",
]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARTIFACTS = "artifacts"

_MAX_RACE_RETRIES = 1000


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model.

    Attributes
    ----------
    name : str
        Model name in the registry.
    version : str
        ``"v1"``, ``"v2"``, ...
    path : Path
        The version directory (holds ``manifest.json`` and ``artifacts/``).
    manifest : dict
        The registry manifest (see :meth:`ModelRegistry.register`).
    """

    name: str
    version: str
    path: Path
    manifest: dict[str, Any]

    @property
    def artifacts(self) -> Path:
        """The directory of the copied artifacts (what ``Model.load`` reads)."""
        return self.path / ARTIFACTS

    @property
    def number(self) -> int:
        """The version number (``3`` for ``"v3"``)."""
        return int(self.version[1:])

    def model_info(self) -> dict[str, Any]:
        """``{"class", "registry_name", "kind", "params"}`` of the saved model, or ``{}``
        when the artifacts were not written by ``Model.save``."""
        return dict(self.manifest.get("model") or {})


def _clean_metrics(metrics: dict[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in (metrics or {}).items():
        if not isinstance(key, str):
            raise RegistryError(f"metric names must be strings, got {key!r}")
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"metric {key!r} must be a number, got {value!r}") from exc
        if not math.isfinite(number):
            raise RegistryError(f"metric {key!r} must be finite, got {value!r}")
        out[key] = number
    return out


Loader = Callable[[ModelVersion], object]
"""Loads a registered version the way its reader does (raises when it cannot)."""


def load_saved_model(mv: ModelVersion) -> object | None:
    """Load ``mv``'s artifacts with ``Model.load`` when ``Model.save`` wrote them (at the
    top or in ``model/``); other artifacts are only verified. The default check of an alias
    move."""
    from streamrec.models.base import Model

    for where in (mv.artifacts, mv.artifacts / MODEL_DIR):
        if (where / MANIFEST).is_file():
            return Model.load(where)
    return None


# ---------------------------------------------------------------------------- registry
class ModelRegistry:
    """Versioned models under one root directory, with atomic aliases and rollback.

    Parameters
    ----------
    root : str or Path
        The registry directory; nothing is created until :meth:`register`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # ------------------------------------------------------------------ register
    def register(
        self,
        name: str,
        source: str | Path,
        *,
        metrics: dict[str, float] | None = None,
        data_fingerprint: str | None = None,
        split: dict[str, Any] | str | None = None,
        description: str = "",
        extra: dict[str, Any] | None = None,
        alias: str | None = None,
    ) -> ModelVersion:
        """Copy ``source`` into the registry as the next version of ``name``.

        Parameters
        ----------
        name : str
            Model name (``[A-Za-z0-9][A-Za-z0-9_.-]*``).
        source : str or Path
            A directory (typically ``Model.save(dir)``'s output: ``manifest.json`` and
            ``arrays.npz``, plus any other files and subdirectories) or a single file.
        metrics : dict of str to float, optional
            Offline metrics of this version, e.g. ``{"ndcg@10": 0.12}``.
        data_fingerprint : str, optional
            What the model was trained on, e.g. :func:`fingerprint_arrays` of the train data.
        split : dict or str, optional
            The split protocol (name or parameters).
        description : str
        extra : dict, optional
            Any other JSON-serialisable facts.
        alias : str, optional
            Point this alias (e.g. ``"staging"``) at the new version afterwards.

        Returns
        -------
        ModelVersion

        Raises
        ------
        RegistryError
            Bad name or alias, missing/empty source, pickle files (``.pkl``, ``.pickle``,
            ``.pt``, ``.pth``, ``.joblib``), object arrays, or values that are not JSON.

        Notes
        -----
        The version is assembled in ``<root>/<name>/.tmp-<uuid>``, every file is fsynced,
        then the directory is renamed to ``vN`` (N = highest existing + 1). If another writer
        takes ``vN`` first, the rename fails and the next number is tried.
        """
        check_name(name)
        if alias is not None:
            check_alias(alias)
        src = Path(source)
        files = source_files(src)
        doc: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "name": name,
            "version": None,
            "model": self._source_model(src),
            "metrics": _clean_metrics(metrics),
            "data_fingerprint": data_fingerprint,
            "split": split,
            "description": str(description),
            "extra": dict(extra) if extra is not None else {},
        }
        try:
            dumps(doc)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"register {name!r}: split/extra must be JSON-serialisable "
                                f"({exc})") from exc

        mv = self._add_version(name, files, doc)
        if alias is not None:  # just copied and hashed: no second check
            self._move_alias(name, alias, mv.version, check=False)
        return mv

    def _add_version(self, name: str, files: list[tuple[Path, str]], doc: dict[str, Any],
                     ) -> ModelVersion:
        """Copy ``files`` into a temporary directory next to the versions, then rename it
        into place as the next version with its manifest ``doc``."""
        name_dir = self.root / name
        new_name = not name_dir.exists()
        name_dir.mkdir(parents=True, exist_ok=True)
        if new_name:
            fsync_dir(name_dir.parent)
        tmp = name_dir / f".tmp-{uuid.uuid4().hex}"
        try:
            hashes = copy_into(files, tmp / ARTIFACTS)
            now = datetime.now(UTC)
            doc |= {"created": now.isoformat(timespec="milliseconds"),
                    "created_unix": now.timestamp(), "files": hashes}
            version = self._rename_into_place(tmp, name_dir, doc)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return ModelVersion(name, version, name_dir / version, doc)

    @staticmethod
    def _source_model(src: Path) -> dict[str, Any] | None:
        """The saved model's class/name/kind/params: ``src/manifest.json``, or for a bundle
        of artifacts, ``src/model/manifest.json``."""
        manifest = src / MANIFEST
        if src.is_dir() and not manifest.is_file():
            manifest = src / MODEL_DIR / MANIFEST
        if not (src.is_dir() and manifest.is_file()):
            return None
        info = read_json(manifest, "model manifest")
        if not isinstance(info, dict) or not ("class" in info or "name" in info):
            return None
        return {"class": info.get("class"), "registry_name": info.get("name"),
                "kind": info.get("kind"), "params": info.get("params")}

    def _rename_into_place(self, tmp: Path, name_dir: Path, doc: dict[str, Any]) -> str:
        number = self._next_number(name_dir)
        for _ in range(_MAX_RACE_RETRIES):
            version = f"v{number}"
            doc["version"] = version
            write_synced(tmp / MANIFEST, dumps(doc))
            fsync_dir(tmp)
            try:
                os.rename(tmp, name_dir / version)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                number = max(number + 1, self._next_number(name_dir))  # lost a race: next one
                continue
            fsync_dir(name_dir)
            return version
        raise RegistryError(f"{name_dir}: could not claim a version number after "
                            f"{_MAX_RACE_RETRIES} attempts; check the directory's permissions")

    @staticmethod
    def _version_numbers(name_dir: Path) -> list[int]:
        if not name_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in name_dir.iterdir()
                      if p.is_dir() and (m := VERSION_RE.fullmatch(p.name)))

    def _next_number(self, name_dir: Path) -> int:
        numbers = self._version_numbers(name_dir)
        return (numbers[-1] if numbers else 0) + 1

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        """Registered model names, sorted (``[]`` when the root does not exist yet)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and NAME_RE.fullmatch(p.name)
                      and self._version_numbers(p))

    def _name_dir(self, name: str) -> Path:
        check_name(name)
        path = self.root / name
        if not self._version_numbers(path):
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model named {name!r} in registry {self.root} (models: "
                                f"{known}); register one with ModelRegistry.register")
        return path

    def _load_version(self, name: str, version: str) -> ModelVersion:
        path = self.root / name / version
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise RegistryError(f"{manifest_file}: missing; the version directory is damaged "
                                "(delete it and register the model again)")
        manifest = read_json(manifest_file, "registry manifest")
        if not isinstance(manifest, dict):
            raise RegistryError(f"{manifest_file}: expected a JSON object")
        return ModelVersion(name, version, path, manifest)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (sorted by version number).

        Raises
        ------
        RegistryError
            Unknown name (the message lists the registered ones).
        """
        name_dir = self._name_dir(name)
        return [self._load_version(name, f"v{n}") for n in self._version_numbers(name_dir)]

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` for ``name`` (e.g. ``{"production": "v2"}``)."""
        return dict(AliasFile(self._name_dir(name)).read()["aliases"])

    def resolve(self, name: str, ref: str = "production") -> ModelVersion:
        """The version ``ref`` names: an alias, ``"vN"`` or ``"latest"``.

        Raises
        ------
        RegistryError
            Unknown name, version or alias; the message lists the versions and aliases.
        """
        name_dir = self._name_dir(name)
        numbers = self._version_numbers(name_dir)
        if ref == LATEST:
            return self._load_version(name, f"v{numbers[-1]}")
        if isinstance(ref, str) and VERSION_RE.fullmatch(ref):
            version = ref
        else:
            if not isinstance(ref, str) or not ALIAS_RE.fullmatch(ref):
                raise RegistryError(f"bad reference {ref!r}: use an alias (e.g. 'production'), "
                                    "a version ('v3') or 'latest'")
            aliases = AliasFile(name_dir).read()["aliases"]
            if ref not in aliases:
                raise RegistryError(f"model {name!r} has no alias {ref!r}; "
                                    f"{self._what_exists(name_dir)}; set one with "
                                    f"`streamrec registry promote {name} VERSION --alias {ref}`")
            version = aliases[ref]
        if int(version[1:]) not in numbers:
            raise RegistryError(f"model {name!r} has no version {version!r}; "
                                f"{self._what_exists(name_dir)}")
        return self._load_version(name, version)

    def _what_exists(self, name_dir: Path) -> str:
        versions = ", ".join(f"v{n}" for n in self._version_numbers(name_dir)) or "none"
        aliases = AliasFile(name_dir).read()["aliases"]
        shown = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
        return f"versions: {versions}; aliases: {shown}"

    # ------------------------------------------------------------------ integrity
    def verify(self, mv: ModelVersion) -> None:
        """Recompute the sha256 of every artifact and compare with the manifest.

        Also refuses files that are not listed, listed files that are missing, and
        ``.npz``/``.npy`` files that need pickle to load (object arrays).

        Raises
        ------
        TamperedArtifactError
            Naming the file at fault.
        """
        manifest_file = mv.path / MANIFEST
        files = mv.manifest.get("files")
        if not isinstance(files, dict):
            raise TamperedArtifactError(f"{manifest_file}: no 'files' table of sha256 digests; "
                                        "re-register the model", manifest_file)
        if mv.manifest.get("name") != mv.name or mv.manifest.get("version") != mv.version:
            raise TamperedArtifactError(
                f"{manifest_file}: describes {mv.manifest.get('name')!r} "
                f"{mv.manifest.get('version')!r}, not {mv.name!r} {mv.version!r} (a copied or "
                "moved version directory); re-register the model", manifest_file)
        check_artifacts(mv.artifacts, files, manifest_file, mv.name)

    def load_path(self, name: str, ref: str = "production") -> Path:
        """Resolve ``ref``, verify every sha256, and return the artifacts directory.

        Returns
        -------
        Path
            ``<root>/<name>/<version>/artifacts`` (pass it to ``Model.load``).
        """
        mv = self.resolve(name, ref)
        self.verify(mv)
        return mv.artifacts

    def load_model(self, name: str, ref: str = "production") -> Model:
        """``Model.load(self.load_path(name, ref))``: the verified model, ready to score."""
        from streamrec.models.base import Model

        return Model.load(self.load_path(name, ref))

    def check_version(self, mv: ModelVersion, load: Loader | None = None) -> None:
        """Verify every sha256 of ``mv`` and load it: what an alias move requires.

        Parameters
        ----------
        mv : ModelVersion
        load : callable(ModelVersion) -> object, optional
            Loads the version the way its reader will (the service passes its loader of
            serving entries); default :func:`load_saved_model`.

        Raises
        ------
        TamperedArtifactError
            A file changed, is missing, was added, or the manifest describes another version.
        UnloadableVersionError
            The files match but loading failed; the message names the directory.
        """
        self.verify(mv)
        loader = load or load_saved_model
        try:
            loader(mv)
        except RegistryError:
            raise
        except Exception as exc:  # whatever the model's reader raises: refuse the version
            where = Path(getattr(exc, "filename", None) or mv.artifacts)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UnloadableVersionError(
                f"{where}: {mv.name} {mv.version} cannot be loaded ({type(exc).__name__}: "
                f"{reason}); register a new version", where) from exc

    def _move_alias(self, name: str, alias: str, version: str, *,
                    load: Loader | None = None, check: bool = True) -> str | None:
        check_alias(alias)
        check_version(version)
        name_dir = self._name_dir(name)
        if int(version[1:]) not in self._version_numbers(name_dir):
            raise RegistryError(f"model {name!r} has no version {version!r}; "
                                f"{self._what_exists(name_dir)}")
        if check:  # before the lock: hashing and loading may take seconds
            self.check_version(self._load_version(name, version), load)
        file = AliasFile(name_dir)
        with file.locked():
            return file.point(alias, version)

    def set_alias(self, name: str, alias: str, version: str, *,
                  load: Loader | None = None) -> None:
        """:meth:`promote` without its return value (same checks, same errors)."""
        self._move_alias(name, alias, version, load=load)

    def promote(self, name: str, version: str, alias: str = "production", *,
                load: Loader | None = None) -> str | None:
        """Point ``alias`` at ``version``; returns the version it pointed to before (or None).

        The version's sha256 are verified and it is loaded (``load``, default
        :func:`load_saved_model`) before the alias moves, so an alias never points at a
        version that cannot load. Promoting the version an alias already points to changes
        nothing.

        Raises
        ------
        RegistryError
            Bad alias, or no such model or version.
        TamperedArtifactError, UnloadableVersionError
            The version fails :meth:`check_version`; the alias is left as it was.
        """
        return self._move_alias(name, alias, version, load=load)

    def rollback(self, name: str, alias: str = "production", *,
                 load: Loader | None = None) -> str:
        """Move ``alias`` back to the version it pointed to before; returns that version.

        The target is verified and loaded first, as in :meth:`promote`.

        Raises
        ------
        RegistryError
            The alias is not set, has no earlier version, or that version was deleted.
        TamperedArtifactError, UnloadableVersionError
            The target fails :meth:`check_version`; the alias is left as it was.
        """
        check_alias(alias)
        name_dir = self._name_dir(name)
        file = AliasFile(name_dir)
        with file.locked():
            doc = file.read()
            current = doc["aliases"].get(alias)
            if current is None:
                raise RegistryError(f"model {name!r} has no alias {alias!r} to roll back; "
                                    f"{self._what_exists(name_dir)}")
            history = list(doc["history"].get(alias, []))
            while history and history[-1] == current:
                history.pop()
            if not history:
                raise RegistryError(
                    f"model {name!r}: alias {alias!r} -> {current} has no previous version to "
                    f"roll back to; promote one instead (`streamrec registry promote {name} "
                    f"VERSION --alias {alias}`)")
            target = history[-1]
            if int(target[1:]) not in self._version_numbers(name_dir):
                raise RegistryError(f"model {name!r}: alias {alias!r} would roll back to "
                                    f"{target!r}, which no longer exists; "
                                    f"{self._what_exists(name_dir)}; promote a version instead")
            self.check_version(self._load_version(name, target), load)
            doc["aliases"][alias] = target
            doc["history"][alias] = history
            file.write(doc)
        return target

    def delete_alias(self, name: str, alias: str) -> str:
        """Remove ``alias`` and its history; returns the version it pointed to.

        Raises
        ------
        RegistryError
            The alias is not set.
        """
        check_alias(alias)
        name_dir = self._name_dir(name)
        file = AliasFile(name_dir)
        with file.locked():
            doc = file.read()
            if alias not in doc["aliases"]:
                raise RegistryError(f"model {name!r} has no alias {alias!r}; "
                                    f"{self._what_exists(name_dir)}")
            version = doc["aliases"].pop(alias)
            doc["history"].pop(alias, None)
            file.write(doc)
        return str(version)
