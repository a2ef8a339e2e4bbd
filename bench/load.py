"""Load test of POST /v1/reviews against gunicorn on loopback: throughput and p50/p99 latency.

    python bench/load.py [--requests 600] [--concurrency 8] [--workers N] [--database URL]
    python bench/load.py --url http://127.0.0.1:8080 --key ur_…      # a server already running
    python bench/load.py --baseline /tmp/base [--rounds 5] [--workers 2]   # this checkout against another

Without --url it starts gunicorn (ur_service.gunicorn_conf) on a free loopback port with a fresh audit store
(SQLite in a temporary directory unless --database), creates a reviewer key, warms up, sends a bounded number of
reviews of examples/pneumonia.json with the default rules, prints the figures, checks that every acknowledged
review is in the store, and stops the server. Closed loop: each client thread sends its next request when the
last one is answered, so the figures are those of a saturated server.

With --baseline DIR (another checkout, e.g. ``git worktree add /tmp/base <commit>``) it measures both checkouts
in the same run, alternating: each round starts a fresh server and store for each checkout in turn (the order
swapped every round), and measures one client, then --concurrency clients, on it. A shared machine is noisy, so
the figures are the medians over the rounds, with this checkout's over the baseline's as a ratio; the server's
CPU time per review (its processes' user + system time, from /proc) is the figure other work disturbs least.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("p50_ms", "p99_ms", "throughput_per_s", "server_cpu_ms", "busiest_worker_share")  # compared by --baseline
BODY = (ROOT / "examples" / "pneumonia.json").read_bytes()


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of 2xx answers, seconds
    statuses: Counter = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)  # review ids of 2xx answers
    errors: int = 0  # connection failures (e.g. the server was killed)

    @property
    def ok(self) -> int:
        return len(self.acknowledged)

    def percentile(self, p: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")

    def summary(self) -> dict:
        return {"requests": sum(self.statuses.values()) + self.errors, "ok": self.ok, "errors": self.errors,
                "statuses": dict(self.statuses), "seconds": round(self.seconds, 3),
                "throughput_per_s": round(self.ok / self.seconds, 1) if self.seconds else 0.0,
                "p50_ms": round(self.percentile(50) * 1000, 1), "p99_ms": round(self.percentile(99) * 1000, 1)}


def run_load(url: str, key: str, requests: int, concurrency: int, body: bytes = BODY,
             stop: threading.Event | None = None) -> LoadResult:
    """Send ``requests`` reviews from ``concurrency`` threads (fewer if ``stop`` is set); keep-alive per thread."""
    parts = urlsplit(url)
    result, lock = LoadResult(), threading.Lock()
    left = [requests]
    stop = stop or threading.Event()
    message = request_bytes(parts.hostname or "127.0.0.1", parts.port or 80, key, body)

    def take() -> bool:
        with lock:
            if left[0] <= 0 or stop.is_set():
                return False
            left[0] -= 1
            return True

    def client():
        conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80)
        while take():
            started = time.perf_counter()
            try:
                status, location, data = conn.exchange(message)  # the whole answer, or it is not acknowledged
            except (OSError, ValueError):
                conn.close()
                with lock:
                    result.errors += 1
                time.sleep(0.01)
                continue
            elapsed = time.perf_counter() - started
            with lock:
                result.statuses[status] += 1
                if 200 <= status < 300:
                    result.latencies.append(elapsed)
                    result.acknowledged.append(review_id(location, data))
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def request_bytes(host: str, port: int, key: str, body: bytes) -> bytes:
    """One review's HTTP/1.1 request, built once: every request of a run is the same bytes."""
    head = (f"POST /v1/reviews HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class Connection:
    """A keep-alive HTTP/1.1 client connection that sends prepared requests and reads each answer whole.

    The load client shares the cores with the server it measures. ``http.client`` took 0.20–0.27 ms of CPU a
    request (its header parsing goes through the email package), this 0.05–0.09 ms, against a gunicorn serving a
    fixed answer of a review's size; the difference went to the server and to the clients' own clocks. It reads
    only what a load test needs — status,
    ``Content-Length`` (or chunks, or up to the close), ``Location``, ``Connection`` — and still reads every body
    to its last byte before the answer counts.
    """

    def __init__(self, host: str, port: int, timeout: float = 30.0):
        self.address, self.timeout = (host, port), timeout
        self.sock: socket.socket | None = None
        self.buffer = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def exchange(self, message: bytes) -> tuple[int, str, bytes]:
        """Send ``message``; return the answer's status, Location header and body. Raises OSError or ValueError."""
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(message)
        head = self._until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        if not version.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(rest[:3])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if b"content-length" in fields:
            data = self._exactly(int(fields[b"content-length"]))
        elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            data = self._chunked()
        else:  # delimited by the close
            data = self.buffer + self._rest()
            self.close()
        if fields.get(b"connection", b"").lower() == b"close" or version == b"HTTP/1.0":
            self.close()
        return status, fields.get(b"location", b"").decode("latin-1"), data

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection mid-answer")
        return chunk

    def _until(self, mark: bytes) -> bytes:
        while True:
            at = self.buffer.find(mark)
            if at >= 0:
                found, self.buffer = self.buffer[:at], self.buffer[at + len(mark):]
                return found
            if len(self.buffer) > 65536:
                raise ValueError("an answer's header is over 64 KB")
            self.buffer += self._recv()

    def _exactly(self, n: int) -> bytes:
        parts, have = [self.buffer], len(self.buffer)
        while have < n:
            chunk = self._recv()
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        self.buffer = data[n:]
        return data[:n]

    def _chunked(self) -> bytes:
        out = []
        while True:
            size = int(self._until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while self._until(b"\r\n"):  # trailers, up to the empty line
                    pass
                return b"".join(out)
            out.append(self._exactly(size))
            self._until(b"\r\n")

    def _rest(self) -> bytes:
        assert self.sock is not None
        parts = []
        while chunk := self.sock.recv(65536):
            parts.append(chunk)
        return b"".join(parts)


def review_id(location: str, data: bytes) -> str:
    """The stored review's id, from the Location header when it has one: the client shares the cores with the
    server, and parsing each 12 KB answer again would be its largest cost."""
    if location.startswith("/v1/reviews/"):
        return location.rsplit("/", 1)[1]
    return json.loads(data)["review_id"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(database: str, port: int, workers: int, log_path: Path, root: Path = ROOT) -> subprocess.Popen:
    """gunicorn with the production config, in its own process group (so it can be killed whole).

    ``root`` is the checkout whose code it serves (first on the path, ahead of any installed copy).
    """
    env = {**os.environ, "UR_DATABASE_URL": database, "UR_BIND": f"127.0.0.1:{port}", "UR_WORKERS": str(workers)}
    if root != ROOT:
        env["PYTHONPATH"] = str(root)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable)) or "gunicorn"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([gunicorn, "-c", "python:ur_service.gunicorn_conf"], cwd=root, env=env,
                                stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not answer within 60 s")


def stop_server(proc: subprocess.Popen, kill: bool = False) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def reviewer_key(root: Path, database: str) -> str:
    """A reviewer key made by ``root``'s own code: its store may be at another migration than this one's."""
    code = ("from ur_service.auth import create_key; from ur_service.store import Store; import sys; "
            "s = Store(sys.argv[1]); print(create_key(s, 'reviewer', 'load-test')); s.close()")
    out = subprocess.run([sys.executable, "-c", code, database], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2) if xs else float("nan")


def compare(baseline: Path, rounds: int, requests: int, concurrency: int, workers: int, tmp: Path,
            database: str | None = None) -> dict:
    """This checkout and ``baseline`` measured alternately; per checkout and client count, the rounds' figures
    and their medians. Every acknowledged review is looked up in its store afterwards."""
    checkouts = {"this": ROOT, "baseline": baseline.resolve()}
    levels = sorted({1, concurrency})
    runs: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in levels} for name in checkouts}
    missing = 0
    for r in range(rounds):
        order = list(checkouts) if r % 2 == 0 else list(reversed(checkouts))
        for name in order:
            root = checkouts[name]
            db = database or f"sqlite:///{tmp}/audit-{name}-{r}.db"
            if database:  # one PostgreSQL database for every run: start each on an empty one
                _reset_postgres(database)
            key = reviewer_key(root, db)
            port = free_port()
            proc = start_server(db, port, workers, tmp / f"gunicorn-{name}.log", root)
            try:
                url = f"http://127.0.0.1:{port}"
                run_load(url, key, requests=min(50, requests), concurrency=concurrency)  # warm-up
                for c in levels:
                    cpu, before = server_cpu_seconds(proc.pid), process_cpu_ticks(proc.pid)
                    result = run_load(url, key, requests=requests, concurrency=c)
                    figures = result.summary()
                    # CPU the server spent per review: steadier than latency when other work shares the cores.
                    figures["server_cpu_ms"] = round((server_cpu_seconds(proc.pid) - cpu) / max(result.ok, 1) * 1000, 3)
                    figures["busiest_worker_share"] = busiest_share(before, process_cpu_ticks(proc.pid), proc.pid)
                    runs[name][c].append(figures)
                    missing += _missing(root, db, result.acknowledged)
            finally:
                stop_server(proc)
            print(f"round {r + 1}/{rounds} {name}: " + "   ".join(
                f"{c} client{'s' if c > 1 else ''} p50 {runs[name][c][-1]['p50_ms']} ms "
                f"p99 {runs[name][c][-1]['p99_ms']} ms" for c in levels)
                + f" (busiest worker {runs[name][concurrency][-1]['busiest_worker_share']:.0%} of the CPU)",
                file=sys.stderr)
    out: dict = {"rounds": rounds, "requests": requests, "workers": workers, "cores": os.cpu_count(),
                 "baseline": str(checkouts["baseline"]), "acknowledged_missing_from_store": missing, "levels": {}}
    for c in levels:
        row = {}
        for name in checkouts:
            row[name] = {k: round(median([f[k] for f in runs[name][c]]), 2)
                         for k in FIGURES}
            row[name]["rounds"] = runs[name][c]
        row["ratio"] = {k: round(row["this"][k] / row["baseline"][k], 2) if row["baseline"][k] else None
                        for k in FIGURES}
        out["levels"][str(c)] = row
    return out


def process_cpu_ticks(leader: int) -> dict[int, int]:
    """User and system CPU ticks of every live process in the server's session (gunicorn's master and workers)."""
    ticks = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == leader:  # the session id (start_new_session made gunicorn its leader)
            ticks[int(entry)] = int(fields[11]) + int(fields[12])
    return ticks


def server_cpu_seconds(leader: int) -> float:
    """User and system CPU of every live process in the server's session (gunicorn's master and workers)."""
    return sum(process_cpu_ticks(leader).values()) / os.sysconf("SC_CLK_TCK")


def busiest_share(before: dict[int, int], after: dict[int, int], master: int) -> float:
    """The busiest worker's share of the workers' CPU between two readings: 1/N when N workers shared the reviews
    evenly, 1.0 when kept-alive clients all landed on one of them."""
    spent = [after[pid] - before.get(pid, 0) for pid in after if pid != master]
    return round(max(spent) / sum(spent), 2) if spent and sum(spent) else 0.0


def _missing(root: Path, database: str, ids: list[str]) -> int:
    """Acknowledged reviews not in the store, asked through ``root``'s own code."""
    code = ("import sys, json; from ur_service.store import Store; s = Store(sys.argv[1], upgrade=False); "
            "ids = json.load(sys.stdin); print(sum(s.get_review(i) is None for i in ids)); s.close()")
    out = subprocess.run([sys.executable, "-c", code, database], cwd=root, input=json.dumps(ids),
                         env={**os.environ, "PYTHONPATH": str(root)}, check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def _reset_postgres(database: str) -> None:
    from sqlalchemy import create_engine, text

    sys.path.insert(0, str(ROOT))
    from ur_service.db import normalize_url

    engine = create_engine(normalize_url(database))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def print_comparison(out: dict) -> None:
    print(f"POST /v1/reviews, gunicorn {out['workers']} workers, cores={out['cores']}: this checkout against "
          f"{out['baseline']}, medians of {out['rounds']} alternating rounds of {out['requests']} requests")
    print(f"{'clients':>7}  {'':8}  {'p50 ms':>8}  {'p99 ms':>8}  {'reviews/s':>9}  {'server CPU ms/review':>20}  "
          f"{'busiest worker':>14}")
    for c, row in out["levels"].items():
        for name in ("baseline", "this", "ratio"):
            f = row[name]
            print(f"{c:>7}  {name:8}  {f['p50_ms']:>8}  {f['p99_ms']:>8}  {f['throughput_per_s']:>9}  "
                  f"{f['server_cpu_ms']:>20}  {f['busiest_worker_share']:>14}")
    print(f"acknowledged reviews missing from the stores: {out['acknowledged_missing_from_store']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="A running server (with --key); default: start gunicorn.")
    parser.add_argument("--key", help="A reviewer key for --url.")
    parser.add_argument("--database", help="Audit store URL for the started server (default: SQLite, temporary).")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")
    parser.add_argument("--baseline", type=Path, help="Another checkout to measure alternately with this one.")
    parser.add_argument("--rounds", type=int, default=5, help="Alternating rounds with --baseline.")
    args = parser.parse_args(argv)
    if args.baseline:
        if args.url:
            parser.error("--baseline starts its own servers; it cannot take --url")
        if not (args.baseline / "ur_service").is_dir():
            parser.error(f"--baseline {args.baseline}: not a checkout of ur-engine (no ur_service/ in it)")
        tmp = Path(tempfile.mkdtemp(prefix="ur-load-"))
        try:
            out = compare(args.baseline, args.rounds, args.requests, args.concurrency, args.workers, tmp,
                          args.database)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if args.json:
            print(json.dumps(out))
        else:
            print_comparison(out)
        return

    sys.path.insert(0, str(ROOT))
    from ur_service.auth import create_key
    from ur_service.db import redact
    from ur_service.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="ur-load-"))
    proc = None
    try:
        if args.url:
            if not args.key:
                parser.error("--url needs --key")
            url, key, store_name = args.url, args.key, "(server's own)"
        else:
            database = args.database or f"sqlite:///{tmp}/audit.db"
            store = Store(database)
            key = create_key(store, "reviewer", "load-test")
            store.close()
            port = free_port()
            proc = start_server(database, port, args.workers, tmp / "gunicorn.log")
            url, store_name = f"http://127.0.0.1:{port}", redact(database).split(":")[0]
        run_load(url, key, requests=min(50, args.requests), concurrency=args.concurrency)  # warm-up
        result = run_load(url, key, requests=args.requests, concurrency=args.concurrency)
        figures = {**result.summary(), "concurrency": args.concurrency, "cores": os.cpu_count(),
                   "workers": None if args.url else args.workers, "store": store_name}
        if not args.url:
            store = Store(database, upgrade=False)
            missing = [r for r in result.acknowledged if store.get_review(r) is None]
            figures["acknowledged_missing_from_store"] = len(missing)
            store.close()
    finally:
        if proc is not None:
            stop_server(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"POST /v1/reviews (default rules, examples/pneumonia.json) against {url}: gunicorn "
          f"{figures['workers'] or '?'} gthread workers, cores={figures['cores']}, store {figures['store']}")
    print(f"{figures['requests']} requests, concurrency {args.concurrency}: {figures['ok']} answered 2xx "
          f"in {figures['seconds']} s; statuses {figures['statuses']}, connection errors {figures['errors']}")
    print(f"throughput {figures['throughput_per_s']} reviews/s   "
          f"p50 {figures['p50_ms']} ms   p99 {figures['p99_ms']} ms")
    if "acknowledged_missing_from_store" in figures:
        print(f"acknowledged reviews missing from the store: {figures['acknowledged_missing_from_store']}")


if __name__ == "__main__":
    main()
