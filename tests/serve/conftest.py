"""Fixtures of the service tests: the tiny trained system and throwaway Redis servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.serve._redis import RedisServer, need_redis
from tests.serve._system import build_tiny_system, copy_registry, registry_snapshot


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The registry of the tiny serving system, built once per session and shared: serve
    it, read it, copy it, but never change it (a test that promotes, registers or tampers
    takes ``own_registry``). Checked unchanged when the session ends."""
    registry = build_tiny_system(tmp_path_factory.mktemp("tiny-system"))
    before = registry_snapshot(registry)
    yield registry
    after = registry_snapshot(registry)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test changed the shared tiny registry: {changed[:10]}"


@pytest.fixture
def own_registry(tiny_registry: Path, tmp_path: Path) -> Path:
    """A copy of the tiny system that this test may change."""
    return copy_registry(tiny_registry, tmp_path / "registry")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the tests of a module (each uses its own stream); skips the
    test when Redis is not installed."""
    need_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Start a fresh ``redis-server`` of this test's own (under ``tmp_path``; skips when
    Redis is not installed); every server started is stopped after the test."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        need_redis()
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        started.append(RedisServer(directory).start())
        return started[-1]

    yield start
    for server in started:
        server.stop()
