"""A versioned model registry on the local file system (DESIGN.md §5).

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
import hashlib
import json
import math
import os
import re
import shutil
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

try:  # POSIX: serialise alias read-modify-write across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

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
ALIASES = "aliases.json"
LATEST = "latest"  # a reserved ref: the highest version

#: file suffixes refused at registration: pickles (torch ``.pt``/``.pth`` files are pickles)
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".joblib"})

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_VERSION_RE = re.compile(r"v([1-9][0-9]*)")
_CHUNK = 1 << 20
_MAX_RACE_RETRIES = 1000
_THREAD_LOCK = threading.Lock()


class RegistryError(Exception):
    """A bad model name, version or alias, or a missing entry; the message says what exists."""


class TamperedArtifactError(RegistryError):
    """An artifact does not match the registry manifest (changed, missing, extra or unsafe).

    Attributes
    ----------
    path : Path
        The file at fault.
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


class UnloadableVersionError(RegistryError):
    """A version whose files match their sha256 but which cannot be loaded.

    Attributes
    ----------
    path : Path
        The artifacts directory (or file) that failed to load.
    """

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


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


# ---------------------------------------------------------------------------- helpers
def sha256_file(path: str | Path, chunk_size: int = _CHUNK) -> str:
    """The sha256 hex digest of a file, read in chunks.

    Parameters
    ----------
    path : str or Path
    chunk_size : int
        Bytes read at a time (memory stays bounded for large arrays).

    Returns
    -------
    str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """A data fingerprint: sha256 over the dtype, shape and bytes of each array, in order.

    Parameters
    ----------
    *arrays : ndarray
        Any numeric or fixed-width arrays, e.g. the train ``users, items, timestamps``
        columns, each of shape (N,). Memory order does not matter (C order is hashed).

    Returns
    -------
    str
        64 hexadecimal characters; equal arrays give equal fingerprints.

    Raises
    ------
    TypeError
        For object arrays (their bytes are pointers, not data).
    """
    h = hashlib.sha256(b"streamrec.fingerprint_arrays/1")
    for k, a in enumerate(arrays):
        arr = np.ascontiguousarray(a)
        if arr.dtype.hasobject:
            raise TypeError(f"fingerprint_arrays: array {k} has dtype object; convert it to a "
                            "numeric or fixed-width string dtype first")
        descr = str(np.lib.format.dtype_to_descr(arr.dtype))
        header = f"{descr}|{arr.shape}".encode()
        h.update(len(header).to_bytes(8, "little"))
        h.update(header)
        h.update(arr.nbytes.to_bytes(8, "little"))
        h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise RegistryError(
            f"bad model name {name!r}: use letters, digits, '_', '.' and '-' (starting with a "
            "letter or digit, at most 128 characters), e.g. 'pop' or 'two_tower-v2'")
    return name


def _check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.fullmatch(alias):
        raise RegistryError(
            f"bad alias {alias!r}: use lowercase letters, digits, '_' and '-' starting with a "
            "letter, e.g. 'production' or 'staging'")
    if _VERSION_RE.fullmatch(alias) or alias == LATEST:
        raise RegistryError(f"bad alias {alias!r}: it reads as a version reference; pick a name "
                            "such as 'production', 'staging' or 'canary'")
    return alias


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version):
        raise RegistryError(f"bad version {version!r}: versions are 'v1', 'v2', ...")
    return version


def _jsonable(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, set | frozenset):
        return sorted(x)
    raise TypeError(f"a value of type {type(x).__name__} is not JSON serialisable")


def _dumps(doc: object) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=_jsonable, allow_nan=False) + "\n"


def _fsync_dir(path: Path) -> None:
    """Make a rename or new entry in ``path`` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems without directory fsync
        pass
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str, *, exclusive: bool = False) -> None:
    with open(path, "x" if exclusive else "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, fsync it and ``os.replace`` it."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        _write_synced(tmp, text, exclusive=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    _fsync_dir(path.parent)


def _copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new file ``dst`` (fsynced) and return the sha256 of the bytes copied."""
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(_CHUNK):
            h.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()


def _walk_files(root: Path) -> list[Path]:
    """Every file under ``root`` (sorted); directory symlinks are refused."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in dirnames:
            if (base / d).is_symlink():
                raise RegistryError(f"{base / d}: directory symlinks are not registered; copy "
                                    "the directory's files in place of the link")
        out.extend(base / f for f in filenames)
    return sorted(out)


def _array_problem(path: Path) -> str | None:
    """Why an ``.npz``/``.npy`` file is unsafe or unreadable without pickle, or None."""
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        return None
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # .npy (or a .npz holding a bare array)
            arrays = {"": loaded}
        else:
            with loaded:
                arrays = {k: loaded[k] for k in loaded.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        return f"cannot be read without pickle ({exc})"
    for key, arr in arrays.items():
        if arr.dtype.hasobject:
            where = f"array {key!r}" if key else "the array"
            return f"{where} has dtype object (a pickle); store numeric arrays only"
    return None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path}: the {what} is not valid JSON ({exc}); restore it from a "
                            "backup or re-register the model") from exc


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

    for where in (mv.artifacts, mv.artifacts / "model"):
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
        _check_name(name)
        if alias is not None:
            _check_alias(alias)
        src = Path(source)
        files = self._source_files(src)
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
            _dumps(doc)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"register {name!r}: split/extra must be JSON-serialisable "
                                f"({exc})") from exc

        name_dir = self.root / name
        new_name = not name_dir.exists()
        name_dir.mkdir(parents=True, exist_ok=True)
        if new_name:
            _fsync_dir(name_dir.parent)
        tmp = name_dir / f".tmp-{uuid.uuid4().hex}"
        try:
            hashes = self._copy_into(files, tmp / ARTIFACTS)
            now = datetime.now(UTC)
            doc |= {"created": now.isoformat(timespec="milliseconds"),
                    "created_unix": now.timestamp(), "files": hashes}
            version = self._rename_into_place(tmp, name_dir, doc)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        mv = ModelVersion(name, version, name_dir / version, doc)
        if alias is not None:  # just copied and hashed: no second check
            self._move_alias(name, alias, version, check=False)
        return mv

    @staticmethod
    def _source_files(src: Path) -> list[tuple[Path, str]]:
        if not src.exists():
            raise RegistryError(f"{src}: no such file or directory; pass the directory written "
                                "by Model.save(dir) or a single artifact file")
        if src.is_dir():
            files = [(p, p.relative_to(src).as_posix()) for p in _walk_files(src)]
            if not files:
                raise RegistryError(f"{src}: the directory is empty; save the model there "
                                    "first (Model.save(dir))")
        else:
            files = [(src, src.name)]
        for path, _ in files:
            if path.suffix.lower() in PICKLE_SUFFIXES:
                raise RegistryError(
                    f"{path}: refusing a pickle file ({path.suffix}); arrays must be "
                    ".npz/.json/safetensors, never pickle (pickles run code when loaded)")
        return files

    @staticmethod
    def _source_model(src: Path) -> dict[str, Any] | None:
        """The saved model's class/name/kind/params: ``src/manifest.json``, or for a bundle
        of artifacts, ``src/model/manifest.json``."""
        manifest = src / MANIFEST
        if src.is_dir() and not manifest.is_file():
            manifest = src / "model" / MANIFEST
        if not (src.is_dir() and manifest.is_file()):
            return None
        info = _read_json(manifest, "model manifest")
        if not isinstance(info, dict) or not ("class" in info or "name" in info):
            return None
        return {"class": info.get("class"), "registry_name": info.get("name"),
                "kind": info.get("kind"), "params": info.get("params")}

    @staticmethod
    def _copy_into(files: list[tuple[Path, str]], dest: Path) -> dict[str, str]:
        """Copy (hashing as it goes) and check arrays; returns {relative path: sha256}."""
        dest.mkdir(parents=True)
        hashes: dict[str, str] = {}
        dirs = {dest, dest.parent}
        for path, rel in files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            dirs.add(target.parent)
            hashes[rel] = _copy_hashed(path, target)
            problem = _array_problem(target)
            if problem is not None:
                raise RegistryError(f"{path}: {problem}; re-save the model with numeric arrays")
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(d)
        return hashes

    def _rename_into_place(self, tmp: Path, name_dir: Path, doc: dict[str, Any]) -> str:
        number = self._next_number(name_dir)
        for _ in range(_MAX_RACE_RETRIES):
            version = f"v{number}"
            doc["version"] = version
            _write_synced(tmp / MANIFEST, _dumps(doc))
            _fsync_dir(tmp)
            try:
                os.rename(tmp, name_dir / version)
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                number = max(number + 1, self._next_number(name_dir))  # lost a race: next one
                continue
            _fsync_dir(name_dir)
            return version
        raise RegistryError(f"{name_dir}: could not claim a version number after "
                            f"{_MAX_RACE_RETRIES} attempts; check the directory's permissions")

    @staticmethod
    def _version_numbers(name_dir: Path) -> list[int]:
        if not name_dir.is_dir():
            return []
        return sorted(int(m.group(1)) for p in name_dir.iterdir()
                      if p.is_dir() and (m := _VERSION_RE.fullmatch(p.name)))

    def _next_number(self, name_dir: Path) -> int:
        numbers = self._version_numbers(name_dir)
        return (numbers[-1] if numbers else 0) + 1

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        """Registered model names, sorted (``[]`` when the root does not exist yet)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir()
                      if p.is_dir() and _NAME_RE.fullmatch(p.name)
                      and self._version_numbers(p))

    def _name_dir(self, name: str) -> Path:
        _check_name(name)
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
        manifest = _read_json(manifest_file, "registry manifest")
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

    def _read_aliases(self, name_dir: Path) -> dict[str, dict[str, Any]]:
        path = name_dir / ALIASES
        if not path.exists():
            return {"aliases": {}, "history": {}}
        doc = _read_json(path, "alias file")
        if (not isinstance(doc, dict) or not isinstance(doc.get("aliases", {}), dict)
                or not isinstance(doc.get("history", {}), dict)):
            raise RegistryError(f"{path}: expected {{\"aliases\": {{...}}, \"history\": {{...}}}}"
                                "; fix the file or delete it and promote again")
        aliases = dict(doc.get("aliases", {}))
        history = dict(doc.get("history", {}))
        # a hand-edited file must not steer a path join (e.g. "../../etc") or crash a reader
        for alias, version in aliases.items():
            if not (_ALIAS_RE.fullmatch(str(alias)) and isinstance(version, str)
                    and _VERSION_RE.fullmatch(version)):
                raise RegistryError(f"{path}: alias {alias!r} -> {version!r} is not an alias "
                                    "name pointing at a version ('v1', 'v2', ...); fix the "
                                    "file or delete it and promote again")
        for alias, versions in history.items():
            if not (isinstance(versions, list)
                    and all(isinstance(v, str) and _VERSION_RE.fullmatch(v) for v in versions)):
                raise RegistryError(f"{path}: the history of alias {alias!r} is not a list of "
                                    "versions ('v1', 'v2', ...); fix the file or delete it and "
                                    "promote again")
        return {"aliases": aliases, "history": history}

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` for ``name`` (e.g. ``{"production": "v2"}``)."""
        return dict(self._read_aliases(self._name_dir(name))["aliases"])

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
        if isinstance(ref, str) and _VERSION_RE.fullmatch(ref):
            version = ref
        else:
            if not isinstance(ref, str) or not _ALIAS_RE.fullmatch(ref):
                raise RegistryError(f"bad reference {ref!r}: use an alias (e.g. 'production'), "
                                    "a version ('v3') or 'latest'")
            aliases = self._read_aliases(name_dir)["aliases"]
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
        aliases = self._read_aliases(name_dir)["aliases"]
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
        art = mv.artifacts
        present = ({p.relative_to(art).as_posix() for p in _walk_files(art)}
                   if art.is_dir() else set())
        for rel in sorted(files):
            path = art / rel
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise TamperedArtifactError(f"{manifest_file}: file entry {rel!r} points outside "
                                            f"{art}; re-register the model", manifest_file)
            if rel not in present:
                raise TamperedArtifactError(
                    f"{path}: listed in {manifest_file} but missing; restore it or roll back "
                    f"(`streamrec registry rollback {mv.name}`)", path)
        extra = sorted(present - set(files))
        if extra:
            more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
            raise TamperedArtifactError(
                f"{art / extra[0]}{more}: not listed in {manifest_file} (added after "
                "registration); remove it or register a new version", art / extra[0])
        for rel, expected in sorted(files.items()):
            path = art / rel
            actual = sha256_file(path)
            if actual != expected:
                raise TamperedArtifactError(
                    f"{path}: sha256 {actual[:16]}... does not match the manifest "
                    f"({str(expected)[:16]}...): the file changed after registration; restore it "
                    f"or roll back (`streamrec registry rollback {mv.name}`)", path)
            problem = _array_problem(path)
            if problem is not None:
                raise TamperedArtifactError(f"{path}: {problem}", path)

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

    # ------------------------------------------------------------------ aliases
    @contextmanager
    def _alias_lock(self, name_dir: Path) -> Iterator[None]:
        """Serialise alias read-modify-writes (threads and, on POSIX, processes)."""
        with _THREAD_LOCK:
            if fcntl is None:  # pragma: no cover - Windows
                yield
                return
            with open(name_dir / ".aliases.lock", "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

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
        _check_alias(alias)
        _check_version(version)
        name_dir = self._name_dir(name)
        if int(version[1:]) not in self._version_numbers(name_dir):
            raise RegistryError(f"model {name!r} has no version {version!r}; "
                                f"{self._what_exists(name_dir)}")
        if check:  # before the lock: hashing and loading may take seconds
            self.check_version(self._load_version(name, version), load)
        with self._alias_lock(name_dir):
            doc = self._read_aliases(name_dir)
            previous = doc["aliases"].get(alias)
            if previous != version:
                history = list(doc["history"].get(alias, []))
                if not history and previous is not None:
                    history = [previous]  # an alias written without history
                history.append(version)
                doc["aliases"][alias] = version
                doc["history"][alias] = history
                _atomic_write(name_dir / ALIASES, _dumps(doc))
        return previous

    def set_alias(self, name: str, alias: str, version: str, *,
                  load: Loader | None = None) -> None:
        """Point ``alias`` at ``version`` once it verifies and loads (atomic write of
        ``aliases.json``; history kept).

        Raises
        ------
        RegistryError
            Bad alias, or no such model or version.
        TamperedArtifactError, UnloadableVersionError
            The version fails :meth:`check_version`; the alias is left as it was.
        """
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
        _check_alias(alias)
        name_dir = self._name_dir(name)
        with self._alias_lock(name_dir):
            doc = self._read_aliases(name_dir)
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
            _atomic_write(name_dir / ALIASES, _dumps(doc))
        return target

    def delete_alias(self, name: str, alias: str) -> str:
        """Remove ``alias`` and its history; returns the version it pointed to.

        Raises
        ------
        RegistryError
            The alias is not set.
        """
        _check_alias(alias)
        name_dir = self._name_dir(name)
        with self._alias_lock(name_dir):
            doc = self._read_aliases(name_dir)
            if alias not in doc["aliases"]:
                raise RegistryError(f"model {name!r} has no alias {alias!r}; "
                                    f"{self._what_exists(name_dir)}")
            version = doc["aliases"].pop(alias)
            doc["history"].pop(alias, None)
            _atomic_write(name_dir / ALIASES, _dumps(doc))
        return str(version)
