"""/api/uploads: send a source file instead of a URL."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from clipmaker.api.auth import CallerDep
from clipmaker.api.deps import ServicesDep
from clipmaker.api.schemas import UploadPublic
from clipmaker.api.upload_stream import FILE_FIELD, receive_file
from clipmaker.errors import NO_VIDEO_STREAM, ClipError
from clipmaker.jobs.models import new_id
from clipmaker.media import probe

router = APIRouter(prefix="/api/uploads", tags=["uploads"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {FILE_FIELD: {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    openapi_extra=_BODY,
    responses={
        413: {"description": "Larger than the upload limit"},
        415: {"description": "Not a multipart/form-data body"},
        422: {"description": "Not a media file, or a corrupt one"},
    },
)
async def create_upload(request: Request, services: ServicesDep, caller: CallerDep) -> UploadPublic:
    """Upload a video (multipart field 'file'). It is streamed to disk under the size cap,
    checked to be playable media, then kept in storage for jobs to use."""
    upload_id = new_id()
    scratch = services.settings.uploads_dir / f"{upload_id}.part"
    received = await receive_file(request, scratch, max_bytes=services.settings.max_upload_bytes)
    try:
        try:
            info = await run_in_threadpool(probe, received.path)
        except ClipError as exc:  # FFmpeg names the file: say "the upload", not our path
            message = exc.message.replace(repr(str(received.path)), "the upload")
            message = message.replace(str(received.path), "the upload")
            raise ClipError(exc.code, message, status_code=exc.status_code) from None
        if info.video is None:
            raise ClipError(NO_VIDEO_STREAM, "the uploaded file has no video stream to clip")
        key = f"uploads/{upload_id}/{received.filename}"
        await run_in_threadpool(
            services.store.put_file, received.path, key, content_type="application/octet-stream"
        )
    finally:
        received.path.unlink(missing_ok=True)
    upload = services.jobs.create_upload(
        upload_id=upload_id,
        filename=received.filename,
        key=key,
        size=received.size,
        duration=info.duration,
        tenant=caller.tenant,
    )
    return UploadPublic(
        upload_id=upload.id,
        filename=upload.filename,
        bytes=upload.bytes,
        duration=upload.duration,
        created_at=upload.created_at,
    )
