"""The model registry's file handling: digests, fingerprints, durable and atomic writes,
hashed copies, and the checks that keep pickles and unreadable arrays out.

Every write the registry makes is fsynced (and its directory entry too) before it counts,
so a crash leaves either the old state or the new one, never half of a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from streamrec.serve.registry_errors import RegistryError, TamperedArtifactError

__all__ = [
    "array_problem",
    "atomic_write",
    "check_artifacts",
    "copy_hashed",
    "copy_into",
    "dumps",
    "fingerprint_arrays",
    "fsync_dir",
    "read_json",
    "sha256_file",
    "source_files",
    "walk_files",
    "write_synced",
]

CHUNK = 1 << 20
#: file suffixes refused at registration: pickles (torch ``.pt``/``.pth`` files are pickles)
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".joblib"})


def sha256_file(path: str | Path, chunk_size: int = CHUNK) -> str:
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
        h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def jsonable(x: object) -> object:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, set | frozenset):
        return sorted(x)
    raise TypeError(f"a value of type {type(x).__name__} is not JSON serialisable")


def dumps(doc: object) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=jsonable, allow_nan=False) + "\n"


def fsync_dir(path: Path) -> None:
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


def write_synced(path: Path, text: str, *, exclusive: bool = False) -> None:
    with open(path, "x" if exclusive else "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, fsync it and ``os.replace`` it."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        write_synced(tmp, text, exclusive=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


def copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new file ``dst`` (fsynced) and return the sha256 of the bytes copied."""
    h = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(CHUNK):
            h.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return h.hexdigest()


def walk_files(root: Path) -> list[Path]:
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


def array_problem(path: Path) -> str | None:
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


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{path}: the {what} is not valid JSON ({exc}); restore it from a "
                            "backup or re-register the model") from exc


def source_files(src: Path) -> list[tuple[Path, str]]:
    """The files to register from ``src`` (a directory or one file), each with its path
    relative to ``src``; refuses a missing or empty source and pickles."""
    if not src.exists():
        raise RegistryError(f"{src}: no such file or directory; pass the directory written "
                            "by Model.save(dir) or a single artifact file")
    if src.is_dir():
        files = [(p, p.relative_to(src).as_posix()) for p in walk_files(src)]
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


def copy_into(files: list[tuple[Path, str]], dest: Path) -> dict[str, str]:
    """Copy (hashing as it goes) and check arrays; returns {relative path: sha256}."""
    dest.mkdir(parents=True)
    hashes: dict[str, str] = {}
    dirs = {dest, dest.parent}
    for path, rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        dirs.add(target.parent)
        hashes[rel] = copy_hashed(path, target)
        problem = array_problem(target)
        if problem is not None:
            raise RegistryError(f"{path}: {problem}; re-save the model with numeric arrays")
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)
    return hashes


def check_artifacts(art: Path, files: dict[str, str], manifest_file: Path, name: str,
                    ) -> None:
    """Every file of ``files`` (relative path -> sha256, from ``manifest_file``) is under
    ``art`` with that digest and loads without pickle, and no other file is there.

    Raises
    ------
    TamperedArtifactError
        Naming the file at fault (and how to repair ``name``'s entry).
    """
    present = ({p.relative_to(art).as_posix() for p in walk_files(art)}
               if art.is_dir() else set())
    for rel in sorted(files):
        path = art / rel
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise TamperedArtifactError(f"{manifest_file}: file entry {rel!r} points outside "
                                        f"{art}; re-register the model", manifest_file)
        if rel not in present:
            raise TamperedArtifactError(
                f"{path}: listed in {manifest_file} but missing; restore it or roll back "
                f"(`streamrec registry rollback {name}`)", path)
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
                f"or roll back (`streamrec registry rollback {name}`)", path)
        problem = array_problem(path)
        if problem is not None:
            raise TamperedArtifactError(f"{path}: {problem}", path)
