"""Liveness and readiness, for load balancers and operators."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from clipmaker.api.deps import ServicesDep
from clipmaker.api.schemas import Health
from clipmaker.redact import client_message

router = APIRouter(tags=["health"])
log = logging.getLogger("clipmaker.api")


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The ingress answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Every dependency answers: database, Redis, storage and the worker pool."""
    from clipmaker.workers import check_workers  # Ray-side import, kept off module load

    probes: dict[str, Callable[[], object]] = {
        "database": services.jobs.check,
        "redis": services.queue.check,
        "storage": services.store.check,
        "workers": lambda: check_workers(services.settings),
    }
    checks: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            detail = await run_in_threadpool(probe)
            checks[name] = str(detail) if detail else "ok"
        except Exception as exc:
            # The kind of failure only: the text names addresses and paths, which are for
            # the log (readiness is answered to anyone who can reach the port).
            log.warning("readiness: %s failing: %s", name, exc)
            if isinstance(exc, redis.RedisError | SQLAlchemyError | OSError):
                checks[name] = f"failing: {type(exc).__name__}"
            else:
                checks[name] = f"failing: {client_message(str(exc), services.settings)}"
    ready = all(not value.startswith("failing") for value in checks.values())
    body = Health(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
