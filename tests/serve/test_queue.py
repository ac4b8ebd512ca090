"""Durable event queue (SQLite, Redis Streams) and the training event log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from streamrec.serve.demo import free_port
from streamrec.serve.eventlog import EVENT_SCHEMA, EventLog
from streamrec.serve.queue import (
    AppendResult,
    EventQueue,
    QueueError,
    RedisQueue,
    SQLiteQueue,
    open_queue,
)
from tests._paths import SRC
from tests.serve._redis import RedisServer


def make_event(i: int, **over: Any) -> dict[str, Any]:
    """A valid event record; ``i`` makes the event id unique."""
    event: dict[str, Any] = {
        "event_id": f"e{i}",
        "user_id": i % 7,
        "item_id": 1000 + i,
        "event": "play",
        "timestamp": 1_700_000_000 + i,
        "session_id": i // 3 if i % 2 else None,
        "value": 0.25 * i if i % 3 else None,
        "platform": "web" if i % 2 else None,
    }
    event.update(over)
    return event


QueueFactory = Callable[..., EventQueue]


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def location(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict]:
    """(url, constructor kwargs) of a fresh queue of ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}", {}
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url, {"stream": f"test:{uuid.uuid4().hex}"}


@pytest.fixture
def make_queue(location: tuple[str, dict]) -> Iterator[QueueFactory]:
    url, kw = location
    opened: list[EventQueue] = []

    def make(**extra: Any) -> EventQueue:
        q = open_queue(url, **{**kw, **extra})
        opened.append(q)
        return q

    yield make
    for q in opened:
        q.close()


def drain(q: EventQueue, ack: bool = True) -> list[dict]:
    out: list[dict] = []
    while batch := q.read(max_events=250):
        out.extend(d.event for d in batch)
        if ack:
            q.ack([d.id for d in batch])
    return out


# --------------------------------------------------------------------------- queue


def test_round_trip_exact(make_queue: QueueFactory) -> None:
    q = make_queue()
    events = [make_event(i) for i in range(20)]
    events[3]["value"] = 1.0  # a float that looks like an int stays a float
    assert q.append(events) == AppendResult(accepted=20, duplicates=0)
    got = q.read(max_events=100)
    assert [d.event for d in got] == events
    for d, e in zip(got, events, strict=True):
        assert {k: type(v) for k, v in d.event.items()} == {k: type(v) for k, v in e.items()}
    assert type(got[3].event["value"]) is float and type(got[0].event["user_id"]) is int
    assert all(isinstance(d.id, str) for d in got)
    q.ack([d.id for d in got])
    assert q.read() == []
    assert q.lag() == 0


def test_idempotent_across_and_within_batches(make_queue: QueueFactory) -> None:
    q = make_queue()
    assert q.append([make_event(i) for i in range(5)]) == AppendResult(5, 0)
    batch = [make_event(3), make_event(5), make_event(5), make_event(6), make_event(0)]
    assert q.append(batch) == AppendResult(accepted=2, duplicates=3)
    ids = [e["event_id"] for e in drain(q)]
    assert ids == [f"e{i}" for i in range(7)]
    # acked events stay deduplicated, also for a new queue on the same storage
    q.close()
    q2 = make_queue()
    assert q2.append([make_event(1), make_event(7)]) == AppendResult(1, 1)
    assert q2.append([]) == AppendResult(0, 0)


def test_lag_order_and_stats(make_queue: QueueFactory) -> None:
    q = make_queue()
    assert q.lag() == 0
    for b in range(4):
        q.append([make_event(10 * b + i) for i in range(10)])
    assert q.lag() == 40
    first = q.read(max_events=15)
    assert [d.event["event_id"] for d in first] == [f"e{i}" for i in range(15)]
    assert q.lag() == 40  # delivered but not acked still counts
    q.ack([d.id for d in first[:10]])
    assert q.lag() == 30
    rest = q.read(max_events=1000)  # this instance does not hand out un-acked ones twice
    assert [d.event["event_id"] for d in rest] == [f"e{i}" for i in range(15, 40)]
    q.ack([d.id for d in first[10:]] + [d.id for d in rest])
    assert q.lag() == 0
    stats = q.stats()
    assert stats["appended"] == 40 and stats["lag"] == 0
    assert stats["backend"] in {"sqlite", "redis"}


def test_read_blocks_until_timeout(make_queue: QueueFactory) -> None:
    q = make_queue()
    t0 = time.monotonic()
    assert q.read(block_ms=150) == []
    assert 0.1 <= time.monotonic() - t0 < 2.0


def test_unacked_redelivered_after_reopen(make_queue: QueueFactory) -> None:
    q = make_queue()
    q.append([make_event(i) for i in range(10)])
    acked = q.read(max_events=3)
    q.ack([d.id for d in acked])
    crashed = q.read(max_events=4)  # consumer "crashes" before acking these
    q.close()
    with pytest.raises(QueueError, match="closed"):
        q.read()

    q2 = make_queue()
    q2.append([make_event(10), make_event(11)])
    again = q2.read(max_events=2)
    assert [d.event for d in again] == [d.event for d in crashed[:2]]
    rest = drain(q2)
    assert [e["event_id"] for e in rest] == [f"e{i}" for i in range(5, 12)]
    q2.ack([d.id for d in again])
    assert q2.lag() == 0


def test_bad_events_rejected_whole_batch(make_queue: QueueFactory) -> None:
    q = make_queue()
    with pytest.raises(ValueError, match="event 1 .*event_id"):
        q.append([make_event(0), {"user_id": 1}])
    with pytest.raises(ValueError, match="JSON"):
        q.append([make_event(0, value=float("nan"))])
    with pytest.raises(TypeError, match="sequence"):
        q.append(make_event(0))  # type: ignore[arg-type]
    assert q.lag() == 0


CHILD = textwrap.dedent(
    """
    import sys
    from streamrec.serve.queue import open_queue
    url, stream = sys.argv[1], sys.argv[2]
    kw = {"stream": stream} if url.startswith("redis") else {}
    q = open_queue(url, **kw)
    n = 0
    for b in range(100000):
        q.append([{"event_id": f"k{b}-{i}", "user_id": b, "item_id": i, "event": "play",
                   "timestamp": 0, "session_id": None, "value": None, "platform": None}
                  for i in range(50)])
        n += 50
        print(f"ok {n}", flush=True)
    """
)


def test_sigkill_durability(location: tuple[str, dict], backend: str,
                            request: pytest.FixtureRequest) -> None:
    url, kw = location
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, kw.get("stream", "")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    assert child.stdout is not None
    acked = 0
    for line in child.stdout:
        acked = int(line.split()[1])
        if acked >= 1000:
            break
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=10)
    for line in out.splitlines():  # acks printed before the kill landed
        if line.startswith("ok "):
            acked = max(acked, int(line.split()[1]))
    assert acked >= 1000, err
    expected = {f"k{n // 50}-{n % 50}" for n in range(acked)}

    with open_queue(url, **kw) as q:
        ids = {e["event_id"] for e in drain(q, ack=False)}
    assert expected <= ids

    if backend == "redis":  # the server itself dies and comes back from its AOF
        server: RedisServer = request.getfixturevalue("redis_server")
        server.kill()
        server.start()
        with open_queue(server.url, **kw) as q:
            ids = {e["event_id"] for e in drain(q, ack=False)}
            assert expected <= ids
            assert q.append([{"event_id": "k0-0"}]) == AppendResult(0, 1)


def test_open_queue_urls(tmp_path: Path) -> None:
    with open_queue(str(tmp_path / "plain.db")) as q:
        assert isinstance(q, SQLiteQueue) and q.path == str(tmp_path / "plain.db")
    with open_queue(f"sqlite:///{tmp_path}/a/b.db", consumer="c") as q:
        assert isinstance(q, SQLiteQueue) and q.path == f"{tmp_path}/a/b.db"
        assert q.consumer == "c"
    with open_queue(tmp_path / "p.db") as q:
        assert isinstance(q, SQLiteQueue)
    for bad in ["kafka://host/topic", "", "sqlite:///", "http://x"]:
        with pytest.raises(ValueError, match=r"sqlite:///.*redis://"):
            open_queue(bad)
    with pytest.raises(ValueError, match="synchronous"):
        SQLiteQueue(tmp_path / "s.db", synchronous="SOMETIMES")
    with pytest.raises(QueueError, match="cannot open SQLite queue"):
        SQLiteQueue(tmp_path / "plain.db" / "not-a-dir.db")


def test_open_queue_unreachable_redis() -> None:
    pytest.importorskip("redis")
    url = f"redis://user:secret@127.0.0.1:{free_port()}/0"
    t0 = time.monotonic()
    with pytest.raises(QueueError) as info:
        open_queue(url, connect_timeout_s=0.5)
    assert time.monotonic() - t0 < 3
    msg = str(info.value)
    assert "cannot reach redis at" in msg and "is redis-server running?" in msg
    assert "sqlite:///" in msg and "secret" not in msg


def test_redis_queue_is_event_queue(redis_server: RedisServer) -> None:
    stream = f"test:{uuid.uuid4().hex}"
    with RedisQueue(redis_server.url, stream=stream, maxlen=10_000, dedupe_ttl_s=60) as q:
        assert q.append([make_event(i) for i in range(3)]) == AppendResult(3, 0)
        s = q.stats()
        assert s["backend"] == "redis" and s["stream"] == stream and s["lag"] == 3


# --------------------------------------------------------------------------- event log


def test_eventlog_round_trip_dtypes(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log")
    empty = log.read()
    assert empty.height == 0 and empty.schema == pl.Schema(EVENT_SCHEMA)
    events = [make_event(i) for i in range(6)]
    events[0]["value"] = 2  # an int value is read as a float
    del events[1]["platform"]  # missing -> null
    events[2]["extra"] = "dropped"
    log.append(events[:4])
    log.append(events[4:])
    files = log.files()
    assert len(files) == 1 and files[0].name.startswith("events-") and files[0].suffix == ".jsonl"
    df = log.read()
    assert list(df.columns) == list(EVENT_SCHEMA)
    assert df.schema == pl.Schema(EVENT_SCHEMA)
    assert df["event_id"].to_list() == [e["event_id"] for e in events]
    assert df["value"].to_list()[:3] == [2.0, 0.25, 0.5]
    assert df["platform"].to_list()[:2] == [None, None]
    assert df["session_id"].to_list() == [e["session_id"] for e in events]
    assert len(log) == 6


def test_eventlog_dedupe_torn_and_ids(tmp_path: Path) -> None:
    day = [1_700_000_000.0]
    log = EventLog(tmp_path, clock=lambda: day[0])
    log.append([make_event(i) for i in range(5)])
    log.append([make_event(3, user_id=99), make_event(5)])  # e3 is a re-delivery
    day[0] += 86400
    log.append([make_event(6), make_event(4)])
    assert [p.name for p in log.files()] == ["events-20231114.jsonl", "events-20231115.jsonl"]

    df = log.read()
    assert df["event_id"].to_list() == [f"e{i}" for i in range(7)]
    assert df.filter(pl.col("event_id") == "e3")["user_id"].item() == 3  # first kept
    assert log.stats["duplicates"] == 2 and log.stats["torn_lines"] == 0
    assert len(log) == 9

    last = log.files()[-1]
    with open(last, "ab") as fh:  # a writer killed mid-line
        fh.write(b'{"event_id":"e7","user_id":1,"ite')
    df = log.read()
    assert df.height == 7 and log.stats["torn_lines"] == 1
    assert log.event_ids() == {f"e{i}" for i in range(7)}
    assert log.event_ids(last_n=3) == {"e6", "e4", "e5"}
    assert log.event_ids(last_n=0) == set()

    log.append([make_event(8)])  # the torn line does not swallow the next event
    df = log.read()
    assert df["event_id"].to_list()[-1] == "e8" and log.stats["torn_lines"] == 1
    assert "e8" in log.event_ids(last_n=1)

    with open(last, "ab") as fh:  # complete JSON without its newline is kept
        fh.write(json.dumps(make_event(9)).encode())
    assert log.read()["event_id"].to_list()[-1] == "e9"
    assert log.stats["torn_lines"] == 1  # the repaired mid-file torn line


def test_eventlog_bad_typed_line_is_skipped(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append([make_event(0), make_event(1, user_id="not-an-int"), make_event(2)])
    df = log.read()
    assert df["event_id"].to_list() == ["e0", "e2"]
    assert log.stats["torn_lines"] == 1
    with pytest.raises(ValueError, match="JSON"):
        log.append([make_event(3, value=float("inf"))])


def test_concurrent_producers_and_consumer(make_queue: QueueFactory) -> None:
    import threading

    q = make_queue()
    seen: list[str] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() or q.lag():
            batch = q.read(max_events=100, block_ms=20)
            seen.extend(d.event["event_id"] for d in batch)
            q.ack([d.id for d in batch])

    def produce(t: int) -> None:
        for b in range(10):
            q.append([make_event(1000 * t + 20 * b + i) for i in range(20)])

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    stop.set()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert sorted(seen) == sorted(f"e{1000 * t + k}" for t in range(4) for k in range(200))
