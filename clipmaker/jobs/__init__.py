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
    Webhook,
    WebhookDelivery,
    WebhookStatus,
)
from clipmaker.jobs.repository import Claim, JobRepository, WebhookClaim

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
    "Webhook",
    "WebhookClaim",
    "WebhookDelivery",
    "WebhookStatus",
    "make_engine",
    "migrate",
]
