"""Admission control: whether new jobs may enter the queue at all.

Two caps, both checked before a job row is written:

- the global queue depth (``max_queued_jobs``): past it, ``503 queue_full`` with Retry-After,
  so a flood is refused while Redis and the database still have room, rather than after;
- a key's ``max_running`` (jobs queued or running at once): past it,
  ``429 too_many_running_jobs``. Counting and inserting happen under a short Redis lock per
  key, so replicas racing for a key's last slot cannot both get it.

A batch is admitted like its jobs, all or nothing: ``weight`` is its number of jobs, and a batch
that does not fit is refused whole (``batch_too_large`` when it could never fit).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from clipmaker.api.auth import Caller
from clipmaker.errors import (
    BATCH_TOO_LARGE,
    QUEUE_FULL,
    SERVICE_UNAVAILABLE,
    TOO_MANY_RUNNING_JOBS,
    ClipError,
)
from clipmaker.services import Services

QUEUE_FULL_RETRY_S = 30
RUNNING_RETRY_S = 5


def _check_queue(services: Services, weight: int) -> None:
    cap = services.settings.max_queued_jobs
    if weight > cap:
        raise ClipError(
            BATCH_TOO_LARGE, f"{weight} jobs at once is more than the queue holds ({cap})"
        )
    depth = services.queue.depth()
    if depth + weight > cap:
        raise ClipError(
            QUEUE_FULL,
            "the service is at capacity; retry later",
            status_code=503,
            headers={"Retry-After": str(QUEUE_FULL_RETRY_S)},
        )


@contextmanager
def admit(services: Services, caller: Caller, weight: int = 1) -> Iterator[None]:
    """Raise unless ``weight`` more jobs fit; the body creates them while the slot is held."""
    if weight <= 0:
        yield
        return
    _check_queue(services, weight)
    cap = caller.max_running
    if caller.key_id is None or cap is None:
        yield
        return
    if weight > cap:
        raise ClipError(
            BATCH_TOO_LARGE,
            f"{weight} jobs at once is more than this key may run ({cap}); split the batch",
        )
    with ExitStack() as held:
        try:
            held.enter_context(services.limits.admission(caller.key_id))
        except TimeoutError:
            raise ClipError(
                SERVICE_UNAVAILABLE,
                "too many submissions for this key at once; retry",
                status_code=503,
                headers={"Retry-After": "1"},
            ) from None
        running = services.jobs.unfinished(caller.key_id)
        if running + weight > cap:
            raise ClipError(
                TOO_MANY_RUNNING_JOBS,
                f"this key may have {cap} jobs queued or running at once and has {running}; "
                "retry when one finishes",
                status_code=429,
                headers={"Retry-After": str(RUNNING_RETRY_S)},
            )
        yield
