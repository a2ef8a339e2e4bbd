"""Latency of the CRD admission screen over CDS Hooks against gunicorn on loopback: p50/p99 per hook call.

    python bench/cds_hooks.py [--requests 400] [--concurrency 1 4] [--workers N]

Starts gunicorn (ur_service.gunicorn_conf) with a fresh SQLite audit store and a reviewer key, warms up, then sends
encounter-start hook calls (examples/cds-hook-encounter-start.json, certified, and -pend.json, which pends with
31 pieces of documentation and a questionnaire link) from each number of client threads in turn, closed loop.
Prints p50/p99 of each against the 500 ms a card must arrive within (issue #19). A CDS client waits for the card
before it goes on, so concurrency 1 is the latency a clinician sees; more threads show it under load. Not part of
the test suite: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from load import free_port, start_server, stop_server  # noqa: E402  (bench/ is not a package)

PATH = "/cds-services/ur-admission-encounter-start"
BODIES = {"certified": ROOT / "examples" / "cds-hook-encounter-start.json",
          "pended": ROOT / "examples" / "cds-hook-encounter-start-pend.json"}
BAR_MS = 500


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def hammer(port: int, key: str, body: bytes, requests: int, concurrency: int) -> tuple[list[float], dict[int, int]]:
    """Send ``requests`` hook calls from ``concurrency`` threads (keep-alive); latencies of 200s, and statuses."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock, left = threading.Lock(), [requests]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if left[0] <= 0:
                    break
                left[0] -= 1
            started = time.perf_counter()
            conn.request("POST", PATH, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            elapsed = time.perf_counter() - started
            with lock:
                statuses[res.status] = statuses.get(res.status, 0) + 1
                if res.status == 200 and json.loads(data)["cards"]:
                    latencies.append(elapsed)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ur_service.auth import create_key
    from ur_service.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="ur-cds-"))
    database = f"sqlite:///{tmp}/audit.db"
    store = Store(database)
    key = create_key(store, "reviewer", "cds-bench")
    store.close()
    port = free_port()
    proc = start_server(database, port, args.workers, tmp / "gunicorn.log")
    try:
        print(f"POST {PATH} against gunicorn, {args.workers} workers, {os.cpu_count()} cores; bar {BAR_MS} ms")
        for name, path in BODIES.items():
            body = path.read_bytes()
            hammer(port, key, body, 30, 2)  # warm-up: every worker loads its engine
            for concurrency in args.concurrency:
                started = time.perf_counter()
                latencies, statuses = hammer(port, key, body, args.requests, concurrency)
                seconds = time.perf_counter() - started
                p50, p99 = percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000
                print(f"{name:9} concurrency {concurrency}: {len(latencies)} cards in {seconds:.1f} s "
                      f"({len(latencies) / seconds:.0f}/s), statuses {statuses}; p50 {p50:.1f} ms  p99 {p99:.1f} ms"
                      f"  {'within' if p99 <= BAR_MS else 'OVER'} the bar")
    finally:
        stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
