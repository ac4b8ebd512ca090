"""The versioned model registry: manifests, versions, aliases, integrity, CLI."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streamrec.cli.main import app
from streamrec.data.interactions import Interactions
from streamrec.models.base import Model
from streamrec.models.zoo import create
from streamrec.serve.registry import (
    ModelRegistry,
    ModelVersion,
    RegistryError,
    TamperedArtifactError,
    fingerprint_arrays,
    sha256_file,
)

runner = CliRunner()


def _train() -> Interactions:
    users = np.array([0, 0, 1, 1, 2, 2, 3, 3, 3], dtype=np.int32)
    items = np.array([0, 1, 1, 2, 2, 3, 0, 1, 4], dtype=np.int32)
    return Interactions.from_arrays(users, items, timestamps=np.arange(9) * 86_400,
                                    n_users=4, n_items=5)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model = create("pop", recency_half_life_days=7.0).fit(_train())
    out = tmp_path / "saved_pop"
    model.save(out)
    return out


@pytest.fixture
def reg(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "registry")


def _no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if ".tmp" in p.name]


# ------------------------------------------------------------------------ register
def test_register_writes_manifest_and_copies(reg: ModelRegistry, saved: Path):
    assert not reg.root.exists()  # nothing created before register
    train = _train()
    fp = fingerprint_arrays(train.users, train.items, train.timestamps)
    mv = reg.register("pop", saved, metrics={"ndcg@10": 0.25, "recall@10": np.float32(0.5)},
                      data_fingerprint=fp, split={"protocol": "temporal_user"},
                      description="tiny", extra={"seed": 0})
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version, mv.number) == ("pop", "v1", 1)
    assert mv.path == reg.root / "pop" / "v1" and mv.artifacts == mv.path / "artifacts"
    on_disk = json.loads((mv.path / "manifest.json").read_text())
    assert on_disk == mv.manifest
    assert on_disk["format"] == 1 and on_disk["name"] == "pop" and on_disk["version"] == "v1"
    assert on_disk["model"]["class"] == "streamrec.models.popularity.Popularity"
    assert on_disk["model"]["registry_name"] == "pop" and on_disk["model"]["kind"] == "ranking"
    assert on_disk["model"]["params"] == {"recency_half_life_days": 7.0}
    assert mv.model_info()["registry_name"] == "pop"
    assert on_disk["metrics"] == {"ndcg@10": 0.25, "recall@10": 0.5}
    assert on_disk["data_fingerprint"] == fp and len(fp) == 64
    assert on_disk["split"] == {"protocol": "temporal_user"}
    assert on_disk["description"] == "tiny" and on_disk["extra"] == {"seed": 0}
    assert on_disk["created"].endswith("+00:00") and on_disk["created_unix"] > 0
    assert set(on_disk["files"]) == {"manifest.json", "arrays.npz"}
    for rel, digest in on_disk["files"].items():
        assert digest == sha256_file(saved / rel) == sha256_file(mv.artifacts / rel)
    assert _no_temp_files(reg.root)


def test_register_nested_tree_and_single_file(reg: ModelRegistry, saved: Path, tmp_path: Path):
    (saved / "extra" / "deep").mkdir(parents=True)
    (saved / "extra" / "deep" / "vocab.json").write_text('{"a": 1}')
    mv = reg.register("pop", saved)
    assert "extra/deep/vocab.json" in mv.manifest["files"]
    reg.verify(mv)
    single = tmp_path / "emb.npz"
    np.savez(single, emb=np.ones((3, 2), np.float32))
    mv2 = reg.register("emb", single)
    assert mv2.manifest["model"] is None and list(mv2.manifest["files"]) == ["emb.npz"]
    reg.verify(mv2)


def test_versions_increase_and_skip_deleted(reg: ModelRegistry, saved: Path):
    got = [reg.register("pop", saved).version for _ in range(3)]
    assert got == ["v1", "v2", "v3"]
    assert [mv.version for mv in reg.versions("pop")] == ["v1", "v2", "v3"]
    shutil.rmtree(reg.root / "pop" / "v2")
    assert reg.register("pop", saved).version == "v4"
    assert [mv.number for mv in reg.versions("pop")] == [1, 3, 4]
    assert reg.names() == ["pop"]
    assert reg.resolve("pop", "latest").version == "v4"


def test_concurrent_registers_get_distinct_versions(reg: ModelRegistry, saved: Path):
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        try:
            barrier.wait()
            results.append(reg.register("pop", saved).version)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == ["v1", "v2", "v3", "v4"]
    for mv in reg.versions("pop"):
        assert mv.manifest["version"] == mv.version
        reg.verify(mv)
    assert _no_temp_files(reg.root)


def test_lost_rename_race_takes_next_number(reg: ModelRegistry, saved: Path, monkeypatch):
    reg.register("pop", saved)
    stale = iter([1])  # the first read of the next number is stale: v1 is already taken
    real = ModelRegistry._next_number
    monkeypatch.setattr(reg, "_next_number", lambda d: next(stale, None) or real(reg, d))
    mv = reg.register("pop", saved)
    assert mv.version == "v2" and mv.manifest["version"] == "v2"
    assert json.loads((mv.path / "manifest.json").read_text())["version"] == "v2"
    reg.verify(mv)
    assert _no_temp_files(reg.root)


def test_register_refuses_pickles_and_object_arrays(reg: ModelRegistry, saved: Path,
                                                    tmp_path: Path):
    for suffix in (".pkl", ".pickle", ".pt", ".pth", ".joblib"):
        bad = tmp_path / f"bad{suffix}"
        bad.mkdir()
        (bad / f"model{suffix}").write_bytes(b"not really a pickle")
        with pytest.raises(RegistryError, match="never pickle"):
            reg.register("bad", bad)
    obj = tmp_path / "obj"
    obj.mkdir()
    np.savez(obj / "arrays.npz", ids=np.array(["a", None], dtype=object))
    with pytest.raises(RegistryError, match="arrays.npz"):
        reg.register("obj", obj)
    with pytest.raises(RegistryError, match="no such file"):
        reg.register("pop", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match="empty"):
        reg.register("pop", tmp_path / "empty")
    with pytest.raises(RegistryError, match="metric"):
        reg.register("pop", saved, metrics={"ndcg": float("nan")})
    assert reg.names() == []  # nothing half-registered
    assert _no_temp_files(reg.root)


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "-x", "a b", "x" * 200])
def test_bad_names_rejected(reg: ModelRegistry, saved: Path, name: str):
    with pytest.raises(RegistryError, match="bad model name"):
        reg.register(name, saved)


@pytest.mark.parametrize("alias", ["Production", "v2", "latest", "1x", "a/b", ""])
def test_bad_aliases_rejected(reg: ModelRegistry, saved: Path, alias: str):
    reg.register("pop", saved)
    with pytest.raises(RegistryError, match="bad alias"):
        reg.set_alias("pop", alias, "v1")


# ------------------------------------------------------------------------ aliases
def test_aliases_promote_rollback(reg: ModelRegistry, saved: Path):
    for _ in range(3):
        reg.register("pop", saved)
    assert reg.aliases("pop") == {}
    assert reg.promote("pop", "v1") is None
    assert reg.promote("pop", "v2") == "v1"
    assert reg.promote("pop", "v2") == "v2"  # no-op: history unchanged
    assert reg.promote("pop", "v3") == "v2"
    reg.set_alias("pop", "staging", "v3")
    assert reg.aliases("pop") == {"production": "v3", "staging": "v3"}
    doc = json.loads((reg.root / "pop" / "aliases.json").read_text())
    assert doc["history"]["production"] == ["v1", "v2", "v3"]
    assert reg.resolve("pop").version == "v3"
    assert reg.resolve("pop", "v1").version == "v1"

    assert reg.rollback("pop") == "v2"
    assert reg.resolve("pop").version == "v2"
    assert reg.rollback("pop") == "v1"
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback("pop")
    assert reg.aliases("pop")["production"] == "v1"  # a failed rollback changes nothing
    with pytest.raises(RegistryError, match="no previous version"):
        reg.rollback("pop", "staging")
    with pytest.raises(RegistryError, match="no alias 'canary'"):
        reg.rollback("pop", "canary")
    assert reg.delete_alias("pop", "staging") == "v3"
    assert reg.aliases("pop") == {"production": "v1"}
    assert _no_temp_files(reg.root)


def test_register_with_alias(reg: ModelRegistry, saved: Path):
    mv = reg.register("pop", saved, alias="staging")
    assert reg.aliases("pop") == {"staging": mv.version}


def test_resolve_errors_list_what_exists(reg: ModelRegistry, saved: Path):
    with pytest.raises(RegistryError, match="no model named 'pop'"):
        reg.resolve("pop")
    reg.register("pop", saved)
    reg.register("pop", saved)
    reg.promote("pop", "v2", alias="staging")
    with pytest.raises(RegistryError, match=r"versions: v1, v2; aliases: staging -> v2"):
        reg.resolve("pop", "production")
    with pytest.raises(RegistryError, match="no version 'v7'"):
        reg.resolve("pop", "v7")
    with pytest.raises(RegistryError, match="no version 'v9'"):
        reg.promote("pop", "v9")
    with pytest.raises(RegistryError, match="bad version"):
        reg.promote("pop", "2")
    with pytest.raises(RegistryError, match="models: pop"):
        reg.versions("other")


def test_alias_writes_are_atomic(reg: ModelRegistry, saved: Path, monkeypatch):
    reg.register("pop", saved)
    reg.register("pop", saved)
    reg.promote("pop", "v1")
    before = (reg.root / "pop" / "aliases.json").read_text()

    import streamrec.serve.registry as registry_module

    def boom(src, dst):  # the crash happens between writing the temp file and replacing
        raise OSError("simulated crash")

    monkeypatch.setattr(registry_module.os, "replace", boom)
    with pytest.raises(OSError, match="simulated crash"):
        reg.promote("pop", "v2")
    monkeypatch.undo()
    assert (reg.root / "pop" / "aliases.json").read_text() == before  # old file intact
    assert reg.aliases("pop") == {"production": "v1"}
    assert _no_temp_files(reg.root)


# ------------------------------------------------------------------------ integrity
def test_load_path_gives_identical_scores(reg: ModelRegistry, saved: Path):
    original = Model.load(saved)
    reg.register("pop", saved, alias="production")
    path = reg.load_path("pop")
    assert path == reg.root / "pop" / "v1" / "artifacts"
    users = np.arange(5)
    np.testing.assert_array_equal(Model.load(path).score(users), original.score(users))
    np.testing.assert_array_equal(reg.load_model("pop").score(users), original.score(users))


def test_tampered_byte_detected(reg: ModelRegistry, saved: Path):
    mv = reg.register("pop", saved, alias="production")
    target = mv.artifacts / "arrays.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(TamperedArtifactError, match="arrays.npz") as info:
        reg.verify(mv)
    assert info.value.path == target and "sha256" in str(info.value)
    with pytest.raises(TamperedArtifactError):
        reg.load_path("pop")


def test_extra_and_missing_files_detected(reg: ModelRegistry, saved: Path):
    mv = reg.register("pop", saved)
    (mv.artifacts / "sneaky.pkl").write_bytes(b"x")
    with pytest.raises(TamperedArtifactError, match="sneaky.pkl.*not listed"):
        reg.verify(mv)
    (mv.artifacts / "sneaky.pkl").unlink()
    reg.verify(mv)
    (mv.artifacts / "manifest.json").unlink()
    with pytest.raises(TamperedArtifactError, match="manifest.json.*missing"):
        reg.verify(mv)


def test_object_dtype_npz_refused_on_verify(reg: ModelRegistry, saved: Path):
    mv = reg.register("pop", saved)
    target = mv.artifacts / "arrays.npz"
    np.savez(target, popularity_=np.array([1, "x"], dtype=object))
    # even with a manifest rewritten to match, object arrays are refused
    manifest = dict(mv.manifest)
    manifest["files"] = dict(manifest["files"], **{"arrays.npz": sha256_file(target)})
    (mv.path / "manifest.json").write_text(json.dumps(manifest))
    forged = reg.resolve("pop", "v1")
    with pytest.raises(TamperedArtifactError, match="arrays.npz.*pickle"):
        reg.verify(forged)


def test_fingerprint_arrays():
    a = np.arange(6, dtype=np.int32)
    assert fingerprint_arrays(a) == fingerprint_arrays(a.copy())
    assert fingerprint_arrays(a) != fingerprint_arrays(a.astype(np.int64))
    assert fingerprint_arrays(a) != fingerprint_arrays(a.reshape(2, 3))
    assert fingerprint_arrays(a, a) != fingerprint_arrays(a)
    f = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    assert fingerprint_arrays(f) == fingerprint_arrays(np.ascontiguousarray(f))
    with pytest.raises(TypeError, match="object"):
        fingerprint_arrays(np.array([None]))


# ------------------------------------------------------------------------ CLI
def _cli(*args: str, code: int = 0):
    res = runner.invoke(app, ["registry", *args])
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    return res


def test_cli_list_show_promote_rollback_verify(reg: ModelRegistry, saved: Path):
    root = str(reg.root)
    reg.register("pop", saved, metrics={"ndcg@10": 0.25, "hr@10": 0.5, "mrr": 0.1, "x": 1.0})
    reg.register("pop", saved)
    assert "Usage" in _cli("--help").output

    _cli("promote", "pop", "v1", "--registry", root)
    out = _cli("promote", "pop", "v2", "--registry", root).output
    assert "v1 -> v2" in out
    out = _cli("list", "--registry", root).output
    assert "pop" in out and "v1" in out and "v2" in out and "production" in out
    assert "Popularity" in out and "ndcg@10" in out
    assert "x=" not in out  # first three metrics only
    _cli("list", "--registry", root, "--name", "pop")

    shown = json.loads(_cli("show", "pop", "v1", "--registry", root).stdout)
    assert shown["version"] == "v1" and shown["model"]["registry_name"] == "pop"
    assert json.loads(_cli("show", "pop", "--registry", root).stdout)["version"] == "v2"

    assert "ok" in _cli("verify", "pop", "--registry", root).output
    out = _cli("rollback", "pop", "--registry", root).output
    assert "v2 -> v1" in out
    assert reg.aliases("pop") == {"production": "v1"}
    out = _cli("rollback", "pop", "--registry", root, code=2).output
    assert "no previous version" in out

    target = reg.resolve("pop", "v1").artifacts / "arrays.npz"
    data = bytearray(target.read_bytes())
    data[-10] ^= 0x01
    target.write_bytes(bytes(data))
    out = _cli("verify", "pop", "v1", "--registry", root, code=1).output
    assert "tampered" in out and "arrays.npz" in out
    _cli("verify", "pop", "v2", "--registry", root)


def test_cli_errors_exit_2(reg: ModelRegistry, saved: Path, tmp_path: Path):
    root = str(reg.root)
    out = _cli("list", "--registry", str(tmp_path / "nope"), code=2).output
    assert "no such registry" in out
    reg.register("pop", saved)
    assert "no alias 'production'" in _cli("show", "pop", "--registry", root, code=2).output
    assert "no model named 'nah'" in _cli("verify", "nah", "--registry", root, code=2).output
    assert "no version 'v5'" in _cli("promote", "pop", "v5", "--registry", root, code=2).output
    assert "bad alias" in _cli("promote", "pop", "v1", "--alias", "Prod", "--registry", root,
                               code=2).output
    assert "no model named 'zzz'" in _cli("list", "--registry", root, "--name", "zzz",
                                          code=2).output
