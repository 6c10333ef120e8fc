"""Job and batch records: the request a user sends, the row we keep, the view we return.

Laid out like fastapi/full-stack-fastapi-template: ``ClipRequest`` is what a client sends,
``Job`` is the one table, ``JobPublic`` what the API returns.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from sqlalchemy import JSON, Column, DateTime, Dialect, TypeDecorator, UniqueConstraint
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

DEFAULT_TENANT = "default"
"""The tenant of every job, upload and batch made while auth is off (and of older rows)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; ours are always UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always an aware UTC datetime in Python.

    Why: SQLite keeps no time zone and Postgres ``timestamp`` hands back naive values, so
    without this a job read back could not be compared with ``utcnow()``. Stored as UTC
    (``timestamptz`` on Postgres, ISO text on SQLite), returned with ``tzinfo=UTC``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # naive values are taken to be UTC already
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        # SQLite drops tzinfo on the way in: give it the UTC wall time
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# A time as a string: "HH:MM:SS(.fff)", "MM:SS(.fff)" or plain seconds ("65.5"). ASCII digits
# only, no spaces: exactly what the OpenAPI schema publishes, so the schema tells the truth.
TIME_PATTERN = r"^(?:(?:[0-9]+:)?[0-5]?[0-9]:[0-5]?[0-9](?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?)$"
_CLOCK = re.compile(r"^(?:([0-9]+):)?([0-5]?[0-9]):([0-5]?[0-9](?:\.[0-9]+)?)$")
_DECIMAL = re.compile(r"^[0-9]+(?:\.[0-9]+)?$")


def parse_time(value: object) -> float:
    """Seconds from a number or an ``HH:MM:SS(.fff)`` / ``MM:SS(.fff)`` string."""
    if isinstance(value, bool):
        raise ValueError("a time is a number of seconds or 'HH:MM:SS(.fff)', not a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _CLOCK.match(value)
        if match:
            hours, minutes, secs = match.groups()
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        elif _DECIMAL.match(value):
            seconds = float(value)
        else:
            try:
                special = float(value)
            except ValueError:
                special = 0.0
            if special != special or special in (float("inf"), float("-inf")):
                raise ValueError("a time must be a finite number")
            raise ValueError(f"{value!r} is not a time: use seconds or 'HH:MM:SS(.fff)'")
    else:
        raise ValueError("a time is a number of seconds or an 'HH:MM:SS(.fff)' string")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("a time must be a finite number")
    if seconds < 0:
        raise ValueError("a time cannot be negative")
    return seconds


Seconds = Annotated[
    float,
    BeforeValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": TIME_PATTERN},
            ],
            "description": "Seconds (a number), or a string: 'HH:MM:SS(.fff)', 'MM:SS(.fff)' "
            "or seconds.",
            "examples": ["00:01:05.5", 95.0],
        }
    ),
]


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled)


class JobStage(StrEnum):
    fetching = "fetching"
    cutting = "cutting"
    transcribing = "transcribing"
    storing = "storing"


def _http_only(value: object) -> object:
    if isinstance(value, str) and not re.match(r"^https?://", value.strip(), re.I):
        raise ValueError("only http:// and https:// URLs are accepted")
    return value


WEBHOOK_SECRET_PREFIX = "whsec_"


def _webhook_secret(value: object) -> object:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 24 to 64 random bytes."""
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    if not isinstance(text, str) or not text.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("a webhook secret is 'whsec_' followed by base64 (Standard Webhooks)")
    try:
        key = base64.b64decode(text.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the webhook secret after 'whsec_' is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"the webhook secret must hold 24 to 64 bytes, not {len(key)}")
    return value


class Webhook(BaseModel):
    """Where to POST the job once it ends, and the secret its signature is made with.

    The secret is never shown back: it is kept apart from the stored request (which the API
    echoes) and erased once delivery has succeeded or been given up.
    """

    model_config = ConfigDict(extra="forbid")

    url: Annotated[HttpUrl, BeforeValidator(_http_only)] = Field(
        description="Receiver of the signed POST; the same address rules as a source apply."
    )
    secret: Annotated[SecretStr, BeforeValidator(_webhook_secret)] = Field(
        description="'whsec_' + base64 of 24-64 random bytes (Standard Webhooks); never shown "
        "back by the API.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    @property
    def key(self) -> bytes:
        """The HMAC key: the bytes the base64 after ``whsec_`` stands for."""
        return webhook_key(self.secret.get_secret_value())


def webhook_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX))


class Source(BaseModel):
    """Where the video comes from: exactly one of a URL or an earlier upload."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = Field(
        default=None,
        description="A page yt-dlp understands (YouTube, Vimeo, ...) or a direct media URL; "
        "http(s) only.",
        examples=["https://www.youtube.com/watch?v=aqz-KE-bpKQ"],
    )
    upload_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="The id returned by POST /api/uploads.",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _http_only(cls, value: object) -> object:
        return _http_only(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Source:
        if (self.url is None) == (self.upload_id is None):
            raise ValueError("give exactly one of 'url' or 'upload_id'")
        return self


class ClipRequest(BaseModel):
    """A clip job as a client submits it. ``end`` must be after ``start`` (a request with
    ``end <= start`` is refused as ``invalid_request``), and the clip may last at most the
    service's ``max_clip_s``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": {"url": "https://www.youtube.com/watch?v=aqz-KE-bpKQ"},
                    "start": "00:01:05.5",
                    "end": 95.0,
                    "accuracy": "frame",
                    "subtitles": "srt",
                    "language": None,
                }
            ]
        },
    )

    source: Source
    start: Seconds = Field(description="Clip start: seconds or 'HH:MM:SS(.fff)'.")
    end: Seconds = Field(
        description="Clip end (exclusive): seconds or 'HH:MM:SS(.fff)'; must be after start."
    )
    accuracy: Literal["frame", "keyframe"] = Field(
        default="frame",
        description="'frame': the clip's first frame is the source frame at start; "
        "'keyframe': pure stream copy from the keyframe at or before start.",
    )
    subtitles: Literal["none", "srt", "vtt", "both"] = Field(
        default="none", description="Transcribe the clip with Whisper into these formats."
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2,3}$",
        description="Spoken language (ISO 639-1 code such as 'en'); null = detect.",
    )
    webhook: Webhook | None = Field(
        default=None,
        description="POST the job here, signed (Standard Webhooks), once it has ended.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ClipRequest:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start

    def stored(self) -> dict[str, Any]:
        """The request as the job row keeps (and the API shows) it: without the webhook, whose
        URL and secret live in columns of their own, so the secret is never echoed back."""
        return self.model_dump(mode="json", exclude={"webhook"})

    @property
    def subtitle_formats(self) -> tuple[str, ...]:
        return {"none": (), "srt": ("srt",), "vtt": ("vtt",), "both": ("srt", "vtt")}[
            self.subtitles
        ]


class Timings(BaseModel):
    """Seconds spent per stage by the attempt that produced the result."""

    queued_s: float | None = None
    fetch_s: float | None = None
    cut_s: float | None = None
    asr_s: float | None = None
    store_s: float | None = None
    total_s: float | None = None


class MediaReport(BaseModel):
    """How the clip was made: which fetch and cut paths ran, and what they cost."""

    fetch_path: Literal["range", "full", "local", "cache"] | None = Field(
        default=None,
        description="'range': only the needed byte ranges were read; 'full': the server could "
        "not serve ranges, so the source was downloaded whole; 'local': an upload; 'cache': "
        "the result of an identical earlier job was reused.",
    )
    cut_mode: Literal["smart", "reencode", "copy"] | None = Field(
        default=None,
        description="'smart': partial GOPs re-encoded, the rest stream-copied; 'reencode': "
        "the whole clip re-encoded; 'copy': pure stream copy.",
    )
    bytes_read: int | None = Field(default=None, description="Bytes read from the network.")
    frames_reencoded: int | None = None
    frames_copied: int | None = None
    note: str | None = Field(default=None, description="Why a slower path was taken, if it was.")
    cached_from: str | None = Field(
        default=None, description="The job whose result this one reuses (fetch_path 'cache')."
    )


class StoredResult(BaseModel):
    """Where a finished job's files are, as storage keys (signed into URLs on request)."""

    video_key: str
    video_bytes: int
    video_duration: float
    content_type: str = "video/mp4"
    subtitle_keys: dict[str, str] = Field(default_factory=dict)  # "srt"/"vtt" -> key


class Job(SQLModel, table=True):
    """The status of record of one clip job."""

    __tablename__ = "jobs"
    # The idempotency guarantee itself: two racing creates with one key cannot both insert.
    # Per tenant: one tenant's keys must neither collide with nor reveal another's.
    __table_args__ = (
        UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_tenant_idempotency_key"),
    )

    id: str = SQLField(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = SQLField(default=DEFAULT_TENANT, index=True, max_length=64)
    api_key_id: str | None = SQLField(default=None, index=True, max_length=32)
    batch_id: str | None = SQLField(default=None, index=True, max_length=32)
    idempotency_key: str | None = SQLField(default=None, max_length=255)
    request: dict[str, Any] = SQLField(sa_column=Column(JSON, nullable=False))
    status: str = SQLField(default=JobStatus.queued, index=True, max_length=16)
    stage: str | None = SQLField(default=None, max_length=16)
    progress: float = 0.0
    attempts: int = 0
    # Attempts given back to the queue because a dependency (Redis) failed under them: they
    # do not count towards max_attempts, which is about workers dying on a job.
    requeues: int = 0
    worker: str | None = SQLField(default=None, max_length=128)
    error_code: str | None = SQLField(default=None, max_length=64)
    error_message: str | None = None
    result: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON))
    timings: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON))
    media: dict[str, Any] | None = SQLField(default=None, sa_column=Column(JSON))
    created_at: datetime = SQLField(default_factory=utcnow, index=True, sa_type=UTCDateTime)
    updated_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)
    # Webhook: the secret is kept only until delivery succeeds or is given up.
    webhook_url: str | None = SQLField(default=None, max_length=2048)
    webhook_secret: str | None = SQLField(default=None, max_length=256)
    webhook_status: str | None = SQLField(default=None, index=True, max_length=16)
    webhook_attempts: int = SQLField(default=0, sa_column_kwargs={"server_default": "0"})
    webhook_next_at: datetime | None = SQLField(default=None, sa_type=UTCDateTime)

    @property
    def clip_request(self) -> ClipRequest:
        return ClipRequest.model_validate(self.request)


class WebhookStatus(StrEnum):
    pending = "pending"  # the job has not ended, or delivery is still being tried
    delivered = "delivered"  # a receiver answered 2xx
    failed = "failed"  # no 2xx within the retry window: given up


class WebhookDelivery(SQLModel, table=True):
    """One attempt to deliver a job's webhook. Rows are only ever inserted, never updated."""

    __tablename__ = "webhook_deliveries"

    id: int | None = SQLField(default=None, primary_key=True)
    job_id: str = SQLField(index=True, max_length=32)
    attempt: int
    at: datetime = SQLField(sa_type=UTCDateTime)
    status_code: int | None = None
    error: str | None = SQLField(default=None, max_length=512)


class Batch(SQLModel, table=True):
    """Many jobs submitted in one call. ``items`` keeps the submitted order: per item either
    ``{"job_id": ...}`` or ``{"error": {"code", "message"}}`` for an item that was rejected."""

    __tablename__ = "batches"

    id: str = SQLField(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = SQLField(default=DEFAULT_TENANT, index=True, max_length=64)
    size: int
    items: list[dict[str, Any]] = SQLField(default_factory=list, sa_column=Column(JSON))
    created_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class Upload(SQLModel, table=True):
    """A source file a client sent us, kept in storage under ``key``."""

    __tablename__ = "uploads"

    id: str = SQLField(default_factory=new_id, primary_key=True, max_length=32)
    tenant: str = SQLField(default=DEFAULT_TENANT, index=True, max_length=64)
    filename: str = SQLField(max_length=255)
    key: str = SQLField(max_length=512)
    bytes: int
    duration: float
    created_at: datetime = SQLField(default_factory=utcnow, sa_type=UTCDateTime)


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. range_out_of_bounds.")
    message: str = Field(description="What went wrong, for people.")


class DeliveryPublic(BaseModel):
    at: datetime = Field(description="When the attempt was made.")
    status_code: int | None = Field(description="The receiver's HTTP status; null if none came.")
    error: str | None = Field(default=None, description="Why no answer came, if none did.")


class WebhookPublic(BaseModel):
    """A job's webhook as the API shows it: never its secret."""

    url: str
    status: WebhookStatus
    deliveries: list[DeliveryPublic] = Field(
        default_factory=list, description="Every delivery attempt so far, oldest first."
    )


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: str
    tenant: str = Field(description="The tenant the job belongs to.")
    batch_id: str | None
    status: JobStatus
    stage: JobStage | None = Field(description="What a running job is doing now.")
    progress: float = Field(ge=0, le=1, description="0..1 over the whole job.")
    attempts: int = Field(description="Deliveries to a worker so far (more than 1 after a "
                          "worker died).")
    error: ErrorInfo | None
    request: ClipRequest
    timings: Timings | None
    media: MediaReport | None = Field(description="Fetch and cut paths taken, bytes read.")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    webhook: WebhookPublic | None = Field(
        default=None, description="Where the job is POSTed once it ends, and each attempt."
    )

    @classmethod
    def from_job(
        cls,
        job: Job,
        live_progress: float | None = None,
        deliveries: list[WebhookDelivery] | None = None,
    ) -> JobPublic:
        error = (
            ErrorInfo(code=job.error_code, message=job.error_message or "")
            if job.error_code
            else None
        )
        progress = job.progress
        if live_progress is not None and job.status == JobStatus.running:
            progress = max(progress, live_progress)
        return cls(
            id=job.id,
            tenant=job.tenant,
            batch_id=job.batch_id,
            status=JobStatus(job.status),
            stage=JobStage(job.stage) if job.stage else None,
            progress=min(max(progress, 0.0), 1.0),
            attempts=job.attempts,
            error=error,
            request=job.clip_request,
            timings=Timings.model_validate(job.timings) if job.timings else None,
            media=MediaReport.model_validate(job.media) if job.media else None,
            created_at=as_utc(job.created_at),
            updated_at=as_utc(job.updated_at),
            started_at=as_utc(job.started_at) if job.started_at else None,
            finished_at=as_utc(job.finished_at) if job.finished_at else None,
            webhook=_webhook_view(job, deliveries),
        )


def _webhook_view(job: Job, deliveries: list[WebhookDelivery] | None) -> WebhookPublic | None:
    if not job.webhook_url:
        return None
    return WebhookPublic(
        url=job.webhook_url,
        status=WebhookStatus(job.webhook_status or WebhookStatus.pending),
        deliveries=[
            DeliveryPublic(at=as_utc(d.at), status_code=d.status_code, error=d.error)
            for d in deliveries or []
        ],
    )
