"""/api/jobs: submit, watch, fetch results of and cancel clip jobs."""

from __future__ import annotations

import contextlib
from typing import Annotated

import redis
from fastapi import APIRouter, Header, Query, Response

from clipmaker.api.auth import Caller, CallerDep
from clipmaker.api.deps import ServicesDep
from clipmaker.api.schemas import ErrorBody, FileLink, JobList, JobResult, SubtitleLinks, VideoLink
from clipmaker.api.submit import submit
from clipmaker.errors import JOB_NOT_FINISHED, JOB_NOT_FOUND, Conflict, NotFound
from clipmaker.jobs.models import ClipRequest, Job, JobPublic, JobStatus, StoredResult
from clipmaker.services import Services

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

MAX_OFFSET = 1_000_000  # deeper pages are not a use case; an unbounded int overflows SQL

ERRORS: dict[int | str, dict] = {
    400: {"model": ErrorBody, "description": "Malformed JSON"},
    404: {"model": ErrorBody, "description": "Unknown job (or another tenant's)"},
    409: {"model": ErrorBody, "description": "Not possible in the job's current status"},
    422: {"model": ErrorBody, "description": "Invalid request (the error code says which rule)"},
}


def load_job(services: Services, caller: Caller, job_id: str) -> Job:
    """The job if the caller may see it; another tenant's job is 404 like an unknown one."""
    job = services.jobs.get(job_id, caller.scope)
    if job is None:
        raise NotFound(JOB_NOT_FOUND, f"no job has the id {job_id!r}")
    return job


def live_progress(services: Services, jobs: list[Job]) -> dict[str, float]:
    """Fine-grained progress of the running ones, from Redis. Without Redis the answer is
    still right, only coarser (the stage-level progress in SQL), so reads keep working."""
    running = [job.id for job in jobs if job.status == "running"]
    if not running:
        return {}
    try:
        return services.index.progress(running)
    except redis.RedisError:
        return {}


def public(services: Services, job: Job) -> JobPublic:
    live = live_progress(services, [job]).get(job.id)
    deliveries = services.jobs.deliveries([job.id]).get(job.id) if job.webhook_url else None
    return JobPublic.from_job(job, live, deliveries)


@router.post("", status_code=202, response_model=JobPublic, responses=ERRORS)
def create_job(
    request: ClipRequest,
    services: ServicesDep,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, description="Same key, same job: a retried POST never runs twice."),
    ] = None,
) -> JobPublic:
    """Submit a clip job. Returns at once (202); poll the job for progress."""
    job, created = submit(services, caller, request, idempotency_key=idempotency_key)
    response.headers["Location"] = f"/api/jobs/{job.id}"
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
    return public(services, job)


@router.get("", response_model=JobList)
def list_jobs(
    services: ServicesDep,
    caller: CallerDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    """The caller's jobs (an admin key: every tenant's), newest first, optionally only those
    with one status."""
    jobs, total = services.jobs.list(status=status, limit=limit, offset=offset, tenant=caller.scope)
    live = live_progress(services, jobs)
    deliveries = services.jobs.deliveries([job.id for job in jobs if job.webhook_url])
    items = [JobPublic.from_job(job, live.get(job.id), deliveries.get(job.id)) for job in jobs]
    return JobList(items=items, total=total, limit=limit, offset=offset)


@router.get("/{job_id}", response_model=JobPublic, responses=ERRORS)
def get_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobPublic:
    """The job: status, stage, progress, error, timings and the request."""
    return public(services, load_job(services, caller, job_id))


@router.get("/{job_id}/result", response_model=JobResult, responses=ERRORS)
def get_result(job_id: str, services: ServicesDep, caller: CallerDep) -> JobResult:
    """Signed URLs of the clip and its subtitles, once the job has succeeded."""
    job = load_job(services, caller, job_id)
    if job.status != JobStatus.succeeded or job.result is None:
        detail = f"; it failed: {job.error_message}" if job.status == JobStatus.failed else ""
        raise Conflict(JOB_NOT_FINISHED, f"the job is {job.status}, not succeeded{detail}")
    stored = StoredResult.model_validate(job.result)
    ttl = services.settings.signed_url_ttl_s
    video = services.store.signed_url(stored.video_key, ttl, tenant=job.tenant)
    links = {}
    for fmt, key in stored.subtitle_keys.items():
        signed = services.store.signed_url(key, ttl, tenant=job.tenant)
        links[fmt] = FileLink(url=signed.url, expires_at=signed.expires_at)
    return JobResult(
        video=VideoLink(
            url=video.url,
            expires_at=video.expires_at,
            bytes=stored.video_bytes,
            duration=stored.video_duration,
            content_type=stored.content_type,
        ),
        subtitles=SubtitleLinks(**links),
    )


@router.delete("/{job_id}", response_model=JobPublic, responses=ERRORS)
def cancel_job(job_id: str, services: ServicesDep, caller: CallerDep) -> JobPublic:
    """Cancel a queued or running job; a running one stops at its next checkpoint."""
    job = services.jobs.cancel(job_id, caller.scope)
    # SQL is the record and the worker's fenced heartbeat sees the cancel within a third of
    # the lease; the Redis flag only makes it quicker, so its absence is no error.
    with contextlib.suppress(redis.RedisError):
        services.index.request_cancel(job_id)
    return JobPublic.from_job(job)
