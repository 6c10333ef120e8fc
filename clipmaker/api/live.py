"""A job's live events: what GET /api/jobs/{id}/events sends, and how it learns of changes.

Two sources, read every ``events_poll_s``:
- Stage and progress come from the job's **event log** in Redis, which the worker appends to
  (in the same transaction as its live progress) on every stage change and progress report.
  Reading the log from the last id seen gives every change in order, so a stage that lasts
  less than a poll interval is still reported, and nothing holds a Redis connection open.
- Status comes from the **status of record** (SQL): a job's status is written by many hands (a
  worker, a cancel through the API, a job given up after its workers died), and reading the
  row sees them all, with the error of a failed job. The stream ends after a final status.
A late subscriber (or one that reconnects) first gets the current state, then what follows.
Cost per open stream per interval: one XRANGE and one primary-key read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from clipmaker.api.auth import Caller
from clipmaker.api.routes.jobs import live_progress, load_job
from clipmaker.api.schemas import JobEvent
from clipmaker.jobs.models import Job, JobPublic, JobStage, JobStatus
from clipmaker.services import Services


def _view(services: Services, job: Job) -> JobEvent:
    return JobEvent.of(JobPublic.from_job(job, live_progress(services, [job]).get(job.id)))


def snapshot(services: Services, caller: Caller, job_id: str) -> tuple[str, JobEvent]:
    """The log position first, then the state: changes after that position are all newer.
    An unknown job, or another tenant's, raises ``NotFound`` (404) before any stream opens."""
    load_job(services, caller, job_id)  # may this caller see it at all?
    after = services.index.last_event_id(job_id)
    return after, _view(services, load_job(services, caller, job_id))


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
