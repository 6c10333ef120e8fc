"""Response bodies of the HTTP API (request bodies live with the jobs they describe)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from clipmaker.jobs.models import ErrorInfo, JobPublic, JobStage, JobStatus


class ErrorBody(BaseModel):
    """Every error answer: a stable code to branch on, and a message for people."""

    error: ErrorInfo


class JobList(BaseModel):
    items: list[JobPublic]
    total: int = Field(description="Jobs matching the filter, over all pages.")
    limit: int
    offset: int


class VideoLink(BaseModel):
    url: str = Field(description="Signed URL of the clip; valid until expires_at.")
    expires_at: datetime
    bytes: int
    duration: float = Field(description="Measured duration of the clip, seconds.")
    content_type: str


class FileLink(BaseModel):
    url: str
    expires_at: datetime


class SubtitleLinks(BaseModel):
    srt: FileLink | None = None
    vtt: FileLink | None = None


class JobResult(BaseModel):
    video: VideoLink
    subtitles: SubtitleLinks


class UploadPublic(BaseModel):
    upload_id: str = Field(description="Pass as source.upload_id in a job.")
    filename: str
    bytes: int
    duration: float = Field(description="Duration of the uploaded media, seconds.")
    created_at: datetime


class BatchCreate(BaseModel):
    jobs: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Job requests (same shape as POST /api/jobs). Each is checked on its own: "
        "invalid ones are reported per item and the rest are accepted.",
    )


class BatchItem(BaseModel):
    index: int = Field(description="Position of the item in the submitted list.")
    job_id: str | None = Field(description="The job created for this item; null if rejected.")
    status: JobStatus | None
    progress: float | None = None
    error: ErrorInfo | None = None


class BatchPublic(BaseModel):
    id: str
    created_at: datetime
    size: int = Field(description="Items submitted.")
    counts: dict[str, int] = Field(description="Items per job status, plus 'rejected'.")
    done: bool = Field(description="True once every accepted job has finished.")
    items: list[BatchItem]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class JobEvent(BaseModel):
    """One change of a job, as each event's ``data:`` carries it."""

    id: str
    status: JobStatus
    stage: JobStage | None
    progress: float = Field(ge=0, le=1)
    attempt: int = Field(description="Which delivery to a worker this is (1 unless one died).")
    error: ErrorInfo | None = None
    final: bool = Field(description="True on the last event: the job has ended.")

    @classmethod
    def of(cls, job: JobPublic) -> JobEvent:
        return cls(
            id=job.id,
            status=job.status,
            stage=job.stage,
            progress=round(job.progress, 4),
            attempt=job.attempts,
            error=job.error,
            final=job.status.finished,
        )
