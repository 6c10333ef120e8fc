"""API keys: what an operator creates, the row we keep, the view we list.

Laid out like the job records (``XBase`` / ``XCreate`` / ``XPublic`` and the table). Only a
SHA-256 of a key is stored: the key itself is shown once, when it is created. A hash without
salt or stretching is enough here because keys are 256-bit random strings, not passwords: there
is nothing to guess from the hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from clipmaker.jobs.models import DEFAULT_TENANT, UTCDateTime, new_id, utcnow

__all__ = ["DEFAULT_TENANT", "ApiKey", "ApiKeyBase", "ApiKeyCreate", "ApiKeyPublic"]

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class ApiKeyBase(SQLModel):
    tenant: str = Field(
        max_length=64,
        index=True,
        schema_extra={"pattern": TENANT_PATTERN},
        description="Whose jobs, uploads and batches this key makes and sees.",
    )
    admin: bool = Field(default=False, description="Sees and manages every tenant's work.")
    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Requests this key may make per minute; null: no limit."
    )
    max_running: int | None = Field(
        default=None,
        ge=1,
        description="Jobs this key may have queued or running at once; null: no limit.",
    )


class ApiKeyCreate(ApiKeyBase):
    """What ``clipmaker keys create`` asks for."""


class ApiKey(ApiKeyBase, table=True):
    """A key's record. ``key_hash`` finds it from a presented key; ``prefix`` names it to
    people (``keys list``) without revealing it."""

    __tablename__ = "api_keys"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiKeyPublic(ApiKeyBase):
    """A key as listed: never the key or its hash."""

    id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
