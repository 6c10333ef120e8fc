"""Liveness and readiness, for load balancers and operators."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from clipmaker.api.deps import ServicesDep
from clipmaker.api.schemas import Health

router = APIRouter(tags=["health"])


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
            checks[name] = f"failing: {exc}"
    ready = all(not value.startswith("failing") for value in checks.values())
    body = Health(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
