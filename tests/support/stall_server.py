"""A loopback server that accepts connections and never answers: a source that keeps a job
busy for as long as a test needs, then lets go at once (``close`` resets every connection)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StallServer:
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    def url(self, name: str = "stall.mp4") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._conns)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()  # linger 0: a reset, so the reader fails now, not at its timeout
            self._conns.clear()


@contextmanager
def stall_server() -> Iterator[StallServer]:
    server = StallServer()
    try:
        yield server
    finally:
        server.close()
