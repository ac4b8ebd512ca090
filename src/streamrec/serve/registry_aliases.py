"""Names, versions and aliases of the model registry, and the alias file of each name.

``<root>/<name>/aliases.json`` holds ``{"aliases": {alias: version}, "history": {alias:
[versions]}}``. It is validated whenever it is read (a hand-edited file must not steer a
path join or crash a reader), replaced atomically, and read-modify-written under a lock
(threads and, on POSIX, processes), so concurrent promotions never lose one another.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypedDict

from streamrec.serve.registry_errors import RegistryError
from streamrec.serve.registry_files import atomic_write, dumps, read_json

try:  # POSIX: serialise alias read-modify-write across processes
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["ALIASES", "LATEST", "AliasDoc", "AliasFile", "check_alias", "check_name",
           "check_version"]

ALIASES = "aliases.json"
LATEST = "latest"  # a reserved ref: the highest version

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
ALIAS_RE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
VERSION_RE = re.compile(r"v([1-9][0-9]*)")
_THREAD_LOCK = threading.Lock()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise RegistryError(
            f"bad model name {name!r}: use letters, digits, '_', '.' and '-' (starting with a "
            "letter or digit, at most 128 characters), e.g. 'pop' or 'two_tower-v2'")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_RE.fullmatch(alias):
        raise RegistryError(
            f"bad alias {alias!r}: use lowercase letters, digits, '_' and '-' starting with a "
            "letter, e.g. 'production' or 'staging'")
    if VERSION_RE.fullmatch(alias) or alias == LATEST:
        raise RegistryError(f"bad alias {alias!r}: it reads as a version reference; pick a name "
                            "such as 'production', 'staging' or 'canary'")
    return alias


def check_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise RegistryError(f"bad version {version!r}: versions are 'v1', 'v2', ...")
    return version


class AliasDoc(TypedDict):
    """The content of an alias file."""

    aliases: dict[str, str]
    history: dict[str, list[str]]


class AliasFile:
    """The alias file of one model name (``name_dir/aliases.json``)."""

    def __init__(self, name_dir: Path) -> None:
        self.path = name_dir / ALIASES

    def read(self) -> AliasDoc:
        """The validated content; empty when the file does not exist yet.

        Raises
        ------
        RegistryError
            The file is not valid JSON, or an entry is not an alias name pointing at a
            version; the message says how to repair it.
        """
        path = self.path
        if not path.exists():
            return {"aliases": {}, "history": {}}
        doc = read_json(path, "alias file")
        if (not isinstance(doc, dict) or not isinstance(doc.get("aliases", {}), dict)
                or not isinstance(doc.get("history", {}), dict)):
            raise RegistryError(f"{path}: expected {{\"aliases\": {{...}}, \"history\": {{...}}}}"
                                "; fix the file or delete it and promote again")
        aliases = dict(doc.get("aliases", {}))
        history = dict(doc.get("history", {}))
        # a hand-edited file must not steer a path join (e.g. "../../etc") or crash a reader
        for alias, version in aliases.items():
            if not (ALIAS_RE.fullmatch(str(alias)) and isinstance(version, str)
                    and VERSION_RE.fullmatch(version)):
                raise RegistryError(f"{path}: alias {alias!r} -> {version!r} is not an alias "
                                    "name pointing at a version ('v1', 'v2', ...); fix the "
                                    "file or delete it and promote again")
        for alias, versions in history.items():
            if not (isinstance(versions, list)
                    and all(isinstance(v, str) and VERSION_RE.fullmatch(v) for v in versions)):
                raise RegistryError(f"{path}: the history of alias {alias!r} is not a list of "
                                    "versions ('v1', 'v2', ...); fix the file or delete it and "
                                    "promote again")
        return {"aliases": aliases, "history": history}

    def write(self, doc: AliasDoc) -> None:
        """Replace the file atomically (call under :meth:`locked`)."""
        atomic_write(self.path, dumps(doc))

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise read-modify-writes of the file (threads and, on POSIX, processes)."""
        with _THREAD_LOCK:
            if fcntl is None:  # pragma: no cover - Windows
                yield
                return
            with open(self.path.with_name(".aliases.lock"), "a") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def point(self, alias: str, version: str) -> str | None:
        """Point ``alias`` at ``version``, appending it to the alias's history; returns the
        version it pointed to before. Call under :meth:`locked`."""
        doc = self.read()
        previous = doc["aliases"].get(alias)
        if previous != version:
            history = list(doc["history"].get(alias, []))
            if not history and previous is not None:
                history = [previous]  # an alias written without history
            history.append(version)
            doc["aliases"][alias] = version
            doc["history"][alias] = history
            self.write(doc)
        return previous
