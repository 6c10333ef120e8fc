"""YouTube as it behaves since 2025, through the whole service, against a loopback stand-in.

The stand-in (``tests/support/youtube.py``) is a player API plus a googlevideo-like host;
the service loads its yt-dlp extractor through ``CLIPMAKER_YTDLP_PLUGIN_DIRS``, as a
deployment would load any plugin. Every media request is throttled like googlevideo (403 on
a range over 10 MiB, or open-ended, or none at all on a larger file), so every test also
checks that the service never asked for one. What each test checks is what a user sees: the
job's status, error code and message, the clip's first frame and duration, and the path
recorded on the job (``media.note``).
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clipmaker.client import Client
from clipmaker.media.http import MAX_REQUEST
from clipmaker.media.youtube import MESSAGES
from clipmaker.testing.sample import make_video
from tests.api.conftest import Service, _settings
from tests.api.helpers import clip_facts, download
from tests.support.streaming import remux
from tests.support.youtube import YoutubeStandIn, serve_youtube

FPS = 25
PLUGINS = Path(__file__).resolve().parents[1] / "support" / "ytdlp_plugins"
RETRIES = 2  # rate_limit_retries of the service under test
_RANGE = re.compile(r"^bytes=(\d+)-(\d+)$")


@pytest.fixture(scope="session")
def youtube_media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A 60 s source of about 50 MiB (near-lossless, so several times googlevideo's throttle
    size), as YouTube serves it: progressive (itag 18), video-only (137), audio-only (140)."""
    root = tmp_path_factory.mktemp("youtube")
    progressive = make_video(
        root / "18.mp4", duration_s=60.0, fps=FPS, gop_s=2.0, size=(480, 360), crf=4
    )
    faststart = {"movflags": "+faststart"}
    video = remux([(progressive, "video")], root / "137.mp4", container_options=faststart)
    audio = remux(
        [(progressive, "audio")], root / "140.m4a", format="mp4", container_options=faststart
    )
    assert video.stat().st_size > 2 * MAX_REQUEST
    return progressive, video, audio


@pytest.fixture(scope="session")
def youtube(youtube_media: tuple[Path, Path, Path]) -> Iterator[YoutubeStandIn]:
    with serve_youtube(*youtube_media, throttle_bytes=MAX_REQUEST) as server:
        yield server


@pytest.fixture(scope="session", params=["embedded", "services"])
def yt_service(
    request: pytest.FixtureRequest, ray_cluster: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """The service in both shapes (see ``tests/api/conftest.py``), configured as a deployment
    that clips from YouTube: the stand-in's extractor plugin, two player clients to try, and
    short rate-limit waits. No ASR worker: these jobs have no subtitles."""
    from ray import serve

    from clipmaker.app import build_app
    from clipmaker.cli import wait_ready
    from clipmaker.queue import connect_redis
    from clipmaker.workers import shutdown_worker_pool

    mode = request.param
    instance = f"yt-{mode}-{secrets.token_hex(3)}"
    tmp = tmp_path_factory.mktemp(f"yt-{mode}")
    prefix = f"/{instance}"
    settings = _settings(mode, tmp, instance, request).with_overrides(
        http_port=ray_cluster,
        public_base_url=f"http://127.0.0.1:{ray_cluster}{prefix}",
        asr_workers=0,
        ytdlp_plugin_dirs=(str(PLUGINS),),
        youtube_player_clients=("web", "tv"),
        rate_limit_retries=RETRIES,
        rate_limit_backoff_s=0.2,
    )
    serve.run(build_app(settings), name=instance, route_prefix=prefix)
    base_url = settings.resolved_public_base_url
    wait_ready(base_url, timeout_s=180)
    client = Client(base_url)
    yield Service(mode, settings, base_url, client)
    client.close()
    serve.delete(instance)
    shutdown_worker_pool(settings)
    if mode == "embedded":
        with contextlib.suppress(redis.RedisError):
            connect_redis(settings).shutdown(nosave=True)


def _assert_never_throttled(youtube: YoutubeStandIn, video_id: str) -> None:
    """Every media request of ``video_id`` was a bounded range no larger than the throttle
    size, and none was refused for its size."""
    seen = [r for r in youtube.media_requests if r.video_id == video_id]
    assert seen, "the service read nothing from the stand-in"
    for record in seen:
        match = _RANGE.match(record.range or "")
        assert match is not None, f"unbounded request: {record}"
        first, last = int(match.group(1)), int(match.group(2))
        assert last - first + 1 <= MAX_REQUEST, record


def _clip(service: Service, url: str, start: float, end: float, tmp_path: Path):
    job = service.client.submit(url=url, start=start, end=end)
    result = service.client.wait_result(job.id, progress=False, timeout=300)
    facts = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    return service.client.job(job.id), facts


def test_adaptive_formats_are_read_by_bounded_ranges(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    """A long clip reads tens of MiB in separate video and audio: never a range over 10 MiB."""
    job, clip = _clip(yt_service, youtube.watch_url("okvideo0001"), 5.0, 45.0, tmp_path)
    assert clip.first_frame_index == 5 * FPS
    assert clip.video_duration == pytest.approx(40.0, abs=1 / FPS)
    assert clip.audio_codec == "aac"
    assert job.media is not None and job.media.fetch_path == "range"
    assert job.media.note is None or "YouTube" not in job.media.note
    itags = {r.itag for r in youtube.media_requests if r.video_id == "okvideo0001"}
    assert itags == {137, 140}
    assert job.media.bytes_read is not None and job.media.bytes_read > 2 * MAX_REQUEST
    _assert_never_throttled(youtube, "okvideo0001")


def test_formats_refused_without_a_po_token_make_it_try_the_next_client(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    job, clip = _clip(yt_service, youtube.watch_url("needspot001"), 6.0, 9.0, tmp_path)
    assert clip.first_frame_index == 6 * FPS
    assert clip.audio_codec == "aac"
    note = job.media.note if job.media else None
    assert note is not None and "player client tv" in note and "403" in note
    refused = [r for r in youtube.media_requests if r.video_id == "needspot001" and r.status == 403]
    assert refused and {r.client for r in refused} == {"web"}
    read = {(r.client, r.itag) for r in youtube.media_requests if r.video_id == "needspot001"}
    assert ("tv", 137) in read and ("tv", 140) in read
    assert not any(itag == 18 for _, itag in read)  # the progressive format was not needed
    _assert_never_throttled(youtube, "needspot001")


def test_when_every_client_is_refused_the_progressive_format_is_clipped(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    job, clip = _clip(yt_service, youtube.watch_url("potalways01"), 2.0, 5.0, tmp_path)
    assert clip.first_frame_index == 2 * FPS
    assert clip.video_duration == pytest.approx(3.0, abs=1 / FPS)
    assert clip.audio_codec == "aac"  # the progressive format's own audio
    note = job.media.note if job.media else None
    assert note is not None and "progressive" in note and "format 18" in note
    assert "403" in note
    _assert_never_throttled(youtube, "potalways01")


def test_sabr_only_falls_back_to_the_progressive_format(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    job, clip = _clip(yt_service, youtube.watch_url("sabronly001"), 10.0, 14.5, tmp_path)
    assert clip.first_frame_index == 10 * FPS
    assert clip.video_duration == pytest.approx(4.5, abs=1 / FPS)
    assert clip.audio_duration == pytest.approx(4.5, abs=0.05)
    assert job.media is not None and job.media.fetch_path == "range"
    note = job.media.note or ""
    assert "progressive" in note and "SABR" in note
    itags = {r.itag for r in youtube.media_requests if r.video_id == "sabronly001"}
    assert itags == {18}
    _assert_never_throttled(youtube, "sabronly001")


def test_expired_media_urls_from_the_cache_are_resolved_again(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    """A second job on the same video gets the cached extraction; its URLs expired while it
    waited, so the read is refused, and the job resolves again and succeeds."""
    url = youtube.watch_url("expiring001")
    calls_before = len([c for c in youtube.player_calls if c[0] == "expiring001"])
    first, _ = _clip(yt_service, url, 1.0, 3.0, tmp_path)
    assert first.media is not None and first.media.note is None
    youtube.expire_urls()
    second, clip = _clip(yt_service, url, 4.0, 7.0, tmp_path)
    assert clip.first_frame_index == 4 * FPS
    assert clip.video_duration == pytest.approx(3.0, abs=1 / FPS)
    assert second.media is not None and "resolved again" in (second.media.note or "")
    calls = [c for c in youtube.player_calls if c[0] == "expiring001"][calls_before:]
    assert len(calls) == 2  # the first job's extraction, and the second job's fresh one
    refused = [r for r in youtube.media_requests if r.video_id == "expiring001" and r.status == 403]
    assert refused  # the stale URLs were tried, and refused
    _assert_never_throttled(youtube, "expiring001")


def test_a_cached_extraction_about_to_expire_is_resolved_again_before_use(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    url = youtube.watch_url("shortlived1")
    calls_before = len([c for c in youtube.player_calls if c[0] == "shortlived1"])
    _clip(yt_service, url, 1.0, 3.0, tmp_path)
    _, clip = _clip(yt_service, url, 4.0, 6.0, tmp_path)
    assert clip.first_frame_index == 4 * FPS
    calls = [c for c in youtube.player_calls if c[0] == "shortlived1"][calls_before:]
    assert len(calls) == 2  # the cached URLs expire within minutes: not trusted for a new job
    refused = [r for r in youtube.media_requests if r.video_id == "shortlived1" and r.status >= 400]
    assert not refused  # resolved again before any read, not after a refusal


@pytest.mark.parametrize(
    ("video_id", "code"),
    [
        ("private0001", "source_private"),
        ("agegated001", "source_age_restricted"),
        ("geoblocked1", "source_geo_blocked"),
        ("removed0001", "source_removed"),
        ("livenow0001", "source_live"),
        ("upcoming001", "source_live"),
        ("loginreq001", "source_needs_login"),
        ("botcheck001", "source_needs_login"),
    ],
)
def test_each_error_page_fails_the_job_with_its_code(
    yt_service: Service, youtube: YoutubeStandIn, video_id: str, code: str
) -> None:
    job = yt_service.client.submit(url=youtube.watch_url(video_id), start=1.0, end=2.0)
    done = yt_service.client.wait(job.id, progress=False, timeout=120)
    assert done.status == "failed"
    assert done.error is not None and done.error.code == code
    if code in MESSAGES:
        assert done.error.message == MESSAGES[code]  # fixed words, nothing YouTube said
    assert "youtube" not in done.error.message.lower()


def test_a_rate_limited_job_goes_back_to_the_queue_and_succeeds_later(
    yt_service: Service, youtube: YoutubeStandIn, tmp_path: Path
) -> None:
    video_id = "rl2x" + secrets.token_hex(4)[:7]  # 429 on its first two player requests
    job, clip = _clip(yt_service, youtube.watch_url(video_id), 3.0, 5.0, tmp_path)
    assert job.status == "succeeded"
    assert clip.first_frame_index == 3 * FPS
    statuses = [status for v, _, status in youtube.player_calls if v == video_id]
    assert statuses[:3] == [429, 429, 200]


def test_a_job_still_rate_limited_after_its_retries_fails_with_source_rate_limited(
    yt_service: Service, youtube: YoutubeStandIn
) -> None:
    before = len([c for c in youtube.player_calls if c[0] == "ratelimit01"])
    job = yt_service.client.submit(url=youtube.watch_url("ratelimit01"), start=1.0, end=2.0)
    done = yt_service.client.wait(job.id, progress=False, timeout=180)
    assert done.status == "failed"
    assert done.error is not None and done.error.code == "source_rate_limited"
    assert done.error.message == MESSAGES["source_rate_limited"]
    calls = [c for c in youtube.player_calls if c[0] == "ratelimit01"][before:]
    assert len(calls) == RETRIES + 1  # tried once, then once per deferral: bounded
