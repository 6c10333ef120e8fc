"""Jobs: the table, its states, and the repository that is the only writer of it."""

from clipmaker.jobs.db import make_engine, migrate
from clipmaker.jobs.models import (
    Batch,
    ClipRequest,
    ErrorInfo,
    Job,
    JobPublic,
    JobStage,
    JobStatus,
    Source,
    StoredResult,
    Timings,
    Upload,
)
from clipmaker.jobs.repository import Claim, JobRepository

__all__ = [
    "Batch",
    "Claim",
    "ClipRequest",
    "ErrorInfo",
    "Job",
    "JobPublic",
    "JobRepository",
    "JobStage",
    "JobStatus",
    "Source",
    "StoredResult",
    "Timings",
    "Upload",
    "make_engine",
    "migrate",
]
