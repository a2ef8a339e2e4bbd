"""The front door under gunicorn's production settings: clients that send their requests slowly do not starve
the others. (A functional bound on a real server: /healthz answering within 1 s while 8 sockets trickle.)"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.request

from service_support import free_port, start_gunicorn

SLOW_SOCKETS = 8


def test_slow_clients_do_not_hold_the_workers(tmp_path):
    port = free_port()
    proc = start_gunicorn(f"sqlite:///{tmp_path}/audit.db", port, tmp_path / "gunicorn.log", workers=2)
    stop = threading.Event()
    sockets = []
    try:
        for _ in range(SLOW_SOCKETS):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /v1/reviews HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(s)

        def trickle():  # one header byte per socket every 0.3 s: never a whole request
            header = b"X-Slow: " + b"a" * 10_000
            i = 0
            while not stop.is_set() and i < len(header):
                for s in sockets:
                    try:
                        s.send(header[i:i + 1])
                    except OSError:
                        pass
                i += 1
                stop.wait(0.3)

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        time.sleep(1.0)  # the slow requests have reached the workers
        took = []
        for _ in range(10):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as res:
                assert res.status == 200
            took.append(time.monotonic() - started)
            time.sleep(0.2)
        assert max(took) < 1.0, took
    finally:
        stop.set()
        for s in sockets:
            s.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
