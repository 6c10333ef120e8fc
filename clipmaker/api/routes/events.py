"""GET /api/jobs/{id}/events: a job's changes as Server-Sent Events, until it ends.

How the ingress learns of changes: it looks at the job at a short interval
(``events_poll_s``): the SQL row for status and stage, the Redis index for fine progress,
exactly what ``GET /api/jobs/{id}`` shows. Why polling and not a pub/sub channel: a job's
status is written by many hands (workers, a cancel through the API, a job given up after its
workers died), and polling the status of record sees them all without any of them having to
publish, and without a subscriber that joined late or reconnected missing an event. The cost
is one primary-key read and one Redis HGET per open stream per interval.

Each event is one ``data:`` line of JSON (``JobEvent``), sent only when status, stage or
progress changed; the first event is the current state (so a late subscriber is never left
waiting), and the stream closes after the event with a final status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from clipmaker.api.deps import ServicesDep
from clipmaker.api.routes.jobs import load_job
from clipmaker.jobs.models import ErrorInfo, Job, JobPublic, JobStage, JobStatus
from clipmaker.services import Services

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

PING_S = 15  # a comment line this often keeps proxies and read timeouts from closing the stream


class JobEvent(BaseModel):
    """One change of a job, as each event's ``data:`` carries it."""

    id: str
    status: JobStatus
    stage: JobStage | None
    progress: float = Field(ge=0, le=1)
    error: ErrorInfo | None = None
    final: bool = Field(description="True on the last event: the job has ended.")

    @classmethod
    def of(cls, job: JobPublic) -> JobEvent:
        return cls(
            id=job.id,
            status=job.status,
            stage=job.stage,
            progress=round(job.progress, 4),
            error=job.error,
            final=job.status.finished,
        )


def _look(services: Services, job_id: str) -> JobEvent:
    job: Job | None = services.jobs.get(job_id)
    if job is None:  # deleted while watched: say so as an ended stream
        raise LookupError(job_id)
    live = services.index.progress([job.id]).get(job.id) if job.status == "running" else None
    return JobEvent.of(JobPublic.from_job(job, live))


async def job_events(services: Services, first: JobEvent) -> AsyncIterator[ServerSentEvent]:
    """Yield the current state, then every change, and stop after the final status."""
    event, sent, number = first, None, 0
    while True:
        key = (event.status, event.stage, event.progress)
        if key != sent:
            sent, number = key, number + 1
            yield ServerSentEvent(data=event.model_dump_json(), id=str(number))
        if event.final:
            return
        await asyncio.sleep(services.settings.events_poll_s)
        try:
            event = await run_in_threadpool(_look, services, first.id)
        except LookupError:
            return


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "text/event-stream: one `data:` JSON event (JobEvent) per change of "
            "status, stage or progress; the first is the current state; closes after the "
            "final status.",
            "content": {"text/event-stream": {}},
        },
        404: {"description": "Unknown job"},
    },
)
async def stream_job_events(job_id: str, services: ServicesDep) -> EventSourceResponse:
    """Watch a job live instead of polling it (Server-Sent Events)."""
    job = await run_in_threadpool(load_job, services, job_id)  # 404 before the stream opens
    live = await run_in_threadpool(
        lambda: services.index.progress([job.id]).get(job.id) if job.status == "running" else None
    )
    first = JobEvent.of(JobPublic.from_job(job, live))
    return EventSourceResponse(
        job_events(services, first),
        ping=PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
