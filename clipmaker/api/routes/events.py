"""GET /api/jobs/{id}/events: a job's changes as Server-Sent Events, until it ends.

Each event is one ``data:`` line of JSON (``JobEvent``): the current state first, then one per
change of status, stage or progress; the stream closes after the final status. How the changes
are learnt is ``clipmaker.api.live``'s concern.
"""

from __future__ import annotations

from fastapi import APIRouter
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from clipmaker.api.auth import CallerDep
from clipmaker.api.deps import ServicesDep
from clipmaker.api.live import job_events, snapshot

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

PING_S = 15  # a comment line this often keeps proxies and read timeouts from closing the stream


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
        404: {"description": "Unknown job (or another tenant's)"},
    },
)
async def stream_job_events(
    job_id: str, services: ServicesDep, caller: CallerDep
) -> EventSourceResponse:
    """Watch a job live instead of polling it (Server-Sent Events)."""
    after, first = await run_in_threadpool(snapshot, services, caller, job_id)
    return EventSourceResponse(
        job_events(services, job_id, after, first),
        ping=PING_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
