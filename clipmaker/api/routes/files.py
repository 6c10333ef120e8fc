"""/files: results on local disk, behind an HMAC-signed, expiring link.

S3 results are fetched from S3 with presigned URLs; this route exists for the embedded
(local directory) store only, and refuses any link whose signature or expiry does not check.

It answers HTTP ``Range`` requests (Starlette's ``FileResponse``: ``206`` with
``Content-Range``, ``Accept-Ranges: bytes``, ``416`` past the end, ``If-Range`` against the
ETag), so a ``<video>`` element can seek without downloading everything before the point it
jumps to, and an interrupted download resumes where it stopped.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse

from clipmaker.api.deps import ServicesDep
from clipmaker.errors import NotFound
from clipmaker.storage import verify_link

router = APIRouter(tags=["files"])


@router.get(
    "/files/{key:path}",
    response_class=FileResponse,
    responses={403: {"description": "Bad signature or expired link"}, 404: {}},
)
def get_file(
    key: str,
    services: ServicesDep,
    expires: Annotated[str, Query(description="Unix time the link expires at.")],
    sig: Annotated[str, Query(description="HMAC-SHA256 of key and expiry.")],
) -> FileResponse:
    """A stored result file, if the link is genuine and not expired."""
    verify_link(services.settings.resolved_signing_secret, key, expires, sig)
    store = services.store
    path = store.local_path(key) if store.is_local else None
    if path is None or not path.is_file():
        raise NotFound("file_not_found", "the file no longer exists")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix in (".srt", ".vtt"):
        media_type = {".srt": "application/x-subrip", ".vtt": "text/vtt"}[path.suffix]
    return FileResponse(path, media_type=media_type, filename=path.name)
