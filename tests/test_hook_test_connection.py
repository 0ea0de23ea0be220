"""``test_connection`` answers within 15 s whatever the host does (issue #10).

Airflow's UI calls ``hook.test_connection()`` when the user presses *Test* and waits for it. Before
the fix, a host that accepted connections and never answered kept it busy for 120 s (a 60 s read
timeout, retried until the retry policy's 120 s budget ran out). Now the test call has short
timeouts of its own, no retries and a hard deadline, and answers ``(False, message)`` naming the
problem and the fix, never a token.

The hosts here are raw sockets and ``http.server`` stubs on 127.0.0.1:

* a black hole: accepts connections, never reads nor answers;
* a trickle: answers a status line, then one header byte every second, forever (the read timeout,
  which counts per read, never fires: only the deadline ends it);
* a refused port;
* garbage: bytes that are not HTTP; an HTTP 200 with an HTML page echoing the request; a 400 whose
  JSON message echoes the ``Authorization`` header.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from airflow_provider_contacts.hooks import contacts as contacts_module
from airflow_provider_contacts.hooks.contacts import GHLContactsHook, forget_process_state
from airflow_provider_contacts.hooks.retry import RetryPolicy

TOKEN = "pit-0a1b2c3d-SECRET-token"
#: What the UI may wait at most (the issue's bound).
BOUND_S = 15.0


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    forget_process_state()
    yield
    forget_process_state()


@pytest.fixture
def connect(monkeypatch) -> Callable[..., GHLContactsHook]:
    """``connect(base_url, **extra)``: a hook (default retries) on a ``ghl`` connection to ``base_url``."""

    def make(base_url: str, conn_id: str = "ghl_probe", **extra: object) -> GHLContactsHook:
        conn = {"conn_type": "ghl", "host": base_url, "password": TOKEN, "extra": {"location_id": "L1", **extra}}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return GHLContactsHook(conn_id)

    return make


class RawServer:
    """A TCP server on 127.0.0.1 that hands each accepted socket to ``serve(sock)`` in a thread."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.serve = serve
        self.accepted = 0
        self.closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.port = self.listener.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._sockets.append(sock)
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            self.serve(sock)
        except OSError:
            pass

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        for sock in self._sockets:
            try:
                sock.close()
            except OSError:
                pass


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def start(serve: Callable[[socket.socket], None]) -> RawServer:
        server = RawServer(serve)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _timed(hook: GHLContactsHook) -> tuple[bool, str, float]:
    started = time.monotonic()
    ok, message = hook.test_connection()
    return ok, message, time.monotonic() - started


def _assert_clean(message: str) -> None:
    assert TOKEN not in message and "SECRET" not in message
    assert "Traceback" not in message


# -- a host that accepts connections and never answers --------------------------------------------


def test_a_black_hole_host_is_reported_within_15_s_without_retries(raw_server, connect) -> None:
    hole = raw_server(lambda sock: hole.closing.wait())  # accept, never read, never answer
    # The connection's own timeouts are long (as the defaults, 10 s / 60 s, are): the test caps them.
    hook = connect(hole.base_url, connect_timeout=120, read_timeout=600)

    ok, message, took = _timed(hook)

    assert not ok
    assert took < BOUND_S, f"test_connection took {took:.1f} s"
    assert "did not answer" in message and hole.base_url in message
    assert "Base URL" in message and "https://services.leadconnectorhq.com" in message  # the fix
    assert hole.accepted == 1  # no retry
    _assert_clean(message)
    # The hook itself keeps the connection's timeouts and its retry policy for real work.
    assert hook.timeout == (120.0, 600.0) and hook.retry == RetryPolicy()


def test_a_host_that_trickles_bytes_hits_the_deadline(raw_server, connect, monkeypatch) -> None:
    def trickle(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not server.closing.is_set():  # one byte a second: every read succeeds, none ends
            sock.sendall(b"a")
            time.sleep(1.0)

    server = raw_server(trickle)
    monkeypatch.setattr(contacts_module, "TEST_DEADLINE_S", 4.0)  # the deadline, not its value, is tested
    hook = connect(server.base_url)

    ok, message, took = _timed(hook)

    assert not ok and took < 4.0 + 2.0, f"test_connection took {took:.1f} s"
    assert "No answer from" in message and "within 4 s" in message and "Base URL" in message
    _assert_clean(message)


@pytest.mark.slow
def test_the_default_deadline_holds_for_a_trickling_host(raw_server, connect) -> None:
    def trickle(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while not server.closing.is_set():
            sock.sendall(b"a")
            time.sleep(1.0)

    server = raw_server(trickle)
    ok, message, took = _timed(connect(server.base_url))
    assert not ok and took < BOUND_S, f"test_connection took {took:.1f} s"
    assert f"within {contacts_module.TEST_DEADLINE_S:g} s" in message
    assert contacts_module.TEST_DEADLINE_S < BOUND_S


# -- a refused port ----------------------------------------------------------------------------------


def test_a_refused_port_is_reported_at_once(connect) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"

    ok, message, took = _timed(connect(base_url))

    assert not ok and took < 5.0, f"test_connection took {took:.1f} s (no retries expected)"
    assert "Could not reach" in message and "refused" in message and base_url in message
    assert "Base URL" in message and "firewall" in message
    _assert_clean(message)


# -- a host that answers garbage ---------------------------------------------------------------------


def test_a_host_that_does_not_speak_http_is_reported(raw_server, connect) -> None:
    def garbage(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(b"\x15\x03\x01\x00\x02\x02\x16 SSH-2.0-OpenSSH_9.6 garbage\r\n\r\n")
        sock.close()

    server = raw_server(garbage)
    ok, message, took = _timed(connect(server.base_url))

    assert not ok and took < 5.0
    assert "not with HTTP" in message and "https://" in message and "Base URL" in message
    assert server.accepted == 1  # no retry
    _assert_clean(message)


class EchoServer:
    """An ``http.server`` answering every request with ``status`` and a body made by ``body(request)``,
    where ``request`` is the request line and headers as received (the Authorization header too)."""

    def __init__(self, status: int, content_type: str, body: Callable[[str], str]) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = f"{self.requestline}\n{self.headers}"
                outer.requests.append(seen)
                data = body(seen).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server naming

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo_server() -> Iterator[Callable[..., EchoServer]]:
    servers: list[EchoServer] = []

    def start(status: int, content_type: str, body: Callable[[str], str]) -> EchoServer:
        servers.append(EchoServer(status, content_type, body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_web_page_instead_of_the_api_is_reported_without_the_token(echo_server, connect) -> None:
    site = echo_server(200, "text/html", lambda seen: f"<html><body><pre>{seen}</pre></body></html>")
    ok, message, _ = _timed(connect(site.base_url))

    assert TOKEN in site.requests[0]  # the page did echo the token back...
    assert not ok and "not JSON" in message and "HighLevel API" in message and "Base URL" in message
    assert len(site.requests) == 1  # no retry of the broken answer
    _assert_clean(message)  # ...and the message does not show it


def test_an_error_message_echoing_the_authorization_header_never_shows_the_token(echo_server, connect) -> None:
    def body(seen: str) -> str:
        auth = next(line for line in seen.splitlines() if line.lower().startswith("authorization"))
        return json.dumps({"statusCode": 400, "message": f"bad request, got {auth}; token={TOKEN}"})

    api = echo_server(400, "application/json", body)
    ok, message, _ = _timed(connect(api.base_url))

    assert not ok and "HTTP 400" in message and "bad request" in message
    assert "Bearer ***" in message
    _assert_clean(message)


def test_a_page_not_found_says_the_base_url_is_wrong(echo_server, connect) -> None:
    site = echo_server(404, "text/html", lambda seen: "<h1>Not Found</h1>")
    ok, message, _ = _timed(connect(site.base_url))
    assert not ok and "has no HighLevel contacts API" in message and "Base URL" in message
    _assert_clean(message)


def test_a_server_error_is_not_retried_by_the_test(echo_server, connect) -> None:
    api = echo_server(503, "application/json", lambda seen: json.dumps({"message": "upstream down"}))
    ok, message, took = _timed(connect(api.base_url))
    assert not ok and "server error" in message and "upstream down" in message and took < 5.0
    assert len(api.requests) == 1
    _assert_clean(message)


def test_a_working_api_still_passes(echo_server, connect) -> None:
    api = echo_server(200, "application/json", lambda seen: json.dumps({"contacts": [], "total": 0}))
    ok, message, _ = _timed(connect(api.base_url))
    assert ok, message
    assert "Connected to" in message and "L1" in message
