"""/files: results on local disk, behind an HMAC-signed, expiring link.

S3 results are fetched from S3 with presigned URLs; this route exists for the embedded
(local directory) store only, and refuses any link whose signature or expiry does not check.

The link itself is the credential (a ``<video>`` tag or a download manager sends no key), so
the route needs no key. A link minted for a tenant carries it, signed: it cannot be rewritten
to another tenant, and a request that does present another tenant's key gets 404, as if the
file did not exist. Links minted before tenants existed (no ``tenant``) keep working.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials

from clipmaker.api.auth import bearer_scheme, identify
from clipmaker.api.deps import ServicesDep
from clipmaker.errors import NotFound
from clipmaker.storage import verify_link

router = APIRouter(tags=["files"])

FILE_NOT_FOUND = "file_not_found"


@router.get(
    "/files/{key:path}",
    response_class=FileResponse,
    responses={403: {"description": "Bad signature or expired link"}, 404: {}},
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
) -> FileResponse:
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
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix in (".srt", ".vtt"):
        media_type = {".srt": "application/x-subrip", ".vtt": "text/vtt"}[path.suffix]
    return FileResponse(path, media_type=media_type, filename=path.name)
