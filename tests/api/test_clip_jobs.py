"""The whole path over real HTTP: submit, poll, fetch through the signed URL, check the clip."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Service
from tests.api.helpers import clip_facts, download, wait_for
from tests.support.http_server import MediaServer

FPS = 25
FRAME = 1 / FPS


def words_of(subtitles: str) -> str:
    return re.sub(r"[^a-z ]+", " ", subtitles.lower())


def test_frame_accurate_clip_with_subtitles(
    service: Service, media_server: MediaServer, tmp_path: Path
) -> None:
    job = service.client.submit(
        url=media_server.url("talk.mp4"), start="00:00:05.0", end=12.0, subtitles="both"
    )
    assert job.status == "queued"
    result = service.client.wait_result(job.id, progress=False)

    clip = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    assert clip.video_codec == "h264" and clip.audio_codec == "aac"
    assert clip.first_frame_index == 5 * FPS  # the source frame shown at start
    assert clip.last_frame_index == 12 * FPS - 1  # the frame before end
    assert clip.first_frame_time == pytest.approx(0.0, abs=1e-6)
    assert clip.video_duration == pytest.approx(7.0, abs=FRAME)
    assert clip.audio_duration == pytest.approx(7.0, abs=0.05)
    assert result.video.duration == pytest.approx(7.0, abs=FRAME)
    assert result.video.bytes == (tmp_path / "clip.mp4").stat().st_size
    assert result.video.content_type == "video/mp4"

    srt = httpx.get(result.subtitles.srt.url).text
    vtt = httpx.get(result.subtitles.vtt.url).text
    spoken = words_of(srt)
    assert "purple" in spoken and "elephant" in spoken
    assert "morning" not in spoken and "rained" not in spoken  # said outside the clip
    assert vtt.startswith("WEBVTT")
    assert "elephant" in words_of(vtt)
    # Times are relative to the clip: the sentence starts 6.5 s into the source, 1.5 s in.
    first_cue = re.search(r"(\d\d):(\d\d):(\d\d),(\d\d\d) -->", srt)
    assert first_cue is not None
    h, m, s, ms = map(int, first_cue.groups())
    assert 1.0 <= h * 3600 + m * 60 + s + ms / 1000 <= 2.5

    done = service.client.job(job.id)
    assert done.status == "succeeded" and done.progress == 1.0 and done.attempts == 1
    assert done.timings is not None
    for stage in ("fetch_s", "cut_s", "asr_s", "store_s", "total_s", "queued_s"):
        assert getattr(done.timings, stage) is not None, stage


def test_keyframe_clip_is_a_stream_copy(
    service: Service, media_server: MediaServer, tmp_path: Path
) -> None:
    job = service.client.submit(
        url=media_server.url("talk.mp4"), start=5.0, end=9.0, accuracy="keyframe"
    )
    result = service.client.wait_result(job.id, progress=False)
    clip = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    assert clip.first_frame_index == 4 * FPS  # the keyframe at or before start (2 s GOPs)
    assert clip.first_frame_time == pytest.approx(0.0, abs=1e-6)
    assert result.subtitles.srt is None and result.subtitles.vtt is None


def test_clip_of_an_upload(service: Service, media_dir: Path, tmp_path: Path) -> None:
    upload = service.client.upload(media_dir / "talk.mp4")
    assert upload.bytes == (media_dir / "talk.mp4").stat().st_size
    assert upload.duration == pytest.approx(20.0, abs=0.1)
    job = service.client.submit(upload_id=upload.upload_id, start=2.0, end=4.0)
    result = service.client.wait_result(job.id, progress=False)
    clip = clip_facts(download(result.video.url, tmp_path / "clip.mp4"))
    assert clip.first_frame_index == 2 * FPS
    assert clip.video_duration == pytest.approx(2.0, abs=FRAME)


def test_idempotency_key_gives_the_same_job(service: Service, media_server: MediaServer) -> None:
    body = {"source": {"url": media_server.url("talk.mp4")}, "start": 1, "end": 2}
    key = {"Idempotency-Key": f"idem-{service.mode}"}
    first = service.client.http.post("/api/jobs", json=body, headers=key)
    second = service.client.http.post("/api/jobs", json=body, headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = service.client.http.post("/api/jobs", json={**body, "end": 3}, headers=key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    service.client.wait(first.json()["id"], progress=False)


def test_list_jobs_newest_first_and_filtered(service: Service, media_server: MediaServer) -> None:
    ids = [
        service.client.submit(url=media_server.url("talk.mp4"), start=i, end=i + 1).id
        for i in range(3)
    ]
    for job_id in ids:
        service.client.wait(job_id, progress=False)
    page = service.client.jobs(limit=2)
    assert [job.id for job in page.items] == ids[::-1][:2]
    assert page.total >= 3
    second = service.client.jobs(limit=2, offset=2)
    assert second.items[0].id == ids[0]
    succeeded = service.client.jobs(status="succeeded", limit=500)
    assert {job.status for job in succeeded.items} == {"succeeded"}
    assert set(ids) <= {job.id for job in succeeded.items}


def test_batch_accepts_good_items_and_reports_bad_ones(
    service: Service, media_server: MediaServer
) -> None:
    url = media_server.url("talk.mp4")
    batch = service.client.submit_batch(
        [
            {"source": {"url": url}, "start": 1, "end": 2},
            {"source": {"url": url}, "start": 5, "end": 4},
            {"source": {"url": url}, "start": 3, "end": 4, "subtitles": "vtt"},
        ]
    )
    assert batch.size == 3
    assert [item.job_id is not None for item in batch.items] == [True, False, True]
    assert batch.items[1].error.code == "invalid_request"
    assert "end" in batch.items[1].error.message
    done = service.client.wait_batch(batch.id, progress=False)
    assert done.done and done.counts == {"succeeded": 2, "rejected": 1}


def test_cancel_a_running_job(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(
        url=media_server.url("long.mp4"), start=1.0, end=55.0, subtitles="srt"
    )
    wait_for(lambda: service.client.job(job.id).status == "running")
    cancelled = service.client.cancel(job.id)
    assert cancelled.status == "cancelled"
    response = service.client.http.get(f"/api/jobs/{job.id}/result")
    assert response.status_code == 409
    # The worker notices, stops, and leaves nothing behind.
    wait_for(lambda: not service.store_keys(f"jobs/{job.id}/"), timeout=30)
    assert service.client.job(job.id).status == "cancelled"
    again = service.client.http.delete(f"/api/jobs/{job.id}")  # a retried DELETE is fine
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_a_finished_job_cannot_be_cancelled(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1, end=2)
    assert service.client.wait(job.id, progress=False).status == "succeeded"
    response = service.client.http.delete(f"/api/jobs/{job.id}")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "job_not_cancellable"
    assert service.client.job(job.id).status == "succeeded"


def test_each_shape_keeps_state_where_its_settings_say(
    service: Service, media_server: MediaServer
) -> None:
    """The job row, the queue and the files really are in the configured backends."""
    import redis
    from sqlalchemy import create_engine, text

    job = service.client.submit(url=media_server.url("talk.mp4"), start=2.5, end=3.5)
    service.client.wait(job.id, progress=False)
    settings = service.settings
    database = settings.resolved_database_url
    assert database.startswith("postgresql" if service.mode == "services" else "sqlite")
    with create_engine(database).connect() as conn:
        status = conn.execute(text("select status from jobs where id = :id"), {"id": job.id})
        assert status.scalar_one() == "succeeded"
    if service.mode == "services":
        client = redis.Redis.from_url(settings.redis_url)
        assert client.exists(f"{settings.instance}:jobs")  # the stream lives on CI's Redis
        assert settings.resolved_storage_url.startswith("s3://")
    assert service.store_keys(f"jobs/{job.id}/") == [f"jobs/{job.id}/1/clip.mp4"]


def test_an_identical_request_reuses_the_result(
    service: Service, media_server: MediaServer, tmp_path: Path
) -> None:
    request = {"url": media_server.url("talk.mp4"), "start": 3.2, "end": 4.4, "subtitles": "srt"}
    first = service.client.submit(**request)
    first_result = service.client.wait_result(first.id, progress=False)
    done_first = service.client.job(first.id)
    assert done_first.media is not None and done_first.media.fetch_path == "range"
    assert done_first.media.cut_mode in ("smart", "reencode")

    again = service.client.submit(**request)
    again_result = service.client.wait_result(again.id, progress=False)
    done_again = service.client.job(again.id)
    assert done_again.media is not None
    assert done_again.media.fetch_path == "cache"
    assert done_again.media.cached_from == first.id
    assert done_again.timings is not None and done_again.timings.cut_s is None  # no work done
    first_bytes = download(first_result.video.url, tmp_path / "a.mp4").read_bytes()
    assert download(again_result.video.url, tmp_path / "b.mp4").read_bytes() == first_bytes
    assert service.store_keys(f"jobs/{again.id}/") == []  # nothing stored twice
