"""A loopback webhook receiver that records each POST and answers what a test scripts.

    with receive_webhooks() as receiver:
        receiver.answer("/hook", 500, 204)      # first POST gets 500, the next 204
        ...
        posts = receiver.wait_for("/hook", 2)   # the first two POSTs to /hook (bounded wait)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._posts: list[Post] = []
        self._answers: dict[str, list[int]] = {}
        self._httpd: ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next POSTs to ``path`` with these statuses, then 204."""
        with self._lock:
            self._answers[path] = list(statuses)

    def posts(self, path: str) -> list[Post]:
        with self._lock:
            return [post for post in self._posts if post.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 60.0) -> list[Post]:
        """The first ``count`` POSTs to ``path``; fewer if they do not come within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [post for post in self._posts if post.path == path]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found[:count] if len(found) >= count else found
                self._lock.wait(left)

    def _record(self, post: Post) -> int:
        with self._lock:
            self._posts.append(post)
            self._lock.notify_all()
            queued = self._answers.get(post.path)
            return queued.pop(0) if queued else 204


@contextmanager
def receive_webhooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver._record(Post(self.path, headers, body, time.time()))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    receiver._httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        httpd.shutdown()
        httpd.server_close()
