"""probe(): what a source is, and the right error code when it is not usable."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import av
import pytest

from clipmaker.errors import ClipError
from clipmaker.media import AudioInfo, ByteCounter, MediaInfo, SourceOpener, VideoInfo, probe
from tests.support.http_server import MediaServer, serve_directory
from tests.support.streaming import make_hls


def test_probe_describes_an_mp4(source_20s: Path) -> None:
    info = probe(source_20s)
    assert isinstance(info, MediaInfo)
    assert info.duration == pytest.approx(20.0, abs=0.05)
    assert info.start_time == pytest.approx(0.0, abs=0.05)
    assert "mp4" in info.format_name
    assert info.video == VideoInfo(codec="h264", width=320, height=240, fps=25.0, pix_fmt="yuv420p")
    assert info.audio == AudioInfo(codec="aac", sample_rate=48000, channels=2)


def test_probe_describes_a_webm(source_webm: Path) -> None:
    info = probe(str(source_webm))
    assert info.duration == pytest.approx(8.0, abs=0.05)
    assert "webm" in info.format_name
    assert info.video is not None and info.video.codec == "vp9"
    assert info.audio is not None and info.audio.codec == "opus"


def test_probe_measures_a_file_whose_header_has_no_duration(source_no_duration: Path) -> None:
    with av.open(str(source_no_duration)) as container:
        assert container.duration is None  # the premise
    assert probe(source_no_duration).duration == pytest.approx(8.0, abs=0.05)


def test_probe_of_audio_only_has_no_video(audio_only: Path) -> None:
    info = probe(audio_only)
    assert info.video is None
    assert info.audio is not None and info.audio.codec == "aac"


def test_probe_does_not_count_cover_art_as_video(audio_with_cover: Path) -> None:
    info = probe(audio_with_cover)
    assert info.video is None
    assert info.audio is not None


def test_probe_over_http(server: MediaServer, source_20s: Path) -> None:
    info = probe(server.url(source_20s.name), http_headers={"User-Agent": "clipmaker-test/1"})
    assert info.duration == pytest.approx(20.0, abs=0.05)
    assert info.video is not None and info.video.width == 320
    assert server.requests and all(r.status == 206 for r in server.requests)
    assert all(r.headers.get("User-Agent") == "clipmaker-test/1" for r in server.requests)
    # a few Range reads (header, first frame, tail), not the whole 3.8 MB file
    assert server.bytes_sent < source_20s.stat().st_size


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("text", {"not_media"}),
        ("html", {"not_media"}),
        ("empty", {"not_media"}),
        ("garbage", {"not_media", "corrupt_media"}),
        ("truncated", {"corrupt_media"}),
    ],
)
def test_probe_rejects_unusable_files(junk: dict[str, Path], kind: str, codes: set[str]) -> None:
    with pytest.raises(ClipError) as caught:
        probe(junk[kind])
    assert caught.value.code in codes
    assert junk[kind].name in caught.value.message


def test_probe_of_a_truncated_file_says_so(junk: dict[str, Path]) -> None:
    with pytest.raises(ClipError, match="truncated") as caught:
        probe(junk["truncated"])
    assert caught.value.code == "corrupt_media"


def test_probe_of_an_html_page_over_http(server: MediaServer, junk: dict[str, Path]) -> None:
    with pytest.raises(ClipError) as caught:
        probe(server.url(junk["html"].name))
    assert caught.value.code == "not_media"


def test_probe_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClipError) as caught:
        probe(tmp_path / "nope.mp4")
    assert caught.value.code == "source_unreachable"


def test_probe_of_an_http_404(server: MediaServer) -> None:
    with pytest.raises(ClipError, match="404") as caught:
        probe(server.url("nope.mp4"))
    assert caught.value.code == "source_unreachable"


def test_probe_of_a_refused_connection() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nobody listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ClipError) as caught:
        probe(f"http://127.0.0.1:{port}/clip.mp4")
    assert caught.value.code == "source_unreachable"


def test_probe_refuses_other_schemes() -> None:
    with pytest.raises(ClipError) as caught:
        probe("ftp://example.com/clip.mp4")
    assert caught.value.code == "invalid_source_url"


def test_signed_url_secrets_stay_out_of_messages(server: MediaServer) -> None:
    with pytest.raises(ClipError) as caught:
        probe(server.url("nope.mp4") + "?signature=s3cr3t")
    assert "s3cr3t" not in caught.value.message


def test_probe_over_http_counts_what_it_reads(server: MediaServer, source_60s: Path) -> None:
    """A long moov-at-front MP4: the header, the first frames and the tail, nothing else."""
    counter = ByteCounter()
    size = source_60s.stat().st_size
    info = probe(server.url(source_60s.name), counter=counter)
    assert info.duration == pytest.approx(60.0, abs=0.05)
    assert counter.total == server.bytes_sent
    assert counter.total < 0.2 * size, f"read {counter.total} of {size} bytes"
    assert all(r.status == 206 and re.match(r"^bytes=\d+-\d+$", r.range) for r in server.requests)


def test_probe_of_a_server_without_range_support(media_dir: Path, source_20s: Path) -> None:
    counter = ByteCounter()
    with serve_directory(media_dir, ranges=False) as plain:
        info = probe(plain.url(source_20s.name), counter=counter)
        sent = plain.bytes_sent
    assert info.duration == pytest.approx(20.0, abs=0.05)
    assert source_20s.stat().st_size <= counter.total <= sent  # downloaded whole, then read


def test_probe_of_an_hls_playlist(server: MediaServer, media_dir: Path, source_20s: Path) -> None:
    playlist = make_hls(source_20s, media_dir / "hls")
    counter = ByteCounter()
    info = probe(server.url(f"hls/{playlist.name}"), counter=counter)
    assert info.format_name == "hls"
    assert info.duration == pytest.approx(20.0, abs=0.1)
    assert info.video is not None and info.video.height == 240
    assert info.audio is not None
    assert counter.total == server.bytes_sent


def test_probe_of_an_http_500(server: MediaServer, source_20s: Path) -> None:
    server.fail(source_20s.name, 500)
    with pytest.raises(ClipError, match="500") as caught:
        probe(server.url(source_20s.name))
    assert caught.value.code == "source_unreachable"


def test_probe_through_the_cut_s_opener_fetches_the_header_once(
    server: MediaServer, source_60s: Path
) -> None:
    counter = ByteCounter()
    with SourceOpener(server.url(source_60s.name), counter=counter) as opener:
        info = probe(opener)
        assert info.duration == pytest.approx(60.0, abs=0.05)
        assert opener.fetch_path == "range"
        probed = counter.total
        with opener() as container:  # what the cut does next: open again, read the header
            assert container.streams.video
        assert counter.total == probed  # from the cache
    assert counter.total == server.bytes_sent


def test_a_local_playlist_cannot_make_us_read_other_files(source_20s: Path, tmp_path: Path) -> None:
    """An upload is a local file: a playlist inside it would name other local files."""
    playlist = tmp_path / "evil.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:20\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:20.0,\n{source_20s}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(ClipError) as caught:
        probe(playlist)
    assert caught.value.code == "not_media"
    concat = tmp_path / "list.ffconcat"
    concat.write_text(f"ffconcat version 1.0\nfile '{source_20s}'\n")
    with pytest.raises(ClipError) as caught:
        probe(concat)
    assert caught.value.code == "not_media"
