"""A loopback HTTP file server that counts what it really sends.

Tests of network reads need a server that behaves like a CDN (Range requests, 206, correct
Content-Type) and that can tell how many bytes went over the wire: that is the only honest
measure of "we read only the part we needed". The count is taken as each chunk is handed to the
socket, and the per-connection send buffer is kept small, so a client that hangs up early (as
FFmpeg does after an open-ended ``Range: bytes=N-`` request) is not charged for the whole rest of
the file, only for what the kernel accepted before it left.

    with serve_directory(tmp_path) as server:
        url = server.url("clip.mp4")
        ...
        assert server.bytes_sent < size / 2

``ranges=False`` makes a server that ignores Range (always 200 with the whole body), like some
simple hosts. ``server.requests`` records each request (method, path, Range header, status,
and the request headers, so a test can check that e.g. a User-Agent made it to the server).

Faults on demand: ``server.fail(name, 500)`` answers every request for ``name`` with that status;
``server.drop_after(name, n)`` makes the next response for ``name`` hang up after ``n`` body
bytes (a dropped connection).
"""

from __future__ import annotations

import mimetypes
import re
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

__all__ = ["MediaServer", "RequestRecord", "serve_directory"]

_CHUNK = 64 * 1024
_SEND_BUFFER = 64 * 1024  # small, so bytes "sent" are close to bytes the client took
_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".m4a": "audio/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".mpd": "application/dash+xml",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    range: str | None
    status: int
    headers: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)


class MediaServer:
    """What a test holds: the base URL, byte counts and the request log."""

    def __init__(self, root: Path, ranges: bool) -> None:
        self.root = Path(root).resolve()
        self.ranges = ranges
        self._lock = threading.Condition()
        self._bytes_sent = 0
        self._sending = 0  # responses whose body is being written right now
        self._requests: list[RequestRecord] = []
        self._failures: dict[str, int] = {}
        self._drops: dict[str, list[int]] = {}
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str) -> str:
        """Full URL of ``name`` (a path relative to the served root)."""
        return f"{self.base_url}/{quote(name.lstrip('/'))}"

    @property
    def bytes_sent(self) -> int:
        """Body bytes written to sockets since start or the last ``reset_counts``.

        Waits (up to 5 s) for responses still being written, so a test that reads this right
        after its client finished sees the final count, not a race with the server's threads.
        """
        with self._lock:
            self._lock.wait_for(lambda: self._sending == 0, timeout=5)
            return self._bytes_sent

    @property
    def requests(self) -> list[RequestRecord]:
        """Requests since start or the last ``reset_counts``, in arrival order."""
        with self._lock:
            self._lock.wait_for(lambda: self._sending == 0, timeout=5)
            return list(self._requests)

    def reset_counts(self) -> None:
        """Zero the counters, once responses still being written (to a client that left,
        say) are done, so they are not charged to what comes next."""
        with self._lock:
            self._lock.wait_for(lambda: self._sending == 0, timeout=5)
            self._bytes_sent = 0
            self._requests.clear()
            self._failures.clear()
            self._drops.clear()

    def fail(self, name: str, status: int) -> None:
        """Answer every request for ``name`` with ``status`` (until ``reset_counts``)."""
        with self._lock:
            self._failures[name.lstrip("/")] = status

    def drop_after(self, name: str, n_bytes: int) -> None:
        """Hang up the next response for ``name`` after ``n_bytes`` of its body."""
        with self._lock:
            self._drops.setdefault(name.lstrip("/"), []).append(n_bytes)

    def _failure(self, rel: str) -> int | None:
        with self._lock:
            return self._failures.get(rel)

    def _drop(self, rel: str) -> int | None:
        with self._lock:
            pending = self._drops.get(rel)
            return pending.pop(0) if pending else None

    def _count(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n

    def _begin_body(self) -> None:
        with self._lock:
            self._sending += 1

    def _end_body(self) -> None:
        with self._lock:
            self._sending -= 1
            self._lock.notify_all()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)


def _handler(server: MediaServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _serve(self, *, body: bool) -> None:
            range_header = self.headers.get("Range")
            rel = unquote(urlsplit(self.path).path).lstrip("/")
            failure = server._failure(rel)
            if failure is not None:
                self._status_only(failure, range_header)
                return
            target = (server.root / rel).resolve()
            if not target.is_relative_to(server.root) or not target.is_file():
                self._status_only(404, range_header)
                return
            size = target.stat().st_size
            first, last, status = 0, size - 1, 200
            if server.ranges and range_header:
                parsed = _parse_range(range_header, size)
                if parsed is None:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    self._record(range_header, 416)
                    return
                first, last = parsed
                status = 206
            self._record(range_header, status)
            server._begin_body()  # before the client can see any byte of this response
            try:
                self._send_file(target, status, first, last, size, body, server._drop(rel))
            finally:
                server._end_body()

        def _send_file(
            self,
            target: Path,
            status: int,
            first: int,
            last: int,
            size: int,
            body: bool,
            drop_after: int | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", _content_type(target))
            self.send_header("Content-Length", str(last - first + 1))
            if server.ranges:
                self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if not body:
                return
            try:
                with target.open("rb") as fh:
                    fh.seek(first)
                    remaining = last - first + 1
                    if drop_after is not None:
                        remaining = min(remaining, drop_after)
                        self.close_connection = True  # hang up mid-body
                    while remaining > 0:
                        chunk = fh.read(min(_CHUNK, remaining))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        server._count(len(chunk))
                        remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client hung up: normal after a seek

        def _record(self, range_header: str | None, status: int) -> None:
            headers = dict(self.headers.items())
            server._record(RequestRecord(self.command, self.path, range_header, status, headers))

        def _status_only(self, status: int, range_header: str | None) -> None:
            self._record(range_header, status)
            message = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(message)

    return Handler


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """First and last byte of a single ``bytes=`` range, or None if it cannot be satisfied."""
    match = _RANGE.match(header.strip())
    if not match or size == 0:
        return None
    start_s, end_s = match.groups()
    if start_s == "":
        if end_s == "":
            return None
        length = int(end_s)  # "bytes=-N": the last N bytes
        return (max(0, size - length), size - 1) if length > 0 else None
    first = int(start_s)
    last = min(int(end_s), size - 1) if end_s else size - 1
    if first >= size or last < first:
        return None
    return first, last


def _content_type(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client hung up on a kept-alive connection: normal
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@contextmanager
def serve_directory(root: Path, *, ranges: bool = True) -> Iterator[MediaServer]:
    """Serve ``root`` on 127.0.0.1 at a free port for the duration of the ``with`` block."""
    server = MediaServer(root, ranges)
    httpd = _QuietServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server._httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, name="media-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
