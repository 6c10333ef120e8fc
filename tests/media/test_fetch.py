"""resolve(): from a user's URL to one media URL, or a plain-words error."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipmaker.errors import ClipError
from clipmaker.media import ResolvedSource, cut, resolve
from clipmaker.media.sample import first_frame_index_and_time
from tests.support.http_server import MediaServer


def test_resolves_a_direct_mp4_link(server: MediaServer, source_20s: Path) -> None:
    url = server.url(source_20s.name)
    resolved = resolve(url)
    assert isinstance(resolved, ResolvedSource)
    assert resolved.url == url
    assert resolved.media_url == url
    assert resolved.extractor == "generic"
    assert resolved.title == source_20s.stem
    assert "User-Agent" in resolved.http_headers


def test_resolved_source_can_be_cut(server: MediaServer, source_20s: Path, tmp_path: Path) -> None:
    resolved = resolve(server.url(source_20s.name))
    server.reset_counts()
    result = cut(
        resolved.media_url, tmp_path / "clip.mp4", 2.0, 3.0, http_headers=resolved.http_headers
    )
    assert first_frame_index_and_time(result.path) == (50, 0.0)
    # the headers yt-dlp says the host expects reach the host
    agents = {r.headers.get("User-Agent") for r in server.requests}
    assert agents == {resolved.http_headers["User-Agent"]}


def _assert_plain(error: ClipError) -> None:
    assert not error.message.startswith("ERROR")
    assert "\x1b[" not in error.message
    assert "caused by" not in error.message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/clip.mp4",
        "file:///etc/passwd",
        "example.com/clip.mp4",
        "http://",
        "http://host:99999/clip.mp4",
        "   ",
    ],
)
def test_refuses_urls_that_are_not_http(url: str) -> None:
    with pytest.raises(ClipError) as caught:
        resolve(url)
    assert caught.value.code == "invalid_source_url"
    _assert_plain(caught.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_unreachable() -> None:
    port = _closed_port()
    with pytest.raises(ClipError) as caught:
        resolve(f"http://127.0.0.1:{port}/clip.mp4", timeout_s=5)
    assert caught.value.code == "source_unreachable"
    assert "refused" in caught.value.message
    _assert_plain(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for sock in accepted:
        sock.close()
    listener.close()


def test_a_silent_host_times_out(silent_server: int) -> None:
    with pytest.raises(ClipError) as caught:
        resolve(f"http://127.0.0.1:{silent_server}/clip.mp4", timeout_s=1)
    assert caught.value.code == "source_unreachable"
    assert "1 seconds" in caught.value.message


def test_http_404_is_unreachable(server: MediaServer) -> None:
    with pytest.raises(ClipError) as caught:
        resolve(server.url("missing.mp4"))
    assert caught.value.code == "source_unreachable"
    assert "404" in caught.value.message
    _assert_plain(caught.value)


def test_a_page_without_video_is_not_media(server: MediaServer, junk: dict[str, Path]) -> None:
    url = server.url(junk["html"].name)
    with pytest.raises(ClipError) as caught:
        resolve(url)
    assert caught.value.code == "not_media"
    assert url in caught.value.message
    _assert_plain(caught.value)
