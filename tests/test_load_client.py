"""The load test's own HTTP client: each answer is read to its last byte before it counts as acknowledged.

A scripted server on loopback sends answers framed each way HTTP/1.1 allows, in pieces, and cut short.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "load.py")
load = importlib.util.module_from_spec(spec)
sys.modules["bench_load"] = load
spec.loader.exec_module(load)

BODY = b'{"review_id":"01JBODY0000000000000000000","outcome":"approve"}'
LOCATED = b"Location: /v1/reviews/01JLOCATION00000000000000\r\n"


def _serve(answers: list[list[bytes]]) -> tuple[int, list[bytes]]:
    """A one-connection server: for each request it reads, it sends the next answer's pieces one by one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received: list[bytes] = []

    def run():
        conn, _ = listener.accept()
        with conn, listener:
            for pieces in answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, rest = data.partition(b"\r\n\r\n")
                length = int(next(x for x in head.split(b"\r\n") if x.lower().startswith(b"content-length"))
                             .split(b":")[1])
                while len(rest) < length:
                    rest += conn.recv(65536)
                received.append(rest)
                for piece in pieces:
                    conn.sendall(piece)
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if pieces and pieces[-1] is CLOSE:
                    return

    threading.Thread(target=run, daemon=True).start()
    return listener.getsockname()[1], received


CLOSE = b""  # marks an answer after which the server closes the connection


def _with_length(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + \
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body


FRAMINGS = {
    "content-length, in one piece": [_with_length(BODY, LOCATED)],
    "content-length, the head and body split mid-line": [_with_length(BODY, LOCATED)[:20],
                                                         _with_length(BODY, LOCATED)[20:70],
                                                         _with_length(BODY, LOCATED)[70:]],
    "chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + LOCATED + b"\r\n",
                f"{len(BODY[:10]):x}\r\n".encode() + BODY[:10] + b"\r\n",
                f"{len(BODY[10:]):x}\r\n".encode() + BODY[10:] + b"\r\n0\r\n\r\n"],
    "delimited by the close": [b"HTTP/1.1 200 OK\r\nConnection: close\r\n" + LOCATED + b"\r\n", BODY[:5], BODY[5:],
                               CLOSE],
}


@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_client_reads_each_answer_whole_however_it_is_framed(framing):
    port, received = _serve([FRAMINGS[framing]])
    conn = load.Connection("127.0.0.1", port, timeout=10)
    try:
        status, location, data = conn.exchange(load.request_bytes("127.0.0.1", port, "ur_key", b'{"a": 1}'))
    finally:
        conn.close()
    assert (status, data) == (200, BODY)
    assert load.review_id(location, data) == "01JLOCATION00000000000000"
    assert received == [b'{"a": 1}']


def test_answers_on_one_kept_alive_connection_are_told_apart():
    second = b'{"review_id":"01JSECOND000000000000000000"}'
    port, received = _serve([[_with_length(BODY)], [_with_length(second)]])
    conn = load.Connection("127.0.0.1", port, timeout=10)
    try:
        message = load.request_bytes("127.0.0.1", port, "ur_key", b"{}")
        answers = [conn.exchange(message), conn.exchange(message)]
    finally:
        conn.close()
    assert [a[2] for a in answers] == [BODY, second]
    assert [load.review_id(a[1], a[2]) for a in answers] == ["01JBODY0000000000000000000", "01JSECOND000000000000000000"]
    assert len(received) == 2


@pytest.mark.parametrize("cut", [30, len(_with_length(BODY)) - 1])
def test_an_answer_cut_short_is_an_error_not_an_acknowledgement(cut):
    port, _ = _serve([[_with_length(BODY)[:cut], CLOSE]])
    conn = load.Connection("127.0.0.1", port, timeout=10)
    try:
        with pytest.raises(OSError):
            conn.exchange(load.request_bytes("127.0.0.1", port, "ur_key", b"{}"))
    finally:
        conn.close()
