"""Live events: GET /api/jobs/{id}/events streams each change and closes after the end."""

from __future__ import annotations

import httpx
import pytest

from clipmaker.client import ApiError, Client
from tests.api.conftest import Service
from tests.support.http_server import MediaServer

FINISHED = {"succeeded", "failed", "cancelled"}
STAGES = ["fetching", "cutting", "transcribing", "storing"]


def read_stream(service: Service, job_id: str) -> list[dict]:
    """Every event until the server closes the stream (the iterator only ends when it does)."""
    return list(service.client.events(job_id, read_timeout=120))


def test_stream_reads_to_the_end(service: Service, media_server: MediaServer) -> None:
    url = media_server.url("talk.mp4")
    job = service.client.submit(url=url, start=5.5, end=12.5, subtitles="srt")
    events = read_stream(service, job.id)

    assert events[0]["status"] in ("queued", "running")  # the state at the moment we joined
    assert [e["final"] for e in events] == [False] * (len(events) - 1) + [True]
    last = events[-1]
    assert last["status"] == "succeeded" and last["progress"] == 1.0 and last["error"] is None
    assert all(e["id"] == job.id for e in events)
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)  # never goes backwards
    # (a running job's stage is null between its claim and its first report)
    running = [e["stage"] for e in events if e["status"] == "running" and e["stage"]]
    stages = list(dict.fromkeys(running))
    # From the moment we joined, every stage is reported, in order, however briefly it lasted.
    assert stages == STAGES[STAGES.index(stages[0]) :] and "transcribing" in stages
    seen = [(e["status"], e["stage"], e["progress"]) for e in events]
    assert len(seen) == len(set(seen))  # one event per change, no repeats
    assert service.client.job(job.id).status == "succeeded"


def test_late_subscriber_gets_the_current_state(
    service: Service, media_server: MediaServer
) -> None:
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1, end=3)
    service.client.wait(job.id, progress=False)
    events = read_stream(service, job.id)
    assert len(events) == 1
    assert events[0]["status"] == "succeeded" and events[0]["final"] is True


def test_a_failing_job_ends_the_stream_with_its_error(
    service: Service, media_server: MediaServer
) -> None:
    job = service.client.submit(url=media_server.url("page.html"), start=1, end=2)
    events = read_stream(service, job.id)
    assert events[-1]["status"] == "failed" and events[-1]["final"] is True
    assert events[-1]["error"]["code"] == "not_media"
    assert all(e["status"] not in FINISHED for e in events[:-1])


def test_a_cancelled_job_ends_the_stream(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(url=media_server.url("long.mp4"), start=0, end=50, subtitles="srt")
    stream = service.client.events(job.id, read_timeout=120)
    first = next(stream)
    assert first["final"] is False
    service.client.cancel(job.id)
    rest = list(stream)
    assert rest[-1]["status"] == "cancelled" and rest[-1]["final"] is True


def test_unknown_job_is_404_before_any_stream(service: Service) -> None:
    with pytest.raises(ApiError) as caught:
        list(service.client.events("0" * 32))
    assert caught.value.status == 404 and caught.value.code == "job_not_found"


def test_the_stream_is_server_sent_events(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(url=media_server.url("talk.mp4"), start=1, end=2)
    service.client.wait(job.id, progress=False)
    response = httpx.get(f"{service.base_url}/api/jobs/{job.id}/events", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-store"
    data_lines = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert len(data_lines) == 1 and '"status":"succeeded"' in data_lines[0]


def test_wait_result_follows_the_stream_instead_of_polling(
    service: Service, media_server: MediaServer
) -> None:
    requests: list[str] = []
    with Client(service.base_url) as client:
        client.http.event_hooks["request"].append(lambda r: requests.append(r.url.path))
        job = client.submit(url=media_server.url("talk.mp4"), start=2, end=6, subtitles="vtt")
        result = client.wait_result(job.id, progress=False)
    assert result.subtitles.vtt is not None
    job_path = f"{service.base_url}/api/jobs/{job.id}".split("://", 1)[1].split("/", 1)[1]
    assert requests.count(f"/{job_path}/events") == 1
    assert requests.count(f"/{job_path}") <= 1  # one look at the finished job, no polling
