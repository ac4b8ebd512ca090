"""What the model registry raises (:mod:`streamrec.serve.registry` re-exports these)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["RegistryError", "TamperedArtifactError", "UnloadableVersionError"]


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
