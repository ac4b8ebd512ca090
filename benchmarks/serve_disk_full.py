"""The full-disk scenario of the service, measured; prints one JSON object.

The service's state directory (queue and logs) sits on a small tmpfs. The consumer is held
back (as one that fell behind would be) while 100-event batches are posted until the disk
refuses them, then the last free bytes are taken, so the consumer fails to write the log.
The script records the refusals, what ``/readyz`` says while the consumer fails, then gives
the disk room again and measures how long until every acknowledged event is applied, and
checks the log and the state hold each acknowledged event once, without a restart.

Needs root (it mounts a tmpfs).

usage: python benchmarks/serve_disk_full.py --registry streamrec-quickstart/registry
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from streamrec.serve.demo import ServerThread, free_port
from streamrec.serve.settings import Settings


def _fill(directory: Path) -> None:
    with open(directory / "filler", "ab", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError:
            pass


def run(registry: Path, disk: Path, size_mb: int) -> dict[str, object]:
    settings = Settings(registry=registry, state_dir=disk / "state", port=free_port(),
                        reload_interval_s=0)
    acked: dict[str, int] = {}
    codes: Counter[int] = Counter()
    with ServerThread(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        svc = srv.app.state.service
        items = [int(x) for x in svc.engine.state.items.ids[:50]]
        retry_after = None
        with svc.apply_lock:
            for b in range(100_000):
                events = [{"event_id": f"e{b}-{i}", "user_id": 10**7 + (b * 100 + i) % 37,
                           "item_id": items[i % 50], "event": "play", "value": 0.5}
                          for i in range(100)]
                r = http.post("/v1/events", json={"events": events})
                codes[r.status_code] += 1
                if r.status_code == 202:
                    acked |= {e["event_id"]: e["user_id"] for e in events}
                else:
                    retry_after = r.headers.get("retry-after")
                    if codes[503] >= 3:
                        break
            _fill(disk)
        while http.get("/readyz").status_code != 503:
            time.sleep(0.05)
        failing = http.get("/readyz").json()
        time.sleep(5)
        later = http.get("/readyz")
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        t0 = time.monotonic()
        while not ((r := http.get("/readyz")).status_code == 200 and r.json()["queue_lag"] == 0):
            time.sleep(0.1)
        drained_s = time.monotonic() - t0
        logged = set(svc.event_log.read()["event_id"].to_list())
        st = svc.engine.state
        wrong = sum(int(st.u_n_ev[st.users.row(u)]) != n
                    for u, n in Counter(acked.values()).items())
    return {"disk_mb": size_mb, "post_statuses": dict(codes), "acknowledged": len(acked),
            "retry_after": retry_after, "readyz_while_failing": {
                k: failing[k] for k in ("ready", "reason", "queue_lag", "consumer_failures")},
            "readyz_5s_later": later.status_code, "drained_after_room_s": round(drained_s, 2),
            "acknowledged_missing_from_log": len(set(acked) - logged),
            "users_whose_state_count_differs": wrong}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--registry", type=Path, required=True)
    ap.add_argument("--size-mb", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk"
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs",
                        str(disk)], check=True)
        try:
            print(json.dumps(run(args.registry.resolve(), disk, args.size_mb), indent=2))
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)


if __name__ == "__main__":
    main()
