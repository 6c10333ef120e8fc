"""Slow and stalled sources can't hold the service's job slots.

The service under test runs one media worker with two job slots and the default bounds: a
source that brings less than ``min_source_bytes_per_s`` over a ``source_rate_window_s`` (10 s)
fails as ``source_too_slow``; a cancelled job stops its read at once and frees its slot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from clipmaker.net.bounds import TOO_SLOW_MESSAGE
from tests.api.conftest import Service
from tests.api.helpers import wait_for
from tests.support.http_server import MediaServer
from tests.support.targets import Reply, Target, serve_target

MP4 = {"Content-Type": "video/mp4"}


@pytest.fixture
def slow() -> Iterator[Target]:
    routes = {
        # one byte a second, for an hour
        "/drip.mp4": Reply(200, b"\0" * 3600, MP4, drip_s=1.0),
        # headers, then silence
        "/stall-1.mp4": Reply(200, b"\0", MP4, size=10**8, drip_s=3600.0),
        "/stall-2.mp4": Reply(200, b"\0", MP4, size=10**8, drip_s=3600.0),
    }
    with serve_target("127.0.0.1", routes) as target:
        yield target


def test_a_dripping_source_fails_as_too_slow(service: Service, slow: Target) -> None:
    window = service.settings.source_rate_window_s
    started = time.monotonic()
    job = service.client.submit(url=slow.url("/drip.mp4"), start=1.0, end=2.0)
    done = service.client.wait(job.id, progress=False, timeout=window * 6)
    elapsed = time.monotonic() - started
    assert done.status == "failed"
    assert (done.error.code, done.error.message) == ("source_too_slow", TOO_SLOW_MESSAGE)
    assert elapsed < window * 3, elapsed  # about one window of waiting, not an hour of drip


def test_cancelling_a_stalled_job_frees_its_slot_at_once(
    service: Service, slow: Target, media_server: MediaServer
) -> None:
    slots = service.settings.media_workers * service.settings.jobs_per_media_worker
    assert slots == 2  # the test fills every slot with a stalled job
    stalled = [
        service.client.submit(url=slow.url(f"/stall-{i}.mp4"), start=1.0, end=2.0) for i in (1, 2)
    ]
    for i, job in enumerate(stalled, start=1):
        wait_for(lambda job=job: service.client.job(job.id).status == "running", timeout=30)
        wait_for(lambda i=i: f"/stall-{i}.mp4" in slow.requests, timeout=30)
    # both slots are held by reads that will not end on their own for a while
    normal = service.client.submit(
        url=media_server.url("talk.mp4"), start=3.0, end=4.5, accuracy="keyframe"
    )
    assert service.client.job(normal.id).status == "queued"

    cancelled_at = time.monotonic()
    assert service.client.cancel(stalled[0].id).status == "cancelled"
    wait_for(lambda: service.client.job(normal.id).status != "queued", timeout=10, interval=0.05)
    started_after = time.monotonic() - cancelled_at
    # the slot came from the cancel, not from the other stalled job giving up
    assert service.client.job(stalled[1].id).status == "running"
    assert started_after < 3.0, started_after
    assert service.client.wait(normal.id, progress=False).status == "succeeded"
    assert service.client.job(stalled[0].id).status == "cancelled"
    service.client.cancel(stalled[1].id)
