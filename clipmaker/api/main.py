"""The FastAPI application that Ray Serve hosts as the ingress.

Routes only validate, record and enqueue; nothing long runs inside a request. The services
(database, Redis, storage) are installed by the Serve deployment at start-up (api/deps.py).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from clipmaker.api.auth import authenticate
from clipmaker.api.errors import install_error_handlers
from clipmaker.api.routes import batches, files, health, jobs, uploads

DESCRIPTION = """
Cut a clip out of any video that yt-dlp understands (or one you upload), frame-accurately,
optionally with Whisper subtitles, and get signed URLs back.

Submit with `POST /api/jobs`, poll `GET /api/jobs/{id}`, fetch `GET /api/jobs/{id}/result`.
Every error is `{"error": {"code": "...", "message": "..."}}`.

With keys (`clipmaker keys create`), send `Authorization: Bearer <key>`: each key acts for one
tenant and sees only its tenant's jobs, uploads and batches (an admin key sees all). Refusals a
client can branch on: `401 unauthorized`, `429 rate_limited` (with `Retry-After` and
`RateLimit-*` headers), `429 too_many_running_jobs`, `503 queue_full`, `503
service_unavailable` (both with `Retry-After`).
"""


def create_api() -> FastAPI:
    app = FastAPI(title="clipmaker", version="1.0.0", description=DESCRIPTION)
    install_error_handlers(app)
    # Every route of a tenant's work needs a key (when auth is on); files carry a signature
    # instead, and health answers load balancers, which have no key.
    for module in (jobs, uploads, batches):
        app.include_router(module.router, dependencies=[Depends(authenticate)])
    for module in (files, health):
        app.include_router(module.router)
    return app


api = create_api()
