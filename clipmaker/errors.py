"""Errors that carry a code a program can branch on.

Every layer raises ``ClipError`` (or a subclass) for anything caused by the input; the API turns
it into ``{"error": {"code", "message"}}`` and a failed job records the same code and message.
Anything else is a bug or an outage and becomes ``internal_error``.
"""

from __future__ import annotations


class ClipError(Exception):
    """A failure with a stable machine-readable ``code`` and a human ``message``."""

    status_code: int = 422

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # HTTP headers the refusal needs (Retry-After, WWW-Authenticate, RateLimit-*).
        self.headers = dict(headers or {})
        if status_code is not None:
            self.status_code = status_code

    def __reduce__(self):  # keep code and message when Ray pickles the error across processes
        return (_rebuild, (type(self), self.code, self.message, self.status_code))

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def _rebuild(cls: type[ClipError], code: str, message: str, status_code: int) -> ClipError:
    return cls(code, message, status_code=status_code)


class NotFound(ClipError):
    status_code = 404


class Conflict(ClipError):
    status_code = 409


class JobCancelled(Exception):
    """Raised inside a worker when its job was cancelled (or taken over): stop quietly."""


# Codes used across layers (a program branches on these strings).
INVALID_REQUEST = "invalid_request"
INVALID_SOURCE_URL = "invalid_source_url"
SOURCE_UNREACHABLE = "source_unreachable"
NOT_MEDIA = "not_media"
CORRUPT_MEDIA = "corrupt_media"
NO_VIDEO_STREAM = "no_video_stream"
RANGE_OUT_OF_BOUNDS = "range_out_of_bounds"
LIVE_SOURCE = "source_live"  # a live stream, or one that has not started yet
UPLOAD_NOT_FOUND = "upload_not_found"
UPLOAD_TOO_LARGE = "upload_too_large"
JOB_NOT_FOUND = "job_not_found"
BATCH_NOT_FOUND = "batch_not_found"
JOB_NOT_FINISHED = "job_not_finished"
JOB_NOT_CANCELLABLE = "job_not_cancellable"
LINK_EXPIRED = "link_expired"
BAD_SIGNATURE = "bad_signature"
TOO_MANY_ATTEMPTS = "too_many_attempts"
INTERNAL_ERROR = "internal_error"
SOURCE_FORBIDDEN = "source_forbidden"
SOURCE_TOO_SLOW = "source_too_slow"
JOB_DEADLINE_EXCEEDED = "job_deadline_exceeded"
# Why a site won't give us the video (clipmaker.media.youtube maps extraction failures)
SOURCE_LIVE = LIVE_SOURCE
SOURCE_PRIVATE = "source_private"
SOURCE_AGE_RESTRICTED = "source_age_restricted"
SOURCE_GEO_BLOCKED = "source_geo_blocked"
SOURCE_REMOVED = "source_removed"
SOURCE_NEEDS_LOGIN = "source_needs_login"
SOURCE_RATE_LIMITED = "source_rate_limited"  # retried later (deferred), then failed

# Keys, tenants and limits (refusals a client sees before any work is done).
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
TOO_MANY_RUNNING_JOBS = "too_many_running_jobs"
BATCH_TOO_LARGE = "batch_too_large"
QUEUE_FULL = "queue_full"
SERVICE_UNAVAILABLE = "service_unavailable"
