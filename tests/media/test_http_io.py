"""media.http: bounded, cached, counted HTTP reads under PyAV, and the fallback to a download."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import pytest

from clipmaker.errors import ClipError
from clipmaker.media import cut
from clipmaker.media.http import (
    BLOCK_SIZE,
    MAX_REQUEST,
    ByteCounter,
    HttpSession,
    RangeNotSupported,
    RangeReader,
    StreamReader,
    full_fetch,
    nested_open,
)
from clipmaker.media.http.sizes import GROWTH
from clipmaker.media.source import SourceOpener
from clipmaker.testing.sample import first_frame_index_and_time, index_after_seek
from tests.support.http_server import MediaServer, serve_directory
from tests.support.streaming import make_hls

FPS = 25
_BOUNDED = re.compile(r"^bytes=\d+-\d+$")


def _assert_bounded(server: MediaServer) -> None:
    ranges = [r.range for r in server.requests]
    assert ranges, "no request reached the server"
    assert all(r is not None and _BOUNDED.match(r) for r in ranges), ranges


@pytest.fixture(scope="module")
def no_range_server(media_dir: Path, source_20s: Path) -> MediaServer:
    with serve_directory(media_dir, ranges=False) as server:
        yield server


# --- RangeReader ---------------------------------------------------------------------------


def test_random_reads_and_seeks_return_the_file_bytes(
    server: MediaServer, source_60s: Path
) -> None:
    data = source_60s.read_bytes()
    counter = ByteCounter()
    rng = random.Random(7)
    with HttpSession(counter=counter) as session:
        reader = RangeReader(session, server.url(source_60s.name))
        assert reader.seekable() and reader.size == len(data)
        for _ in range(200):
            at = rng.randrange(0, len(data))
            n = rng.choice([1, 100, 4096, 32768, 70000, 300_000])
            assert reader.seek(at) == at
            assert reader.read(n) == data[at : at + n]
            assert reader.tell() == min(at + n, len(data))
        assert reader.seek(-10, io.SEEK_END) == len(data) - 10
        assert reader.read(100) == data[-10:]
        assert reader.read(100) == b""  # at the end
        reader.seek(len(data) + 5)
        assert reader.read(10) == b""  # past the end
    _assert_bounded(server)
    assert counter.total == server.bytes_sent
    assert counter.requests == len(server.requests)


def test_sequential_reads_grow_the_request_up_to_the_cap(
    server: MediaServer, source_60s: Path
) -> None:
    data = source_60s.read_bytes()
    with HttpSession() as session:
        reader = RangeReader(session, server.url(source_60s.name))
        while chunk := reader.read(65536):
            assert chunk
        assert reader.tell() == len(data)
        sizes = [_span(r.range) for r in server.requests]
        # each request GROWTH times the last (to a block; the last is what was left)
        assert all(
            a < b <= a * GROWTH + BLOCK_SIZE for a, b in zip(sizes[:-2], sizes[1:-1], strict=True)
        ), sizes
        assert max(sizes) <= MAX_REQUEST
        assert sum(sizes) == len(data)  # every byte exactly once
        server.reset_counts()
        reader.seek(len(data) // 3)
        assert reader.read(100_000) == data[len(data) // 3 : len(data) // 3 + 100_000]
        assert server.requests == []  # all cached


def test_requests_never_exceed_the_cap(server: MediaServer, media_dir: Path) -> None:
    big = media_dir / "big.bin"
    if not big.exists():
        big.write_bytes(random.Random(1).randbytes(48 * 1024 * 1024))
    with HttpSession() as session:
        reader = RangeReader(session, server.url(big.name))
        assert len(reader.read(-1)) == big.stat().st_size
    sizes = [_span(r.range) for r in server.requests]
    assert max(sizes) == MAX_REQUEST
    _assert_bounded(server)


def _span(header: str | None) -> int:
    assert header is not None
    first, last = header.removeprefix("bytes=").split("-")
    return int(last) - int(first) + 1


def test_a_seek_fetches_little(server: MediaServer, source_60s: Path) -> None:
    with HttpSession() as session:
        reader = RangeReader(session, server.url(source_60s.name))
        server.reset_counts()
        reader.seek(source_60s.stat().st_size // 2)
        reader.read(1000)
    assert server.bytes_sent <= 128 * 1024


def test_dropped_transfers_resume_and_count(server: MediaServer, source_20s: Path) -> None:
    data = source_20s.read_bytes()
    counter = ByteCounter()
    with HttpSession(counter=counter) as session:
        reader = RangeReader(session, server.url(source_20s.name))
        server.drop_after(source_20s.name, 5000)
        reader.seek(1_000_000)
        assert reader.read(200_000) == data[1_000_000:1_200_000]
    assert counter.total == server.bytes_sent
    _assert_bounded(server)


def test_a_server_without_ranges_is_detected(
    no_range_server: MediaServer, source_20s: Path
) -> None:
    with HttpSession() as session, pytest.raises(RangeNotSupported):
        RangeReader(session, no_range_server.url(source_20s.name))


@pytest.mark.parametrize("status", [404, 500, 403])
def test_http_errors_are_unreachable(server: MediaServer, source_20s: Path, status: int) -> None:
    server.fail(source_20s.name, status)
    with HttpSession() as session, pytest.raises(ClipError) as caught:
        RangeReader(session, server.url(source_20s.name) + "?token=s3cr3t")
    assert caught.value.code == "source_unreachable"
    assert str(status) in caught.value.message
    assert "s3cr3t" not in caught.value.message
    assert str(server.port) not in caught.value.message  # nothing of the server's address


def test_a_refused_connection_is_unreachable(free_port: int) -> None:
    with HttpSession(timeout_s=2) as session, pytest.raises(ClipError) as caught:
        RangeReader(session, f"http://127.0.0.1:{free_port}/clip.mp4")
    assert caught.value.code == "source_unreachable"
    # a fixed message: neither the port nor the socket's words (which would map internal ports)
    assert caught.value.message == "could not connect to the source server"
    assert str(free_port) not in caught.value.message


@pytest.fixture
def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_stream_reader_reads_a_window(no_range_server: MediaServer, source_20s: Path) -> None:
    data = source_20s.read_bytes()
    counter = ByteCounter()
    with HttpSession(counter=counter) as session:
        reader = StreamReader(session, no_range_server.url(source_20s.name), start=100, end=300)
        assert not reader.seekable()
        assert reader.read() == data[100:300]
        reader.close()
    assert counter.total >= 300


# --- opening with PyAV ------------------------------------------------------------------------


def test_an_opener_reads_ranges_and_counts_them(server: MediaServer, source_60s: Path) -> None:
    counter = ByteCounter()
    with SourceOpener(server.url(source_60s.name), counter=counter) as op, op.open() as opened:
        assert opened.fetch_path == "range"
        assert index_after_seek(opened.container, 30.0) == 30 * FPS
    _assert_bounded(server)
    assert counter.total == server.bytes_sent
    assert counter.total < 0.2 * source_60s.stat().st_size


def test_headers_reach_the_server(server: MediaServer, source_20s: Path) -> None:
    with (
        SourceOpener(
            server.url(source_20s.name),
            headers={"User-Agent": "clipmaker-test/2"},
            counter=ByteCounter(),
        ) as op,
        op.open() as opened,
    ):
        assert opened.container.streams.video
    assert {r.headers.get("User-Agent") for r in server.requests} == {"clipmaker-test/2"}
    assert {r.headers.get("Accept-Encoding") for r in server.requests} == {"identity"}


def test_reopening_reuses_the_cache(server: MediaServer, source_20s: Path) -> None:
    with SourceOpener(server.url(source_20s.name), counter=ByteCounter()) as opener:
        with opener() as container:
            next(container.decode(video=0))
        first = len(server.requests)
        with opener() as container:
            next(container.decode(video=0))
        assert len(server.requests) == first  # the header and first frames came from the cache
        assert opener.fetch_path == "range"


def test_without_range_support_the_opener_downloads_once(
    no_range_server: MediaServer, source_20s: Path, tmp_path: Path
) -> None:
    counter = ByteCounter()
    size = source_20s.stat().st_size
    with SourceOpener(
        no_range_server.url(source_20s.name), counter=counter, scratch_dir=tmp_path
    ) as opener:
        with opener() as container:
            assert index_after_seek(container, 12.0) == 12 * FPS
        assert opener.fetch_path == "full"
        assert opener.local_path is not None and opener.local_path.parent == tmp_path
        assert opener.local_path.read_bytes() == source_20s.read_bytes()
        requests = len(no_range_server.requests)
        with opener() as container:  # a second open: the download is reused
            assert index_after_seek(container, 3.0) == 3 * FPS
        assert len(no_range_server.requests) == requests
    # the aborted ranged attempt plus one whole download
    assert size <= counter.total <= no_range_server.bytes_sent
    assert opener.local_path.exists()  # a given scratch_dir is the caller's to clean


def test_a_clip_from_a_server_without_ranges(
    no_range_server: MediaServer, source_20s: Path, tmp_path: Path
) -> None:
    result = cut(no_range_server.url(source_20s.name), tmp_path / "clip.mp4", 2.0, 3.0)
    assert first_frame_index_and_time(result.path) == (2 * FPS, 0.0)
    with SourceOpener(
        no_range_server.url(source_20s.name), counter=ByteCounter(), scratch_dir=tmp_path / "s"
    ) as opener:
        result = cut(opener, tmp_path / "clip2.mp4", 7.0, 9.0)
        assert opener.fetch_path == "full"
    assert first_frame_index_and_time(result.path) == (7 * FPS, 0.0)


def test_live_sources_are_downloaded(server: MediaServer, source_20s: Path) -> None:
    with SourceOpener(server.url(source_20s.name), counter=ByteCounter(), live=True) as opener:
        with opener() as container:
            assert container.streams.video
        assert opener.fetch_path == "full"
        temp = opener.local_path
        assert temp is not None and temp.exists()
    assert not temp.exists()  # the temporary directory went with the opener
    assert all(r.range is None for r in server.requests)


def test_local_files(source_20s: Path) -> None:
    counter = ByteCounter()
    with SourceOpener(source_20s, counter=counter) as opener:
        with opener() as container:
            assert index_after_seek(container, 5.0) == 5 * FPS
        assert opener.fetch_path == "local"
    assert counter.total == 0


def test_open_errors_are_clip_errors(server: MediaServer, junk: dict[str, Path]) -> None:
    with (
        pytest.raises(ClipError) as caught,
        SourceOpener(server.url("nope.mp4"), counter=ByteCounter()) as op,
        op.open(),
    ):
        pass
    assert caught.value.code == "source_unreachable" and "404" in caught.value.message
    with (
        pytest.raises(ClipError) as caught,
        SourceOpener(server.url(junk["html"].name), counter=ByteCounter()) as op,
        op.open(),
    ):
        pass
    assert caught.value.code == "not_media"


def test_full_fetch(server: MediaServer, source_20s: Path, tmp_path: Path) -> None:
    counter = ByteCounter()
    seen: list[tuple[int, int | None]] = []
    dest = full_fetch(
        server.url(source_20s.name),
        tmp_path / "copy.mp4",
        counter=counter,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == source_20s.read_bytes()
    assert counter.total == source_20s.stat().st_size == server.bytes_sent
    assert seen[-1] == (source_20s.stat().st_size, source_20s.stat().st_size)
    with pytest.raises(ClipError) as caught:
        full_fetch(
            server.url(source_20s.name), tmp_path / "big.mp4", counter=counter, max_bytes=1000
        )
    assert caught.value.code == "source_unreachable"
    assert not (tmp_path / "big.mp4").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["copy.mp4"]


# --- HLS through io_open ----------------------------------------------------------------------


def test_hls_reads_go_through_io_open_and_count(
    server: MediaServer, media_dir: Path, source_20s: Path
) -> None:
    playlist = make_hls(source_20s, media_dir / "hls")
    segments = sorted((media_dir / "hls").glob("*.ts"))
    counter = ByteCounter()
    url = server.url(f"hls/{playlist.name}")
    with SourceOpener(url, counter=counter) as opener:
        with opener() as container:
            assert container.format.name == "hls"
            assert index_after_seek(container, 12.0) == 12 * FPS
        assert opener.fetch_path == "range"
    paths = {r.path for r in server.requests}
    assert f"/hls/{playlist.name}" in paths
    assert any(p.endswith(".ts") for p in paths)
    _assert_bounded(server)
    assert counter.total == server.bytes_sent
    # a seek to 12 s reads the first segment (stream info) and the one holding 12 s, not all
    assert counter.total < 0.5 * sum(s.stat().st_size for s in segments)


def test_io_open_refuses_other_schemes() -> None:
    with HttpSession() as session:
        with pytest.raises(PermissionError):
            nested_open(session)("file:///etc/passwd", 1, {})
        with pytest.raises(PermissionError):
            nested_open(session)("http://127.0.0.1/x.ts", 2, {})  # write


def test_hls_byte_range_segments_read_only_their_range(
    server: MediaServer, media_dir: Path, source_20s: Path
) -> None:
    playlist = make_hls(source_20s, media_dir / "hls-single", single_file=True)
    ts = media_dir / "hls-single" / "playlist.ts"
    counter = ByteCounter()
    url = server.url(f"hls-single/{playlist.name}")
    with SourceOpener(url, counter=counter) as opener, opener() as container:
        assert index_after_seek(container, 12.0) == 12 * FPS
    segment_requests = [r for r in server.requests if r.path.endswith(".ts")]
    assert segment_requests
    _assert_bounded(server)
    assert counter.total == server.bytes_sent
    # the first segment (stream info) and the one holding 12 s, each asked for by its range
    assert sum(_span(r.range) for r in segment_requests) < 0.4 * ts.stat().st_size
    starts = {int(r.range.removeprefix("bytes=").split("-")[0]) for r in segment_requests}
    assert 0 in starts and any(s > 0 for s in starts)


def test_a_dash_manifest_must_be_resolved_first(
    server: MediaServer, media_dir: Path, source_20s: Path
) -> None:
    manifest = media_dir / "bare.mpd"
    manifest.write_text('<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/>\n')
    with (
        pytest.raises(ClipError) as caught,
        SourceOpener(server.url(manifest.name), counter=ByteCounter()) as op,
        op.open(),
    ):
        pass
    assert caught.value.code == "not_media"
    assert "resolve" in caught.value.message
