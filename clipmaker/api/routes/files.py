"""/files: results on local disk, behind an HMAC-signed, expiring link.

S3 results are fetched from S3 with presigned URLs; this route exists for the embedded
(local directory) store only, and refuses any link whose signature or expiry does not check.

It answers HTTP ``Range`` requests (Starlette's ``FileResponse``: ``206`` with
``Content-Range``, ``Accept-Ranges: bytes``, ``416`` past the end, ``If-Range`` against the
ETag), so a ``<video>`` element can seek without downloading everything before the point it
jumps to, and an interrupted download resumes where it stopped.

The link itself is the credential (a ``<video>`` tag or a download manager sends no key), so
the route needs no key. A link minted for a tenant carries it, signed: it cannot be rewritten
to another tenant, and a request that does present another tenant's key gets 404, as if the
file did not exist. Links minted before tenants existed (no ``tenant``) keep working.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from clipmaker.api.auth import bearer_scheme, identify
from clipmaker.api.deps import ServicesDep
from clipmaker.api.errors import error_response
from clipmaker.errors import NotFound
from clipmaker.storage import verify_link

router = APIRouter(tags=["files"])

FILE_NOT_FOUND = "file_not_found"
RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


def unsatisfiable(range_header: str | None, size: int) -> bool:
    """True when a well-formed ``bytes=`` Range names no byte of the file (RFC 9110 14.1.2):
    every range starts at or past the end, or asks for an empty suffix. Malformed headers are
    left to ``FileResponse``."""
    if not range_header or not range_header.strip().lower().startswith("bytes="):
        return False
    specs = range_header.split("=", 1)[1].split(",")
    for spec in specs:
        match = _RANGE_SPEC.match(spec)
        if match is None or match.groups() == ("", ""):
            return False  # malformed: not ours to judge
        first, last = match.groups()
        if first and int(first) < size:
            return False
        if not first and int(last) > 0 and size > 0:
            return False
    return True


@router.get(
    "/files/{key:path}",
    response_class=FileResponse,
    responses={
        206: {"description": "The requested byte range (Range header)"},
        403: {"description": "Bad signature or expired link"},
        404: {},
        416: {"description": "The Range names no byte of the file"},
    },
)
def get_file(
    key: str,
    services: ServicesDep,
    expires: Annotated[str, Query(max_length=20, description="Unix time the link expires at.")],
    sig: Annotated[str, Query(max_length=128, description="HMAC-SHA256 of the link's parts.")],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    tenant: Annotated[
        str | None, Query(max_length=64, description="The tenant the link was minted for.")
    ] = None,
    range_header: Annotated[str | None, Header(alias="range", include_in_schema=False)] = None,
) -> Response:
    """A stored result file, if the link is genuine and not expired."""
    verify_link(services.settings.resolved_signing_secret, key, expires, sig, tenant=tenant)
    if credentials is not None and tenant is not None:
        caller = identify(services, credentials)
        if caller.scope is not None and caller.scope != tenant:
            raise NotFound(FILE_NOT_FOUND, "the file no longer exists")
    store = services.store
    path = store.local_path(key) if store.is_local else None
    if path is None or not path.is_file():
        raise NotFound(FILE_NOT_FOUND, "the file no longer exists")
    size = path.stat().st_size
    if unsatisfiable(range_header, size):
        return error_response(
            416,
            RANGE_NOT_SATISFIABLE,
            f"the range {range_header!r} is past the end of the file ({size} bytes)",
            **{"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
        )
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix in (".srt", ".vtt"):
        media_type = {".srt": "application/x-subrip", ".vtt": "text/vtt"}[path.suffix]
    return FileResponse(path, media_type=media_type, filename=path.name)
