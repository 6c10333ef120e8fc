"""The FastAPI application that Ray Serve hosts as the ingress.

Routes only validate, record and enqueue; nothing long runs inside a request. The services
(database, Redis, storage) are installed by the Serve deployment at start-up (api/deps.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from clipmaker.api.errors import install_error_handlers
from clipmaker.api.routes import batches, events, files, health, jobs, uploads
from clipmaker.web import routes as web

DESCRIPTION = """
Cut a clip out of any video that yt-dlp understands (or one you upload), frame-accurately,
optionally with Whisper subtitles, and get signed URLs back.

Submit with `POST /api/jobs`, follow `GET /api/jobs/{id}/events` (Server-Sent Events) or poll
`GET /api/jobs/{id}`, fetch `GET /api/jobs/{id}/result`; or give the job a signed `webhook`.
People use the page at `/`.
Every error is `{"error": {"code": "...", "message": "..."}}`.
"""


def create_api() -> FastAPI:
    app = FastAPI(title="clipmaker", version="1.0.0", description=DESCRIPTION)
    install_error_handlers(app)
    for module in (jobs, events, uploads, batches, files, health, web):
        app.include_router(module.router)
    return app


api = create_api()
