"""gunicorn on loopback: a bounded load test, metrics summed over workers, and SIGKILL mid-load losing nothing.

Every review answered 2xx was committed before the answer, so after the whole process group is killed, every
acknowledged review id must be in the store and the hash chain must verify.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import time
import urllib.request

import pytest

from conftest import ROOT
from service_support import db_url, free_port  # noqa: F401  (fixture)
from ur_service.auth import create_key
from ur_service.store import Store

spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
load = importlib.util.module_from_spec(spec)
sys.modules["bench_load"] = load  # dataclasses look their module up there
spec.loader.exec_module(load)
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture()
def server(db_url, tmp_path):  # noqa: F811
    """gunicorn (2 workers) on a fresh store; yields (url, reviewer key, process, store URL)."""
    store = Store(db_url)
    key = create_key(store, "reviewer", "load-test")
    store.close()
    port = free_port()
    proc = load.start_server(db_url, port, 2, tmp_path / "gunicorn.log")
    yield f"http://127.0.0.1:{port}", key, proc, db_url
    if proc.poll() is None:
        load.stop_server(proc)


def _stored(db: str, ids: list[str]) -> tuple[set[str], dict]:
    store = Store(db, upgrade=False)
    try:
        return {i for i in ids if store.get_review(i) is not None}, store.verify()
    finally:
        store.close()


def test_load_against_gunicorn_reports_throughput_and_latency(server, request):
    url, key, proc, db = server
    load.run_load(url, key, requests=20, concurrency=4)  # warm-up
    result = load.run_load(url, key, requests=300, concurrency=6)
    figures = result.summary()
    assert figures["statuses"] == {200: 300} and figures["errors"] == 0
    assert figures["throughput_per_s"] > 0 and figures["p50_ms"] <= figures["p99_ms"]
    found, report = _stored(db, result.acknowledged)
    assert len(set(result.acknowledged)) == 300  # each answer's own review id, read from its Location header
    assert found == set(result.acknowledged) and report["ok"]
    ARTIFACTS.mkdir(exist_ok=True)
    backend = request.node.callspec.params["db_url"]
    (ARTIFACTS / f"load-{backend}.json").write_text(json.dumps({**figures, "concurrency": 6, "workers": 2}, indent=2))
    print(f"\nload ({backend}): {figures}")
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as res:
        metrics = res.read().decode()
    total = sum(float(line.split()[-1]) for line in metrics.splitlines()
                if line.startswith('ur_reviews_total{outcome='))
    assert total == 320  # summed over both workers (multiprocess mode)
    assert "ur_review_duration_seconds_count 320.0" in metrics


def test_killing_gunicorn_mid_load_loses_no_acknowledged_review(server):
    url, key, proc, db = server
    stop = threading.Event()
    results = {}
    loader = threading.Thread(target=lambda: results.update(r=load.run_load(url, key, 5000, 6, stop=stop)))
    loader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and loader.is_alive() and _answered(url) < 60:
        time.sleep(0.05)
    assert loader.is_alive(), "the load ended before the kill; raise its request count"
    load.stop_server(proc, kill=True)  # SIGKILL the master and every worker, requests in flight
    time.sleep(0.3)
    stop.set()
    loader.join(timeout=60)
    result = results["r"]
    assert result.ok >= 60, result.summary()
    found, report = _stored(db, result.acknowledged)
    assert found == set(result.acknowledged), f"lost {len(set(result.acknowledged) - found)} acknowledged reviews"
    assert report["ok"], report["problems"]
    assert report["counts"]["reviews"] >= result.ok  # a few may be stored but never acknowledged; none lost


def _answered(url: str) -> int:
    """Reviews the server has answered so far, from its own metrics."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as res:
            text = res.read().decode()
    except OSError:
        return 0
    return int(sum(float(x.split()[-1]) for x in text.splitlines() if x.startswith("ur_reviews_total{")))


def test_a_reload_through_one_gunicorn_worker_reaches_every_worker(tmp_path):
    import shutil

    from conftest import RULES

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    db = f"sqlite:///{tmp_path}/audit.db"
    store = Store(db)
    admin = create_key(store, "rules_admin")
    store.close()
    port = free_port()
    os.environ["UR_RULES_DIR"] = str(rules)
    try:
        proc = load.start_server(db, port, 2, tmp_path / "gunicorn.log")
    finally:
        del os.environ["UR_RULES_DIR"]
    url = f"http://127.0.0.1:{port}"
    try:
        before = _digests(url, 20)
        assert len(before) == 1
        path = rules / "critical-care.yaml"
        path.write_text(path.read_text().replace("Only life support", "Only the life support"))
        req = urllib.request.Request(f"{url}/v1/admin/reload", method="POST",
                                     headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(req, timeout=60) as res:
            wanted = json.load(res)["digest"]
        time.sleep(1.0)  # RELOAD_POLL_SECONDS, and the follower's load
        deadline = time.monotonic() + 30
        while _digests(url, 20) != {wanted} and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _digests(url, 20) == {wanted}
    finally:
        load.stop_server(proc)
    followed = [json.loads(x) for x in (tmp_path / "gunicorn.log").read_text().splitlines()
                if '"rules reload followed"' in x]
    assert followed and all(x["ok"] and x["digest"] == wanted for x in followed)  # the other worker, by the log


def _digests(url: str, n: int) -> set[str]:
    """The rule digests that n health checks see, four at a time (so both workers answer some)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(_):
        with urllib.request.urlopen(f"{url}/healthz", timeout=30) as res:
            return json.load(res)["rules"]["digest"]

    with ThreadPoolExecutor(4) as pool:
        return set(pool.map(one, range(n)))


def _workers(server_pid: int) -> list[int]:
    """The pids of a gunicorn server's workers (the session its master leads), from /proc."""
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if pid.isdigit() and int(stat[3]) == server_pid and int(pid) != server_pid:
            pids.append(int(pid))
    return pids


def _connections_held(server_pid: int, port: int, states: tuple[str, ...] = ("01",)) -> list[int]:
    """How many connections to ``port`` in ``states`` (01: established) each gunicorn worker holds, most first (from
    /proc)."""
    established = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[3] in states and int(fields[1].split(":")[1], 16) == port:  # local port
            established.add(fields[9])  # the socket's inode
    held = []
    for pid in _workers(server_pid):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held.append(sum(link.startswith("socket:[") and link[8:-1] in established for link in links))
    return sorted(held, reverse=True)


def _until_closed(server_pid: int, port: int) -> None:
    """Wait until the workers have closed every connection the last clients left (their counts follow at once):
    established, or closed by the client and not yet by the worker (08: CLOSE_WAIT)."""
    deadline = time.monotonic() + 10
    while any(_connections_held(server_pid, port, ("01", "08"))) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)


def _all_at_once(clients: list, message: bytes) -> list[int]:
    """Each client sends one review at the same time; their answers' statuses."""
    statuses = [0] * len(clients)

    def one(i):
        statuses[i] = clients[i].exchange(message)[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _until_spread(proc, port: int, clients: list, message: bytes) -> int:
    """Send reviews from every client, all at once, until the workers hold 2 connections each; how many turns that
    took. A crowded worker closes one connection after an answer, and its client reconnects."""
    deadline, turn = time.monotonic() + 10, 0
    while _connections_held(proc.pid, port) != [2, 2]:
        assert time.monotonic() < deadline, f"still {_connections_held(proc.pid, port)} after {turn} turns"
        assert _all_at_once(clients, message) == [200] * 4
        turn += 1
    return turn


@pytest.fixture()
def two_workers(tmp_path):
    """gunicorn with 2 workers on a SQLite store; its process, port and a reviewer's request, ready to send."""
    db = f"sqlite:///{tmp_path}/audit.db"
    store = Store(db)
    key = create_key(store, "reviewer", "load-test")
    store.close()
    port = free_port()
    proc = load.start_server(db, port, 2, tmp_path / "gunicorn.log")
    try:
        yield proc, port, load.request_bytes("127.0.0.1", port, key, load.BODY)
    finally:
        load.stop_server(proc)


def test_clients_that_keep_their_connections_are_spread_over_the_workers(two_workers):
    proc, port, message = two_workers
    for _ in range(4):  # 4 clients on 2 workers used to split 3–1 or 4–0 in most runs, and stay so
        clients = [load.Connection("127.0.0.1", port) for _ in range(4)]
        assert _all_at_once(clients, message) == [200] * 4
        _until_spread(proc, port, clients, message)
        assert _all_at_once(clients, message) == [200] * 4
        assert _connections_held(proc.pid, port) == [2, 2]  # and they stay so
        for c in clients:
            c.close()
        _until_closed(proc.pid, port)


def test_connections_that_all_landed_on_one_worker_while_the_other_stalled_are_spread_after(two_workers):
    proc, port, message = two_workers
    deadline = time.monotonic() + 10
    while len(_workers(proc.pid)) < 2 and time.monotonic() < deadline:  # /healthz answers once one is up
        time.sleep(0.05)
    stalled = _workers(proc.pid)[0]
    clients = [load.Connection("127.0.0.1", port) for _ in range(4)]
    try:
        os.kill(stalled, signal.SIGSTOP)  # as a worker still booting, or starved of CPU on a loaded machine
        try:
            assert _all_at_once(clients, message) == [200] * 4  # each left to the stalled one for 50 ms, then taken
            assert _connections_held(proc.pid, port)[1] == 0
        finally:
            os.kill(stalled, signal.SIGCONT)
        _until_spread(proc, port, clients, message)
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize(("before", "after", "share"), [
    ({1: 100, 2: 50, 3: 40}, {1: 103, 2: 150, 3: 140}, 0.5),  # the master (1) is left out; two workers alike
    ({1: 0, 2: 0, 3: 0}, {1: 1, 2: 98, 3: 2}, 0.98),  # kept-alive clients all on one worker
    ({1: 0, 2: 10}, {1: 0, 2: 40, 4: 20}, 0.6),  # a worker respawned meanwhile counts from nothing
])
def test_the_load_bench_reports_how_evenly_the_workers_shared_the_reviews(before, after, share):
    assert load.busiest_share(before, after, master=1) == share
