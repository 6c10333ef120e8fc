"""Bad input a real user, or a hostile one, would send: a clear error, nothing left behind."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Service
from tests.support.http_server import MediaServer


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def post_job(service: Service, body: object) -> httpx.Response:
    return service.client.http.post("/api/jobs", json=body)


def test_malformed_json(service: Service) -> None:
    response = service.client.http.post(
        "/api/jobs", content=b'{"source": {"url": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"start": 1, "end": 2}, ["source", "required"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "end": 2}, ["start", "required"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "start": 5, "end": 5}, ["end", "after"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "start": 9, "end": 3}, ["end", "after"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "start": -1, "end": 3}, ["negative"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "start": "1:75", "end": 3}, ["not a time"]),
        ({"source": {"url": "http://x.test/v.mp4"}, "start": "nan", "end": 3}, ["finite"]),
        ({"source": {"url": "ftp://x.test/v.mp4"}, "start": 1, "end": 3}, ["http"]),
        ({"source": {"url": "file:///etc/passwd"}, "start": 1, "end": 3}, ["http"]),
        (
            {"source": {"url": "http://x.test/v.mp4", "upload_id": "0" * 32}, "start": 1, "end": 3},
            ["exactly one"],
        ),
        ({"source": {}, "start": 1, "end": 3}, ["exactly one"]),
        (
            {"source": {"url": "http://x.test/v.mp4"}, "start": 1, "end": 3, "accuracy": "exact"},
            ["accuracy"],
        ),
        (
            {"source": {"url": "http://x.test/v.mp4"}, "start": 1, "end": 3, "subtitles": "ass"},
            ["subtitles"],
        ),
        (
            {"source": {"url": "http://x.test/v.mp4"}, "start": 1, "end": 3, "colour": "red"},
            ["colour"],
        ),
        ([1, 2, 3], ["dict"]),
    ],
)
def test_invalid_requests_name_the_problem(
    service: Service, body: object, words: list[str]
) -> None:
    response = post_job(service, body)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    for word in words:
        assert word in error["message"].lower(), error["message"]


def test_unknown_upload_id(service: Service) -> None:
    response = post_job(service, {"source": {"upload_id": "f" * 32}, "start": 1, "end": 2})
    assert response.status_code == 422
    assert error_of(response)["code"] == "upload_not_found"


def test_unknown_job_and_early_result(service: Service, media_server: MediaServer) -> None:
    missing = service.client.http.get("/api/jobs/" + "0" * 32)
    assert missing.status_code == 404 and error_of(missing)["code"] == "job_not_found"
    assert service.client.http.get("/api/jobs/nope/result").status_code == 404
    assert service.client.http.delete("/api/jobs/nope").status_code == 404
    job = service.client.submit(url=media_server.url("long.mp4"), start=0, end=50)
    early = service.client.http.get(f"/api/jobs/{job.id}/result")
    assert early.status_code == 409 and error_of(early)["code"] == "job_not_finished"
    service.client.http.delete(f"/api/jobs/{job.id}")  # don't leave a long job running


@pytest.mark.parametrize(
    ("source", "start", "end", "code"),
    [
        ("talk.mp4", 25.0, 30.0, "range_out_of_bounds"),
        ("talk.mp4", 15.0, 40.0, "range_out_of_bounds"),
        ("page.html", 1.0, 2.0, "not_media"),
        ("corrupt.mp4", 1.0, 2.0, "corrupt_media"),
        ("missing.mp4", 1.0, 2.0, "source_unreachable"),
        ("http://127.0.0.1:9/video.mp4", 1.0, 2.0, "source_unreachable"),
    ],
)
def test_jobs_that_fail_say_why_and_leave_nothing(
    service: Service, media_server: MediaServer, source: str, start: float, end: float, code: str
) -> None:
    url = source if source.startswith("http") else media_server.url(source)
    job = service.client.submit(url=url, start=start, end=end, subtitles="srt")
    done = service.client.wait(job.id, progress=False)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == code, done.error
    assert done.error.message
    assert service.client.http.get(f"/api/jobs/{job.id}/result").status_code == 409
    assert service.store_keys(f"jobs/{job.id}/") == []
    assert list(service.settings.scratch_dir.glob(f"{job.id}-*")) == []


def upload_raw(service: Service, name: str, data: bytes) -> httpx.Response:
    return service.client.http.post("/api/uploads", files={"file": (name, data)})


def uploads_left(service: Service) -> list[Path]:
    folder = service.settings.uploads_dir
    return list(folder.iterdir()) if folder.exists() else []


def test_upload_that_is_not_media(service: Service) -> None:
    response = upload_raw(service, "notes.mp4", b"these are my notes, not a video\n" * 100)
    assert response.status_code == 422
    assert error_of(response)["code"] == "not_media"
    assert uploads_left(service) == []


def test_corrupt_upload(service: Service, media_dir: Path) -> None:
    response = upload_raw(service, "broken.mp4", (media_dir / "corrupt.mp4").read_bytes())
    assert response.status_code == 422
    assert error_of(response)["code"] in ("corrupt_media", "not_media")
    assert uploads_left(service) == []


def test_upload_over_the_cap(service: Service) -> None:
    too_big = os.urandom(service.settings.max_upload_bytes + 1)
    response = upload_raw(service, "big.mp4", too_big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "upload_too_large"
    assert uploads_left(service) == []


def test_upload_without_a_file_part(service: Service) -> None:
    response = service.client.http.post("/api/uploads", data={"name": "x"}, files={"other": b"1"})
    assert response.status_code == 422
    assert "file" in error_of(response)["message"]
    not_multipart = service.client.http.post("/api/uploads", json={"file": "x"})
    assert not_multipart.status_code == 415


def test_a_batch_of_only_bad_items_is_refused(service: Service) -> None:
    response = service.client.http.post("/api/batches", json={"jobs": [{"start": 1}]})
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"
    empty = service.client.http.post("/api/batches", json={"jobs": []})
    assert empty.status_code == 422
