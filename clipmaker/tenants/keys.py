"""Making, finding and revoking API keys (the only writer of the ``api_keys`` table)."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time

from sqlalchemy import Engine, update
from sqlmodel import Session, select

from clipmaker.errors import INVALID_REQUEST, ClipError, NotFound
from clipmaker.jobs.models import utcnow
from clipmaker.tenants.models import TENANT_PATTERN, ApiKey, ApiKeyCreate, ApiKeyPublic

KEY_PREFIX = "cmk_"


def new_key() -> str:
    """A fresh key: 256 random bits, with a recognisable prefix (for secret scanners)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRepository:
    """API keys on the job database's engine."""

    # How long "are there any keys?" is remembered by one process (auth mode ``auto`` asks it
    # on every request). A key made with the CLI is enforced everywhere within this time.
    _ANY_TTL_S = 2.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._any: tuple[float, bool] | None = None
        self._lock = threading.Lock()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create(self, spec: ApiKeyCreate) -> tuple[ApiKeyPublic, str]:
        """Store a new key's hash; returns its record and the key (shown once, never again)."""
        if not re.match(TENANT_PATTERN, spec.tenant):
            raise ClipError(
                INVALID_REQUEST,
                "a tenant name is 1-64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit",
            )
        for name in ("requests_per_minute", "max_running"):
            value = getattr(spec, name)
            if value is not None and value < 1:
                raise ClipError(INVALID_REQUEST, f"{name} must be at least 1")
        key = new_key()
        row = ApiKey(
            tenant=spec.tenant,
            admin=spec.admin,
            requests_per_minute=spec.requests_per_minute,
            max_running=spec.max_running,
            key_hash=hash_key(key),
            prefix=key[: len(KEY_PREFIX) + 6],
        )
        with self._session() as session, session.begin():
            session.add(row)
        with self._lock:
            self._any = None
        return ApiKeyPublic.model_validate(row, from_attributes=True), key

    def list(self) -> list[ApiKeyPublic]:
        with self._session() as session:
            rows = session.exec(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()
        return [ApiKeyPublic.model_validate(row, from_attributes=True) for row in rows]

    def revoke(self, key_id: str) -> ApiKeyPublic:
        """Revoke a key for good (revoking twice is fine); ``NotFound`` for an unknown id."""
        with self.engine.begin() as conn:
            conn.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        with self._session() as session:
            row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFound("key_not_found", f"no key has the id {key_id!r}")
        return ApiKeyPublic.model_validate(row, from_attributes=True)

    def authenticate(self, key: str) -> ApiKey | None:
        """The live key record for a presented key, or ``None`` (unknown or revoked)."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        digest = hash_key(key)
        with self._session() as session:
            row = session.exec(select(ApiKey).where(ApiKey.key_hash == digest)).first()
        if row is None or row.revoked_at is not None:
            return None
        # The lookup was by an index on the hash; compare again in constant time anyway.
        return row if secrets.compare_digest(row.key_hash, digest) else None

    def any_active(self) -> bool:
        """True once a live key exists (remembered for a moment: asked on every request)."""
        now = time.monotonic()
        with self._lock:
            if self._any is not None and now - self._any[0] < self._ANY_TTL_S:
                return self._any[1]
        with self._session() as session:
            found = session.exec(select(ApiKey.id).where(ApiKey.revoked_at.is_(None))).first()
        with self._lock:
            self._any = (now, found is not None)
        return found is not None
