"""/api/batches: many clip jobs in one call, for notebooks and scripts.

Each item is checked on its own: a bad item is reported with its error and index, and the
good ones run. Only a batch in which every item is bad is refused as a whole, and so is one
whose good items do not fit the key's limits or the queue (all or nothing: a client never has
to work out which part of its batch was dropped).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import ValidationError

from clipmaker.api.admission import admit
from clipmaker.api.auth import Caller, CallerDep, charge
from clipmaker.api.deps import ServicesDep
from clipmaker.api.errors import describe_validation_error
from clipmaker.api.routes.jobs import live_progress
from clipmaker.api.schemas import BatchCreate, BatchItem, BatchPublic, ErrorBody
from clipmaker.api.submit import check_request, enqueue
from clipmaker.errors import (
    BATCH_NOT_FOUND,
    BATCH_TOO_LARGE,
    INVALID_REQUEST,
    ClipError,
    NotFound,
)
from clipmaker.jobs.models import ClipRequest, ErrorInfo, JobPublic
from clipmaker.services import Services

router = APIRouter(prefix="/api/batches", tags=["batches"])


def _checked(services: Services, caller: Caller, raw: dict) -> ClipRequest | ErrorInfo:
    try:
        request = ClipRequest.model_validate(raw)
        check_request(services, caller, request)
    except ValidationError as exc:
        return ErrorInfo(code=INVALID_REQUEST, message=describe_validation_error(exc.errors()))
    except ClipError as exc:
        return ErrorInfo(code=exc.code, message=exc.message)
    return request


def batch_view(services: Services, caller: Caller, batch_id: str) -> BatchPublic:
    found = services.jobs.get_batch(batch_id, caller.scope)
    if found is None:
        raise NotFound(BATCH_NOT_FOUND, f"no batch has the id {batch_id!r}")
    batch, jobs = found
    by_id = {job.id: job for job in jobs}
    live = live_progress(services, jobs)
    items: list[BatchItem] = []
    counts: dict[str, int] = {}
    for index, entry in enumerate(batch.items):
        job = by_id.get(entry.get("job_id", ""))
        if job is None:
            error = ErrorInfo.model_validate(entry["error"])
            items.append(BatchItem(index=index, job_id=None, status=None, error=error))
            counts["rejected"] = counts.get("rejected", 0) + 1
            continue
        view = JobPublic.from_job(job, live.get(job.id))
        items.append(
            BatchItem(
                index=index,
                job_id=job.id,
                status=view.status,
                progress=view.progress,
                error=view.error,
            )
        )
        counts[view.status] = counts.get(view.status, 0) + 1
    done = all(item.status is None or item.status.finished for item in items)
    return BatchPublic(
        id=batch.id,
        created_at=batch.created_at,
        size=batch.size,
        counts=counts,
        done=done,
        items=items,
    )


@router.post(
    "",
    status_code=202,
    response_model=BatchPublic,
    responses={
        400: {"model": ErrorBody, "description": "Malformed JSON"},
        422: {"model": ErrorBody, "description": "Every item invalid, or a batch too large"},
    },
)
def create_batch(
    body: BatchCreate, services: ServicesDep, caller: CallerDep, response: Response
) -> BatchPublic:
    """Submit many jobs; items are checked one by one. The accepted ones count against the
    key's rate and running-job cap and the queue's capacity like as many single submissions:
    a batch that does not fit is refused whole (nothing of it is queued)."""
    entries = [_checked(services, caller, raw) for raw in body.jobs]
    accepted = sum(isinstance(entry, ClipRequest) for entry in entries)
    if not accepted:
        first = entries[0]
        assert isinstance(first, ErrorInfo)
        raise ClipError(INVALID_REQUEST, f"every item was rejected; item 0: {first.message}")
    rpm = caller.requests_per_minute
    if rpm is not None and caller.key_id is not None and accepted > rpm:
        raise ClipError(
            BATCH_TOO_LARGE,
            f"{accepted} jobs at once is more than this key may submit per minute ({rpm}); "
            "split the batch",
        )
    with admit(services, caller, accepted):
        # Charged once the batch is known to fit: a refused batch spends no rate.
        decision = charge(services, caller, accepted - 1)  # the request itself counted one
        if decision is not None:
            response.headers.update(decision.headers())
        batch, jobs = services.jobs.create_batch(
            entries, tenant=caller.tenant, api_key_id=caller.key_id
        )
    for job in jobs:
        enqueue(services, job.id)
    return batch_view(services, caller, batch.id)


@router.get(
    "/{batch_id}",
    response_model=BatchPublic,
    responses={404: {"model": ErrorBody, "description": "Unknown batch (or another tenant's)"}},
)
def get_batch(batch_id: str, services: ServicesDep, caller: CallerDep) -> BatchPublic:
    """Per-item status, progress and errors of a batch."""
    return batch_view(services, caller, batch_id)
