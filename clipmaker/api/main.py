"""The FastAPI application that Ray Serve hosts as the ingress.

Routes only validate, record and enqueue; nothing long runs inside a request. The services
(database, Redis, storage) are installed by the Serve deployment at start-up (api/deps.py).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from clipmaker.api.auth import authenticate
from clipmaker.api.errors import install_error_handlers
from clipmaker.api.routes import batches, events, files, health, jobs, uploads
from clipmaker.api.schemas import ErrorBody
from clipmaker.web import routes as web

DESCRIPTION = """
Cut a clip out of any video that yt-dlp understands (or one you upload), frame-accurately,
optionally with Whisper subtitles, and get signed URLs back.

Submit with `POST /api/jobs`, follow `GET /api/jobs/{id}/events` (Server-Sent Events) or poll
`GET /api/jobs/{id}`, fetch `GET /api/jobs/{id}/result`; or give the job a signed `webhook`.
People use the page at `/`.
Every error is `{"error": {"code": "...", "message": "..."}}`.

With keys (`clipmaker keys create`), send `Authorization: Bearer <key>`: each key acts for one
tenant and sees only its tenant's jobs, uploads and batches (an admin key sees all). Refusals a
client can branch on: `401 unauthorized`, `429 rate_limited` (with `Retry-After` and
`RateLimit-*` headers), `429 too_many_running_jobs`, `503 queue_full`, `503
service_unavailable` (both with `Retry-After`).
"""


def _refusal(description: str, *headers: str) -> dict:
    documented = {name: {"schema": {"type": "string"}} for name in headers}
    return {"model": ErrorBody, "description": description, "headers": documented}


# What any route of a tenant's work may answer before it looks at the request.
REFUSALS: dict[int | str, dict] = {
    401: _refusal("No API key, or not a valid one", "WWW-Authenticate"),
    429: _refusal(
        "Over the key's rate (rate_limited) or running-job cap (too_many_running_jobs)",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
    ),
    503: _refusal(
        "The queue is full (queue_full) or a dependency is away (service_unavailable)",
        "Retry-After",
    ),
}


def _key_optional_in_schema(app: FastAPI) -> None:
    """Publish the key as "Bearer, or none": whether a deployment requires one is its own
    setting (CLIPMAKER_AUTH), and a request without a key is well formed either way: it is
    answered 401 (documented) where keys are required, served where they are not."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    security = operation.get("security") if isinstance(operation, dict) else None
                    if security and {} not in security:
                        security.append({})
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_api() -> FastAPI:
    app = FastAPI(title="clipmaker", version="1.0.0", description=DESCRIPTION)
    install_error_handlers(app)
    # Every route of a tenant's work needs a key (when auth is on); files carry a signature
    # instead, health answers load balancers and the page asks for a key itself: no key there.
    for module in (jobs, events, uploads, batches):
        app.include_router(module.router, dependencies=[Depends(authenticate)], responses=REFUSALS)
    for module in (files, health, web):
        app.include_router(module.router)
    _key_optional_in_schema(app)
    return app


api = create_api()
