"""resolve(): from a user's URL to the media inputs to read, or a plain-words error."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yt_dlp

from clipmaker.errors import ClipError
from clipmaker.media import ByteCounter, ResolvedSource, SourceOpener, cut, resolve
from clipmaker.media.resolve import ytdlp_params
from clipmaker.media.resolved import dash_fragments_playlist, resolved_from_info
from clipmaker.testing.sample import (
    first_frame_index_and_time,
    index_after_seek,
    make_video,
)
from tests.support.http_server import MediaServer
from tests.support.streaming import make_dash_segment_base, make_dash_template, make_hls


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
    # a fixed message: no port, no socket words (they would map internal ports)
    assert caught.value.message == "could not connect to the source server"
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


# --- formats: DASH, HLS, height cap -----------------------------------------------------------

FPS = 25
_BOUNDED = re.compile(r"^bytes=\d+-\d+$")


@pytest.fixture(scope="session")
def source_20s_120p(media_dir: Path) -> Path:
    """The 20 s source's picture at 160x120 (same frames, same GOP), video only."""
    path = media_dir / "source20-120p.mp4"
    if not path.exists():
        make_video(path, duration_s=20, size=(160, 120), audio=False)
    return path


@pytest.fixture(scope="session")
def dash(media_dir: Path, source_20s: Path, source_20s_120p: Path) -> dict[str, Path]:
    """Two DASH presentations of the same 240p + 120p video and audio: single files with
    SegmentBase (YouTube's shape) and SegmentTemplate fragments (FFmpeg's dash muxer)."""
    videos = [source_20s, source_20s_120p]
    return {
        "segment_base": make_dash_segment_base(videos, source_20s, media_dir / "dash-sb"),
        "template": make_dash_template(videos, source_20s, media_dir / "dash-tpl"),
    }


@pytest.fixture(scope="session")
def hls(media_dir: Path, source_20s: Path) -> Path:
    return make_hls(source_20s, media_dir / "hls")


def _rel(media_dir: Path, path: Path) -> str:
    return str(path.relative_to(media_dir))


def test_a_direct_link_is_one_progressive_input(server: MediaServer, source_20s: Path) -> None:
    resolved = resolve(server.url(source_20s.name))
    assert resolved.protocol == "http"
    assert resolved.audio_url is None and resolved.audio_http_headers == {}
    assert resolved.is_live is False


@pytest.mark.parametrize(
    ("flavour", "protocol"),
    [("segment_base", "http"), ("template", "http_dash_segments")],
)
def test_dash_gives_separate_video_and_audio_inputs(
    server: MediaServer, media_dir: Path, dash: dict[str, Path], flavour: str, protocol: str
) -> None:
    resolved = resolve(server.url(_rel(media_dir, dash[flavour])))
    assert resolved.protocol == protocol
    assert resolved.height == 240
    assert resolved.audio_url is not None and resolved.audio_url != resolved.media_url
    assert resolved.audio_format_id is not None
    assert "User-Agent" in resolved.audio_http_headers
    if flavour == "segment_base":  # one file per representation: range-read directly
        assert resolved.media_url.startswith(server.base_url)
        assert resolved.audio_url.startswith(server.base_url)
    else:  # a fragment list: an HLS playlist of the fragments
        assert resolved.media_url.startswith("data:application/vnd.apple.mpegurl")

    server.reset_counts()
    counter = ByteCounter()
    with SourceOpener(resolved.media_url, headers=resolved.http_headers, counter=counter) as video:
        with video() as container:
            assert len(container.streams.video) == 1 and not container.streams.audio
            assert container.streams.video[0].codec_context.height == 240
            assert index_after_seek(container, 12.0) == 12 * FPS
            assert index_after_seek(container, 3.0) == 3 * FPS
        assert video.fetch_path == "range"
    with SourceOpener(
        resolved.audio_url, headers=resolved.audio_http_headers, counter=counter
    ) as audio:
        with audio() as container:
            assert len(container.streams.audio) == 1 and not container.streams.video
            stream = container.streams.audio[0]
            container.seek(round(10.0 / stream.time_base), stream=stream, backward=True)
            frame = next(container.decode(stream))
            assert frame.time is not None and 8.0 <= frame.time <= 10.1
        assert audio.fetch_path == "range"
    ranges = [r.range for r in server.requests]
    assert all(r is not None and _BOUNDED.match(r) for r in ranges), ranges
    assert counter.total == server.bytes_sent
    # two seeks in 20 s of video and one in the audio: well under the whole presentation
    total = sum(p.stat().st_size for p in dash[flavour].parent.iterdir())
    assert counter.total < 0.6 * total


@pytest.mark.parametrize("flavour", ["segment_base", "template"])
@pytest.mark.parametrize(("cap", "height"), [(1080, 240), (240, 240), (200, 120), (100, 120)])
def test_the_height_cap_picks_among_representations(
    server: MediaServer,
    media_dir: Path,
    dash: dict[str, Path],
    flavour: str,
    cap: int,
    height: int,
) -> None:
    resolved = resolve(server.url(_rel(media_dir, dash[flavour])), max_height=cap)
    assert resolved.height == height  # under the cap the tallest, else the smallest above
    assert resolved.audio_url is not None


def test_a_dash_fragment_list_can_be_cut(
    server: MediaServer, media_dir: Path, dash: dict[str, Path], tmp_path: Path
) -> None:
    resolved = resolve(server.url(_rel(media_dir, dash["template"])), max_height=120)
    assert resolved.height == 120
    result = cut(resolved.media_url, tmp_path / "clip.mp4", 5.0, 6.0)
    assert first_frame_index_and_time(result.path) == (5 * FPS, 0.0)


def test_hls_is_read_by_the_hls_demuxer(server: MediaServer, media_dir: Path, hls: Path) -> None:
    url = server.url(_rel(media_dir, hls))
    resolved = resolve(url)
    assert resolved.protocol == "m3u8_native"
    assert resolved.media_url == url
    assert resolved.audio_url is None
    assert resolved.is_live is False
    assert resolved.duration == pytest.approx(20.0, abs=0.1)
    server.reset_counts()
    counter = ByteCounter()
    with SourceOpener(resolved.media_url, headers=resolved.http_headers, counter=counter) as opener:
        with opener() as container:
            assert container.format.name == "hls"
            assert container.streams.video and container.streams.audio
            assert index_after_seek(container, 14.0) == 14 * FPS
        assert opener.fetch_path == "range"
    assert any(r.path.endswith(".ts") for r in server.requests)
    assert {r.headers.get("User-Agent") for r in server.requests} == {
        resolved.http_headers["User-Agent"]
    }
    assert counter.total == server.bytes_sent > 0


def test_a_live_hls_playlist_is_reported_live(
    server: MediaServer, media_dir: Path, hls: Path
) -> None:
    live = hls.with_name("live.m3u8")
    lines = hls.read_text().splitlines()
    live.write_text(
        "\n".join(line for line in lines if "ENDLIST" not in line and "PLAYLIST-TYPE" not in line)
        + "\n"
    )
    resolved = resolve(server.url(_rel(media_dir, live)))
    assert resolved.is_live is True


# yt-dlp's format selection on a YouTube-like list (no network: process_ie_result)


def _fmt(fid: str, height: int | None, vcodec: str, acodec: str, tbr: float) -> dict[str, Any]:
    return {
        "format_id": fid,
        "url": f"https://media.example/{fid}",
        "height": height,
        "width": height and height * 16 // 9,
        "vcodec": vcodec,
        "acodec": acodec,
        "protocol": "https",
        "ext": "mp4",
        "tbr": tbr,
        "http_headers": {"User-Agent": "ua", "X-Format": fid},
    }


_YOUTUBE_LIKE = [
    _fmt("18", 360, "avc1.42001E", "mp4a.40.2", 500),  # the one progressive format
    _fmt("160", 144, "avc1.4d400c", "none", 100),
    _fmt("136", 720, "avc1.4d401f", "none", 2000),
    _fmt("137", 1080, "avc1.640028", "none", 4000),
    _fmt("248", 1080, "vp9", "none", 3000),
    _fmt("399", 1080, "av01.0.08M.08", "none", 2000),
    _fmt("313", 2160, "vp9", "none", 15000),
    _fmt("140", None, "none", "mp4a.40.2", 128),
    _fmt("251", None, "none", "opus", 160),
    {**_fmt("sb0", 90, "none", "none", 1), "protocol": "mhtml", "ext": "mhtml"},
    {**_fmt("hls-1080", 1080, "avc1.640028", "mp4a.40.2", 4500), "protocol": "m3u8_native"},
]


@pytest.mark.parametrize(
    ("cap", "video", "audio"),
    [
        (1080, "137", "140"),  # separate streams, H.264 over VP9/AV1, https over HLS, AAC
        (720, "136", "140"),
        (480, "18", None),  # the progressive 360p beats 144p + audio
        (100, "160", "140"),  # nothing fits: the smallest above the cap
        (4320, "313", "140"),
    ],
)
def test_format_choice(cap: int, video: str, audio: str | None) -> None:
    page = "https://video.example/watch?v=x"
    with yt_dlp.YoutubeDL(ytdlp_params(cap, 5.0)) as ydl:
        info = ydl.process_ie_result(
            {
                "id": "x",
                "title": "t",
                "formats": [dict(f) for f in _YOUTUBE_LIKE],
                "extractor": "test",
                "webpage_url": page,
            },
            download=False,
        )
        resolved = resolved_from_info(ydl, info, page)
    assert resolved.format_id == video
    assert resolved.media_url == f"https://media.example/{video}"
    assert resolved.http_headers["X-Format"] == video  # each format's own headers
    assert resolved.audio_format_id == audio
    if audio is None:
        assert resolved.audio_url is None and resolved.audio_http_headers == {}
    else:
        assert resolved.audio_url == f"https://media.example/{audio}"
        assert resolved.audio_http_headers["X-Format"] == audio


def test_a_fragment_list_becomes_an_hls_playlist() -> None:
    fmt = {
        "format_id": "v1",
        "fragment_base_url": "https://cdn.example/v/",
        "fragments": [
            {"path": "init.mp4"},
            {"path": "seg-1.m4s", "duration": 4.0},
            {"path": "seg-2.m4s", "duration": 4.0},
            {"url": "https://other.example/seg 3.m4s", "duration": 4.0},
        ],
    }
    text = dash_fragments_playlist(fmt, duration=10.5, source="DASH format v1 of x")
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert '#EXT-X-MAP:URI="https://cdn.example/v/init.mp4"' in lines
    assert [line for line in lines if line.startswith("#EXTINF")] == [
        "#EXTINF:4.000000,",
        "#EXTINF:4.000000,",
        "#EXTINF:2.500000,",  # the last one ends with the presentation
    ]
    assert "https://cdn.example/v/seg-2.m4s" in lines
    assert "https://other.example/seg%203.m4s" in lines
    assert lines[-1] == "#EXT-X-ENDLIST"


@pytest.mark.parametrize("flavour", ["segment_base", "template"])
def test_a_dash_source_is_cut_from_separate_inputs(
    server: MediaServer, media_dir: Path, dash: dict[str, Path], flavour: str, tmp_path: Path
) -> None:
    resolved = resolve(server.url(_rel(media_dir, dash[flavour])))
    assert resolved.audio_url is not None
    server.reset_counts()
    counter = ByteCounter()
    with (
        SourceOpener(resolved.media_url, headers=resolved.http_headers, counter=counter) as video,
        SourceOpener(
            resolved.audio_url, headers=resolved.audio_http_headers, counter=counter
        ) as audio,
    ):
        result = cut(video, tmp_path / "clip.mp4", 6.0, 9.0, audio=audio)
        assert (video.fetch_path, audio.fetch_path) == ("range", "range")
    assert first_frame_index_and_time(result.path) == (6 * FPS, 0.0)
    assert result.audio_codec == "aac"
    assert result.duration == pytest.approx(3.0, abs=0.05)
    assert counter.total == server.bytes_sent
