"""The deployment's proxy (CLIPMAKER_YTDLP_PROXY): used for the requests, and still no way
around the address policy for the targets behind it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from clipmaker.net import AddressPolicy, SourceForbidden, proxied_client


@contextmanager
def recording_proxy() -> Iterator[tuple[str, list[str]]]:
    """A forward proxy that answers every request itself and records its target."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.path)  # absolute-form: the URL the client asked the proxy for
            body = b"via proxy"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_requests_go_through_the_proxy_whatever_its_address() -> None:
    # the proxy is on loopback, which the policy does not admit: it is the deployment's own
    policy = AddressPolicy(["127.0.0.2/32"])
    with recording_proxy() as (proxy, seen), proxied_client(policy, proxy) as client:
        response = client.get("http://127.0.0.2:8080/watch?v=x")
    assert response.text == "via proxy"
    assert seen == ["http://127.0.0.2:8080/watch?v=x"]


@pytest.mark.parametrize("target", ["http://10.0.0.1/", "http://169.254.169.254/latest/"])
def test_a_forbidden_target_is_refused_before_the_proxy_is_asked(target: str) -> None:
    with (
        recording_proxy() as (proxy, seen),
        proxied_client(AddressPolicy(), proxy) as client,
        pytest.raises(SourceForbidden),
    ):
        client.get(target)
    assert seen == []
