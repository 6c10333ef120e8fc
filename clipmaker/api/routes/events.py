"""GET /api/jobs/{id}/events: a job's changes as Server-Sent Events, until it ends.

How the ingress learns of changes, and why: two sources, read every ``events_poll_s``.
- Stage and progress come from the job's **event log** in Redis, which the worker appends to
  (in the same transaction as its live progress) on every stage change and progress report.
  Reading the log from the last id seen gives every change in order, so a stage that lasts
  less than a poll interval is still reported; nothing has to hold a connection open.
- Status comes from the **status of record** (SQL): a job's status is written by many hands (a
  worker, a cancel through the API, a job given up after its workers died), and reading the
  row sees them all, with the error of a failed job. The stream closes after a final status.
A late subscriber (or one that reconnects) first gets the current state, then what follows.
Cost per open stream per interval: one XRANGE and one primary-key read.

Each event is one ``data:`` line of JSON (``JobEvent``), sent only when status, stage or
progress changed.
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
    attempt: int = Field(description="Which delivery to a worker this is (1 unless one died).")
    error: ErrorInfo | None = None
    final: bool = Field(description="True on the last event: the job has ended.")

    @classmethod
    def of(cls, job: JobPublic) -> JobEvent:
        return cls(
            id=job.id,
            status=job.status,
            stage=job.stage,
            progress=round(job.progress, 4),
            attempt=job.attempts,
            error=job.error,
            final=job.status.finished,
        )


def _view(services: Services, job: Job) -> JobEvent:
    live = services.index.progress([job.id]).get(job.id) if job.status == "running" else None
    return JobEvent.of(JobPublic.from_job(job, live))


def _snapshot(services: Services, job_id: str) -> tuple[str, JobEvent | None]:
    """The log position first, then the state: changes after that position are all newer."""
    after = services.index.last_event_id(job_id)
    job = services.jobs.get(job_id)
    return after, (_view(services, job) if job is not None else None)


def _look(
    services: Services, job_id: str, after: str
) -> tuple[list[tuple[str, dict[str, str]]], JobEvent | None]:
    """Logged changes since ``after``, then the job's status of record."""
    logged = services.index.events_since(job_id, after)
    job = services.jobs.get(job_id)
    return logged, (_view(services, job) if job is not None else None)


class _Changes:
    """Turns snapshots and logged changes into the events to send: only real changes, never
    a stale attempt's, never progress running backwards within one attempt."""

    def __init__(self) -> None:
        self.last: JobEvent | None = None

    def offer(self, event: JobEvent) -> JobEvent | None:
        last = self.last
        if last is not None:
            if (event.status, event.stage, event.progress) == (
                last.status,
                last.stage,
                last.progress,
            ):
                return None
            if last.final:
                return None
            if event.status == JobStatus.running and last.status == JobStatus.running:
                if event.attempt < last.attempt:
                    return None
                if event.attempt == last.attempt and event.progress < last.progress:
                    return None
        self.last = event
        return event

    def logged(self, status_of_record: JobEvent, fields: dict[str, str]) -> JobEvent | None:
        """A change from the worker's log: a running job's stage and progress."""
        try:
            stage = JobStage(fields["stage"])
            progress = round(min(max(float(fields["progress"]), 0.0), 1.0), 4)
            attempt = int(fields.get("attempt") or 0)
        except (KeyError, ValueError):
            return None
        event = status_of_record.model_copy(
            update={
                "status": JobStatus.running,
                "stage": stage,
                "progress": progress,
                "attempt": attempt,
                "error": None,
                "final": False,
            }
        )
        return self.offer(event)


async def job_events(
    services: Services, job_id: str, after: str, first: JobEvent
) -> AsyncIterator[ServerSentEvent]:
    """Yield the current state, then every change, and stop after the final status."""
    changes = _Changes()
    number = 0

    def sse(event: JobEvent) -> ServerSentEvent:
        nonlocal number
        number += 1
        return ServerSentEvent(data=event.model_dump_json(), id=str(number))

    changes.offer(first)
    yield sse(first)
    while not first.final:
        await asyncio.sleep(services.settings.events_poll_s)
        logged, current = await run_in_threadpool(_look, services, job_id, after)
        if current is None:  # deleted while watched: nothing more will happen
            return
        for entry_id, fields in logged:  # the run, step by step (nothing missed between looks)
            after = entry_id
            if (sent := changes.logged(current, fields)) is not None:
                yield sse(sent)
        last = changes.last
        # queued, the start of a run the log has not spoken of yet, or the end
        speaks = current.status != JobStatus.running or (last and last.status != current.status)
        if speaks and (sent := changes.offer(current)) is not None:
            yield sse(sent)
        if current.final:
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
    await run_in_threadpool(load_job, services, job_id)  # 404 before the stream opens
    after, first = await run_in_threadpool(_snapshot, services, job_id)
    if first is None:
        await run_in_threadpool(load_job, services, job_id)  # deleted just now: 404
        raise AssertionError("unreachable")
    return EventSourceResponse(
        job_events(services, job_id, after, first),
        ping=PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
