"""Sources as sites serve them, through the whole service: DASH with separate video and audio
(as YouTube serves it), HLS, and a server without Range support (full fetch, recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Service
from tests.api.helpers import clip_facts, download
from tests.support.http_server import MediaServer, serve_directory
from tests.support.streaming import make_dash_segment_base, make_dash_template, make_hls

FPS = 25


@pytest.fixture(scope="session")
def streaming_dir(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("streaming")
    talk = media_dir / "talk.mp4"
    make_dash_segment_base([talk], talk, root / "dash-base")
    make_dash_template([talk], talk, root / "dash-template")
    make_hls(talk, root / "hls")
    return root


@pytest.fixture(scope="session")
def streaming_server(streaming_dir: Path) -> Iterator[MediaServer]:
    with serve_directory(streaming_dir) as server:
        yield server


@pytest.fixture(scope="session")
def no_range_server(media_dir: Path) -> Iterator[MediaServer]:
    with serve_directory(media_dir, ranges=False) as server:
        yield server


@pytest.mark.parametrize(
    "manifest", ["dash-base/manifest.mpd", "dash-template/manifest.mpd", "hls/playlist.m3u8"]
)
def test_streaming_sources_are_clipped_with_their_audio(
    service: Service, streaming_server: MediaServer, manifest: str, tmp_path: Path
) -> None:
    job = service.client.submit(
        url=streaming_server.url(manifest), start=6.0, end=10.0, subtitles="srt"
    )
    result = service.client.wait_result(job.id, progress=False)
    clip = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    assert clip.first_frame_index == 6 * FPS
    assert clip.video_duration == pytest.approx(4.0, abs=1 / FPS)
    assert clip.audio_codec == "aac"  # the separate audio stream made it into the clip
    assert clip.audio_duration == pytest.approx(4.0, abs=0.05)
    srt = service.client.fetch_text(result.subtitles.srt.url).lower()
    assert "purple" in srt or "elephant" in srt  # spoken 6.5 s into the source
    media = service.client.job(job.id).media
    assert media is not None and media.fetch_path == "range"
    assert media.bytes_read is not None and media.bytes_read > 0


def test_a_server_without_range_support_is_fetched_whole(
    service: Service, no_range_server: MediaServer, media_dir: Path, tmp_path: Path
) -> None:
    job = service.client.submit(url=no_range_server.url("talk.mp4"), start=2.0, end=5.0)
    result = service.client.wait_result(job.id, progress=False)
    clip = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    assert clip.first_frame_index == 2 * FPS
    media = service.client.job(job.id).media
    assert media is not None and media.fetch_path == "full"
    assert media.bytes_read is not None
    assert media.bytes_read >= (media_dir / "talk.mp4").stat().st_size
    assert list(service.settings.scratch_dir.glob(f"{job.id}-*")) == []  # download removed


def test_a_range_read_fetches_a_small_part_of_a_long_source(
    service: Service, media_server: MediaServer, media_dir: Path
) -> None:
    job = service.client.submit(url=media_server.url("long.mp4"), start=31.5, end=34.5)
    service.client.wait_result(job.id, progress=False)
    media = service.client.job(job.id).media
    assert media is not None and media.fetch_path == "range"
    assert media.cut_mode == "smart"
    size = (media_dir / "long.mp4").stat().st_size
    assert media.bytes_read is not None and media.bytes_read < size / 4
