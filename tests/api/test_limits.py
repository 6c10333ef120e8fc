"""Limits over real HTTP: a key's request rate, its running-job cap, the queue's capacity, and
a batch counted like its jobs. Jobs that must stay unfinished read from a source that never
answers (``StallServer``), released at the end of each test."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from clipmaker.queue import JobQueue
from clipmaker.tenants.limits import Limits
from clipmaker.tenants.models import ApiKeyCreate
from tests.api.conftest import KEYED_QUEUE_CAP, KeyedService
from tests.api.helpers import wait_for
from tests.support.http_server import MediaServer
from tests.support.stall_server import StallServer, stall_server


def _body(url: str, start: float = 1.0, end: float = 2.0) -> dict:
    return {"source": {"url": url}, "start": start, "end": end}


@pytest.fixture
def stalled(keyed_service: KeyedService) -> Iterator[StallServer]:
    """A source that never answers; afterwards the queue is drained again for the next test."""
    with stall_server() as server:
        yield server
    queue = JobQueue(
        redis.Redis.from_url(keyed_service.settings.redis_url), keyed_service.settings.instance
    )
    try:
        wait_for(lambda: queue.depth() == 0 and queue.pending() == 0, timeout=120, interval=0.2)
    finally:
        queue.redis.close()


def _cancel_all(http: httpx.Client, ids: list[str]) -> None:
    for job_id in ids:
        with contextlib.suppress(httpx.HTTPError):
            http.delete(f"/api/jobs/{job_id}")


def test_rate_limit_answers_429_with_ratelimit_headers(keyed_service: KeyedService) -> None:
    record, key = keyed_service.keys.create(ApiKeyCreate(tenant="rate", requests_per_minute=3))
    with keyed_service.http(key) as http:
        answers = [http.get("/api/jobs") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["ratelimit-limit"] for a in answers} == {"3"}
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    retry_after = int(refused.headers["retry-after"])
    assert 1 <= retry_after <= 20  # one request comes back every 60/3 s
    assert 0 < int(refused.headers["ratelimit-reset"]) <= 60
    # The budget lives in Redis: another replica (here, this process) sees it spent.
    other_replica = Limits(
        redis.Redis.from_url(keyed_service.settings.redis_url), keyed_service.settings.instance
    )
    assert not other_replica.take(record.id, 3).allowed
    # Another key of the same service is not affected.
    with keyed_service.http(keyed_service.key("rate-2", requests_per_minute=3)) as http:
        assert http.get("/api/jobs").status_code == 200


def test_running_job_cap(keyed_service: KeyedService, stalled: StallServer) -> None:
    key = keyed_service.key("capped", max_running=1)
    with keyed_service.http(key) as http:
        first = http.post("/api/jobs", json=_body(stalled.url("a.mp4")))
        assert first.status_code == 202
        second = http.post("/api/jobs", json=_body(stalled.url("b.mp4")))
        assert second.status_code == 429
        assert second.json()["error"]["code"] == "too_many_running_jobs"
        assert int(second.headers["retry-after"]) > 0
        listed = http.get("/api/jobs").json()
        assert listed["total"] == 1  # the refused job was never created
        # A finished job frees its slot at once.
        assert http.delete(f"/api/jobs/{first.json()['id']}").status_code == 200
        third = http.post("/api/jobs", json=_body(stalled.url("c.mp4")))
        assert third.status_code == 202
        _cancel_all(http, [third.json()["id"]])


def test_a_batch_counts_like_its_jobs_against_the_running_cap(
    keyed_service: KeyedService, stalled: StallServer
) -> None:
    key = keyed_service.key("batcher", max_running=2)
    with keyed_service.http(key) as http:
        # Never fits: more jobs than the key may run at once.
        too_big = http.post(
            "/api/batches", json={"jobs": [_body(stalled.url(f"{i}.mp4")) for i in range(3)]}
        )
        assert too_big.status_code == 422
        assert too_big.json()["error"]["code"] == "batch_too_large"
        running = http.post("/api/jobs", json=_body(stalled.url("r.mp4"))).json()["id"]
        # Fits the cap alone, not with the job already running: refused whole.
        refused = http.post(
            "/api/batches", json={"jobs": [_body(stalled.url(f"b{i}.mp4")) for i in range(2)]}
        )
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_running_jobs"
        assert http.get("/api/jobs").json()["total"] == 1  # nothing of it was queued
        _cancel_all(http, [running])
        # The slot is free again: the same batch now goes in whole.
        again = http.post(
            "/api/batches", json={"jobs": [_body(stalled.url(f"c{i}.mp4")) for i in range(2)]}
        )
        assert again.status_code == 202, again.text
        _cancel_all(http, [item["job_id"] for item in again.json()["items"]])


def test_a_batch_counts_like_its_jobs_against_the_rate(
    keyed_service: KeyedService, media_server: MediaServer
) -> None:
    key = keyed_service.key("batch-rate", requests_per_minute=4)
    good, bad = _body(media_server.url("talk.mp4")), {"start": 1}
    with keyed_service.http(key) as http:
        too_big = http.post("/api/batches", json={"jobs": [good] * 5})  # spends 1: 3 left
        assert too_big.status_code == 422
        assert too_big.json()["error"]["code"] == "batch_too_large"
        # Four jobs need four requests; the call itself spent one of the three left, the
        # other three are not there: refused whole, and nothing more is spent.
        refused = http.post("/api/batches", json={"jobs": [good] * 4})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1
        # Two good items (the bad one takes nothing) spend exactly the two left.
        accepted = http.post("/api/batches", json={"jobs": [good, bad, good]})
        assert accepted.status_code == 202, accepted.text
        assert accepted.json()["counts"]["rejected"] == 1
        assert accepted.headers["ratelimit-remaining"] == "0"
        assert http.get("/api/jobs").status_code == 429
    with keyed_service.http(keyed_service.key("auditor", admin=True)) as http:
        everything = http.get("/api/jobs", params={"limit": 500}).json()["items"]
    assert sum(item["tenant"] == "batch-rate" for item in everything) == 2


def test_queue_full_answers_503_before_it_overflows(
    keyed_service: KeyedService, stalled: StallServer
) -> None:
    key = keyed_service.key("flood")
    submitted: list[str] = []
    with keyed_service.http(key) as http:
        try:
            slots = (
                keyed_service.settings.media_workers * keyed_service.settings.jobs_per_media_worker
            )
            for i in range(slots):  # every worker slot stuck on the silent source
                submitted.append(
                    http.post("/api/jobs", json=_body(stalled.url(f"s{i}.mp4"))).json()["id"]
                )
            wait_for(
                lambda: all(
                    http.get(f"/api/jobs/{j}").json()["status"] == "running" for j in submitted
                ),
                timeout=60,
            )
            for i in range(KEYED_QUEUE_CAP):  # now the queue itself fills
                answer = http.post("/api/jobs", json=_body(stalled.url(f"q{i}.mp4")))
                assert answer.status_code == 202, answer.text
                submitted.append(answer.json()["id"])
            full = http.post("/api/jobs", json=_body(stalled.url("over.mp4")))
            assert full.status_code == 503
            assert full.json()["error"]["code"] == "queue_full"
            assert int(full.headers["retry-after"]) > 0
            batch = http.post("/api/batches", json={"jobs": [_body(stalled.url("b.mp4"))]})
            assert batch.status_code == 503
            assert batch.json()["error"]["code"] == "queue_full"
            assert http.get("/api/jobs").json()["total"] == len(submitted)
        finally:
            _cancel_all(http, submitted)


def test_the_python_client_waits_out_a_429(keyed_service: KeyedService) -> None:
    key = keyed_service.key("patient", requests_per_minute=20)  # one back every 3 s
    with keyed_service.http(key) as http:
        answers = [http.get("/api/jobs").status_code for _ in range(21)]
    assert answers[-1] == 429
    with keyed_service.client(key) as client:
        started = time.monotonic()
        assert client.jobs().total == 0  # waited for Retry-After, then got through
        assert time.monotonic() - started >= 1
