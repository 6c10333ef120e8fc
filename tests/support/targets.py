"""Tiny HTTP servers on any loopback address that count every connection they accept.

An SSRF test must show that *nothing* reached a forbidden target, not just that the client
reported an error: ``Target.connections`` counts TCP connections accepted (before any HTTP is
parsed), ``Target.requests`` the paths asked for. 127.0.0.2 and other 127.x addresses, and
``::1``, are loopback on Linux, so a test can run a target "outside the allow-list" locally.

Routes map a path to a ``Reply``: a status, headers, a body, and optionally a drip (one byte
every ``drip_s`` seconds, for slow-source tests).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Reply", "Target", "serve_target"]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    drip_s: float | None = None  # send the body one byte at a time, this far apart...
    head: int = 0  # ...after sending this many bytes at once
    size: int | None = None  # Content-Length to announce (default: len(body))


class Target:
    """What a test holds: the base URL, connection and request counts, and the routes."""

    def __init__(self, host: str, routes: Mapping[str, Reply | Callable[[], Reply]]) -> None:
        self.host = host
        self.routes = dict(routes)
        self._lock = threading.Lock()
        self._connections = 0
        self._requests: list[str] = []
        self.port = 0
        self.stop = threading.Event()  # set to end drips early

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    @property
    def requests(self) -> list[str]:
        with self._lock:
            return list(self._requests)


def _handler(target: Target) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            with target._lock:
                target._requests.append(self.path)
            route = target.routes.get(self.path.split("?", 1)[0])
            reply = route() if callable(route) else route
            if reply is None:
                reply = Reply(404, b"not here")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            size = reply.size if reply.size is not None else len(reply.body)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if reply.drip_s is None:
                self.wfile.write(reply.body)
                return
            try:
                self.wfile.write(reply.body[: reply.head])
                self.wfile.flush()
            except OSError:
                return
            for i in range(reply.head, len(reply.body)):
                if target.stop.wait(reply.drip_s):
                    return
                try:
                    self.wfile.write(reply.body[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return

    return Handler


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: Target, family: int) -> None:
        self.address_family = family
        self._target = target
        super().__init__((target.host, 0), _handler(target))

    def get_request(self):  # every accepted connection counts, even one that sends nothing
        conn = super().get_request()
        with self._target._lock:
            self._target._connections += 1
        return conn

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@contextmanager
def serve_target(
    host: str = "127.0.0.1", routes: Mapping[str, Reply | Callable[[], Reply]] | None = None
) -> Iterator[Target]:
    """Serve ``routes`` on ``host`` (any loopback address) at a free port."""
    target = Target(host, routes or {})
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = _CountingServer(target, family)
    target.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        daemon=True,
        name=f"target-{host}",
    )
    thread.start()
    try:
        yield target
    finally:
        target.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Poll ``condition`` until true or ``timeout_s`` passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(0.02)
