"""No accepted job is lost: a worker killed mid-job, a lost queue entry."""

from __future__ import annotations

import ray

from clipmaker.workers import NAMESPACE, media_worker_name
from tests.api.conftest import Service
from tests.api.helpers import wait_for
from tests.support.http_server import MediaServer


def test_job_survives_its_worker_being_killed(service: Service, media_server: MediaServer) -> None:
    job = service.client.submit(
        url=media_server.url("long.mp4"), start=2.0, end=50.0, subtitles="srt"
    )
    mid_job = ("cutting", "transcribing")
    wait_for(lambda: service.client.job(job.id).stage in mid_job, timeout=60, interval=0.02)
    worker = ray.get_actor(media_worker_name(service.settings, 0), namespace=NAMESPACE)
    ray.kill(worker, no_restart=False)  # the process dies mid-job; Ray restarts it

    done = service.client.wait(job.id, progress=False, timeout=300)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    result = service.client.result(job.id)
    assert result.video.duration > 47.9
    # One result: only the winning attempt's files are stored.
    keys = service.store_keys(f"jobs/{job.id}/")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == ["clip.mp4", "clip.srt"]
    assert all(f"jobs/{job.id}/2/" in k for k in keys)


def test_a_job_whose_queue_entry_was_lost_still_runs(
    service: Service, media_server: MediaServer
) -> None:
    from clipmaker.jobs.models import ClipRequest
    from clipmaker.services import Services

    # Record a job the way the API does, but lose its queue entry (Redis down at submit time).
    services = Services.connect(service.settings)
    try:
        request = ClipRequest.model_validate(
            {"source": {"url": media_server.url("talk.mp4")}, "start": 1, "end": 2}
        )
        job, _ = services.jobs.create(request)
    finally:
        services.close()
    done = service.client.wait(job.id, progress=False, timeout=120)
    assert done.status == "succeeded"
