"""Accepting a job: check what can be checked now, record it, queue it.

The SQL row is written first and is the promise: once it exists the job will run, because a
worker-side sweeper re-queues any queued job whose queue entry went missing (Redis down at
submit time, or restarted without persistence). So a Redis hiccup never loses an accepted job.
"""

from __future__ import annotations

import logging

import redis

from clipmaker.api.admission import admit
from clipmaker.api.auth import Caller
from clipmaker.errors import (
    INVALID_REQUEST,
    RANGE_OUT_OF_BOUNDS,
    UPLOAD_NOT_FOUND,
    ClipError,
)
from clipmaker.jobs.models import ClipRequest, Job
from clipmaker.net import AddressPolicy
from clipmaker.services import Services
from clipmaker.webhooks import check_webhook_url

log = logging.getLogger("clipmaker.api")

IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"


def check_request(services: Services, caller: Caller, request: ClipRequest) -> None:
    """Refuse what is already known to be wrong, before a worker spends time on it."""
    if request.webhook is not None:
        check_webhook_url(services.settings, str(request.webhook.url))
    limit = services.settings.max_clip_s
    if request.duration > limit:
        raise ClipError(
            INVALID_REQUEST, f"the clip is {request.duration:g} s long; the limit is {limit:g} s"
        )
    if request.source.url is not None:
        # 422 source_forbidden now when the URL itself names a forbidden address (an IP
        # literal in any spelling, localhost); names are checked when fetched, every hop
        AddressPolicy.from_settings(services.settings).check_url(str(request.source.url))
    upload_id = request.source.upload_id
    if upload_id is None:
        return
    upload = services.jobs.get_upload(upload_id, caller.scope)
    if upload is None:
        raise ClipError(UPLOAD_NOT_FOUND, f"no upload has the id {upload_id!r}")
    if request.start >= upload.duration or request.end > upload.duration + 0.05:
        raise ClipError(
            RANGE_OUT_OF_BOUNDS,
            f"the range {request.start:g}-{request.end:g} s is not inside the uploaded "
            f"media, which lasts {upload.duration:.3f} s",
        )


def _replay(job: Job, request: ClipRequest) -> tuple[Job, bool]:
    same_webhook = job.webhook_url == (str(request.webhook.url) if request.webhook else None)
    if job.request != request.stored() or not same_webhook:
        raise ClipError(
            IDEMPOTENCY_KEY_REUSED,
            "this Idempotency-Key was already used for a different request",
        )
    return job, False


def submit(
    services: Services,
    caller: Caller,
    request: ClipRequest,
    *,
    idempotency_key: str | None = None,
) -> tuple[Job, bool]:
    """Create (or, for an idempotency key the tenant used before, find) the job and queue it.

    A replayed request takes no new slot, so a client retrying a POST is never refused by the
    caps for a job it already has.
    """
    check_request(services, caller, request)
    if idempotency_key is not None:
        existing = services.jobs.by_idempotency_key(caller.tenant, idempotency_key)
        if existing is not None:
            return _replay(existing, request)
    with admit(services, caller):
        job, created = services.jobs.create(
            request,
            tenant=caller.tenant,
            api_key_id=caller.key_id,
            idempotency_key=idempotency_key,
        )
    if not created:  # lost a race with the same key
        return _replay(job, request)
    enqueue(services, job.id)
    return job, True


def enqueue(services: Services, job_id: str) -> None:
    try:
        services.queue.enqueue(job_id)
    except redis.RedisError:
        # The row is written: the sweeper will queue it once Redis answers again.
        log.warning("job %s: Redis refused the enqueue; the sweeper will queue it", job_id)
