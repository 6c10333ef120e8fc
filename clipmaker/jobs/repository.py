"""The only code that writes the job table: the status of record, fenced against stale workers.

The queue delivers a job at least once, so two workers can hold the same job (a slow worker
whose lease ran out, and the one that took over). Every write a worker makes is therefore one
conditional UPDATE fenced by ``(id, attempts, status='running')``: the worker that lost its
lease gets ``False`` back and stops, and a redelivered job never yields a second result or a
lost update. Nothing here reads a row and writes it back (no read-modify-write), so these
methods are safe from any number of threads and processes, on SQLite and on Postgres.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from clipmaker.errors import (
    INVALID_REQUEST,
    JOB_NOT_CANCELLABLE,
    JOB_NOT_FOUND,
    TOO_MANY_ATTEMPTS,
    Conflict,
    NotFound,
)
from clipmaker.jobs.models import (
    DEFAULT_TENANT,
    Batch,
    ClipRequest,
    Job,
    JobStage,
    JobStatus,
    MediaReport,
    StoredResult,
    Timings,
    Upload,
    WebhookDelivery,
    WebhookStatus,
    utcnow,
)

# Plain strings for SQL: the column is text, whatever the driver thinks of enums.
_QUEUED = JobStatus.queued.value
_RUNNING = JobStatus.running.value
_SUCCEEDED = JobStatus.succeeded.value
_FAILED = JobStatus.failed.value
_CANCELLED = JobStatus.cancelled.value
_FINISHED = (_SUCCEEDED, _FAILED, _CANCELLED)
_WEBHOOK_PENDING = WebhookStatus.pending.value


class ItemError(Protocol):
    """A batch item rejected before it became a job (a ClipError or an ErrorInfo)."""

    code: str
    message: str


@dataclass(frozen=True)
class Claim:
    """What a worker gets when it wins a job: the attempt number fences all its writes."""

    job_id: str
    attempt: int
    request: ClipRequest
    created_at: datetime


@dataclass(frozen=True)
class WebhookClaim:
    """A webhook delivery this sender won; ``attempt`` fences the outcome it records."""

    job_id: str
    attempt: int
    url: str
    secret: str
    finished_at: datetime


def _webhook_columns(request: ClipRequest, now: datetime) -> dict[str, Any]:
    """The webhook of a request as job columns (its secret apart from the echoed request)."""
    hook = request.webhook
    if hook is None:
        return {}
    return {
        "webhook_url": str(hook.url),
        "webhook_secret": hook.secret.get_secret_value(),
        "webhook_status": _WEBHOOK_PENDING,
        "webhook_attempts": 0,
        # Due at once; only a finished job is ever claimed for delivery (claim_webhook).
        "webhook_next_at": now,
    }


Clock = Callable[[], datetime]


class JobRepository:
    """Reads and fenced writes of jobs, batches and uploads on one SQLAlchemy engine.

    Every time it writes (creation, claims, heartbeats, leases, sweeps) comes from ``clock``,
    so leases are judged on one clock and tests can move it instead of sleeping.
    """

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def _session(self) -> Session:
        # Objects stay readable after commit: callers get plain detached records.
        return Session(self.engine, expire_on_commit=False)

    # --- submitting -------------------------------------------------------------------------

    def create(
        self,
        request: ClipRequest,
        *,
        tenant: str = DEFAULT_TENANT,
        api_key_id: str | None = None,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a queued job; with a key the tenant already used, return that job and
        ``False`` (idempotency keys are per tenant)."""
        if idempotency_key is not None:
            existing = self.by_idempotency_key(tenant, idempotency_key)
            if existing is not None:
                return existing, False
        now = self.clock()
        job = Job(
            request=request.stored(),
            tenant=tenant,
            api_key_id=api_key_id,
            idempotency_key=idempotency_key,
            batch_id=batch_id,
            status=_QUEUED,
            created_at=now,
            updated_at=now,
            **_webhook_columns(request, now),
        )
        try:
            with self._session() as session, session.begin():
                session.add(job)
        except IntegrityError:
            # Lost a race with another create for the same key: the unique constraint decided.
            if idempotency_key is None:
                raise
            existing = self.by_idempotency_key(tenant, idempotency_key)
            if existing is None:
                raise
            return existing, False
        return job, True

    def by_idempotency_key(self, tenant: str, key: str) -> Job | None:
        with self._session() as session:
            return session.exec(
                select(Job).where(Job.tenant == tenant, Job.idempotency_key == key)
            ).first()

    def create_batch(
        self,
        requests: Sequence[ClipRequest | ItemError],
        *,
        tenant: str = DEFAULT_TENANT,
        api_key_id: str | None = None,
    ) -> tuple[Batch, builtins.list[Job]]:
        """One batch and its jobs in one transaction: all of it exists, or none.

        Items may also be errors (anything with ``code`` and ``message``) for entries the
        caller rejected; they are kept in ``Batch.items`` in order, and get no job.
        """
        now = self.clock()
        batch = Batch(size=len(requests), tenant=tenant, created_at=now)
        jobs: builtins.list[Job] = []
        items: builtins.list[dict[str, Any]] = []
        for item in requests:
            if isinstance(item, ClipRequest):
                job = Job(
                    request=item.stored(),
                    tenant=tenant,
                    api_key_id=api_key_id,
                    batch_id=batch.id,
                    status=_QUEUED,
                    created_at=now,
                    updated_at=now,
                    **_webhook_columns(item, now),
                )
                jobs.append(job)
                items.append({"job_id": job.id})
            else:
                items.append({"error": {"code": item.code, "message": item.message}})
        batch.items = items
        with self._session() as session, session.begin():
            session.add(batch)
            session.add_all(jobs)
        return batch, jobs

    def create_upload(
        self,
        *,
        upload_id: str,
        filename: str,
        key: str,
        size: int,
        duration: float,
        tenant: str = DEFAULT_TENANT,
    ) -> Upload:
        upload = Upload(
            id=upload_id,
            filename=filename,
            key=key,
            bytes=size,
            duration=duration,
            tenant=tenant,
            created_at=self.clock(),
        )
        with self._session() as session, session.begin():
            session.add(upload)
        return upload

    # --- reading ----------------------------------------------------------------------------

    def get(self, job_id: str, tenant: str | None = None) -> Job | None:
        """The job; with ``tenant``, only if it is that tenant's (else ``None``, exactly as an
        unknown id, so ids of other tenants cannot be probed)."""
        with self._session() as session:
            job = session.get(Job, job_id)
        return job if job is not None and _visible(job.tenant, tenant) else None

    def get_batch(
        self, batch_id: str, tenant: str | None = None
    ) -> tuple[Batch, builtins.list[Job]] | None:
        """The batch and its jobs, in the order they were submitted."""
        with self._session() as session:
            batch = session.get(Batch, batch_id)
            if batch is None or not _visible(batch.tenant, tenant):
                return None
            jobs = builtins.list(
                session.exec(
                    select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)
                )
            )
        items = batch.items or []
        order = {item["job_id"]: index for index, item in enumerate(items) if "job_id" in item}
        jobs.sort(key=lambda job: order.get(job.id, len(order)))
        return batch, jobs

    def get_upload(self, upload_id: str, tenant: str | None = None) -> Upload | None:
        with self._session() as session:
            upload = session.get(Upload, upload_id)
        return upload if upload is not None and _visible(upload.tenant, tenant) else None

    def list(
        self,
        *,
        status: JobStatus | None = None,
        limit: int = 50,
        offset: int = 0,
        tenant: str | None = None,
    ) -> tuple[builtins.list[Job], int]:
        """A page of jobs, newest first, and how many there are in all (of one tenant, or of
        every tenant when ``tenant`` is ``None``)."""
        query = select(Job)
        count = select(func.count()).select_from(Job)
        if tenant is not None:
            query = query.where(Job.tenant == tenant)
            count = count.where(Job.tenant == tenant)
        if status is not None:
            query = query.where(Job.status == JobStatus(status).value)
            count = count.where(Job.status == JobStatus(status).value)
        # id breaks ties so pages never overlap or skip when timestamps are equal.
        query = query.order_by(Job.created_at.desc(), Job.id).offset(offset).limit(limit)
        with self._session() as session:
            jobs = builtins.list(session.exec(query))
            total = session.exec(count).one()
        return jobs, int(total)

    def deliveries(self, job_ids: Sequence[str]) -> dict[str, builtins.list[WebhookDelivery]]:
        """Webhook delivery attempts of these jobs, oldest first (one query for all)."""
        if not job_ids:
            return {}
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.job_id.in_(builtins.list(job_ids)))
            .order_by(WebhookDelivery.at, WebhookDelivery.id)
        )
        found: dict[str, builtins.list[WebhookDelivery]] = {}
        with self._session() as session:
            for delivery in session.exec(query):
                found.setdefault(delivery.job_id, []).append(delivery)
        return found

    def unfinished(self, api_key_id: str) -> int:
        """Jobs of one key that are queued or running (its running-job cap counts these)."""
        stmt = (
            select(func.count())
            .select_from(Job)
            .where(Job.api_key_id == api_key_id, Job.status.in_([_QUEUED, _RUNNING]))
        )
        with self._session() as session:
            return int(session.exec(stmt).one())

    def check(self) -> None:
        """Readiness: raises when the database does not answer."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # --- delivery and fencing ---------------------------------------------------------------

    def claim(
        self, job_id: str, *, worker: str, lease_s: float, max_attempts: int
    ) -> Claim | None:
        """Take the job for a new attempt, or ``None`` when it is not ours to run.

        Claimable: queued, or running with a heartbeat older than ``lease_s`` (its worker
        died). A job out of attempts is failed here, since its workers keep dying on it.
        """
        now = self.clock()
        claimable = _claimable(now, lease_s)
        take = (
            update(Job)
            .where(Job.id == job_id, Job.attempts - Job.requeues < max_attempts, claimable)
            .values(
                status=_RUNNING,
                attempts=Job.attempts + 1,
                worker=worker,
                stage=None,
                started_at=func.coalesce(Job.started_at, literal(now, Job.started_at.type)),
                heartbeat_at=now,
                updated_at=now,
            )
            .returning(Job.attempts, Job.request, Job.created_at)
        )
        # The message is built in SQL from the row, so failing stays one conditional UPDATE.
        message = (
            literal("the job was delivered ", String)
            + cast(Job.attempts, String)
            + literal(" times and each time its worker died before finishing", String)
        )
        give_up = (
            update(Job)
            .where(Job.id == job_id, Job.attempts - Job.requeues >= max_attempts, claimable)
            .values(
                status=_FAILED,
                stage=None,
                error_code=TOO_MANY_ATTEMPTS,
                error_message=message,
                finished_at=now,
                updated_at=now,
            )
        )
        with self.engine.begin() as conn:
            row = conn.execute(take).first()
            if row is None:
                conn.execute(give_up)
                return None
        attempt, request, created_at = row
        try:
            clip_request = ClipRequest.model_validate(request)
        except ValidationError as exc:  # a row written by an incompatible version
            self.fail(job_id, attempt, INVALID_REQUEST, f"stored request is not valid: {exc}")
            return None
        return Claim(job_id=job_id, attempt=attempt, request=clip_request, created_at=created_at)

    def heartbeat(self, job_id: str, attempt: int) -> bool:
        """Renew the lease; ``False`` means stop: cancelled, finished, or taken over."""
        return self._fenced(job_id, attempt, heartbeat_at=self.clock())

    def set_stage(self, job_id: str, attempt: int, stage: JobStage, progress: float) -> bool:
        return self._fenced(
            job_id,
            attempt,
            stage=JobStage(stage).value,
            progress=min(max(float(progress), 0.0), 1.0),
            heartbeat_at=self.clock(),
        )

    def succeed(
        self,
        job_id: str,
        attempt: int,
        result: StoredResult,
        timings: Timings,
        media: MediaReport | None = None,
    ) -> bool:
        now = self.clock()
        return self._fenced(
            job_id,
            attempt,
            status=_SUCCEEDED,
            stage=None,
            progress=1.0,
            result=result.model_dump(mode="json"),
            timings=timings.model_dump(mode="json"),
            media=media.model_dump(mode="json") if media else None,
            finished_at=now,
            heartbeat_at=now,
        )

    def fail(
        self,
        job_id: str,
        attempt: int,
        code: str,
        message: str,
        timings: Timings | None = None,
    ) -> bool:
        now = self.clock()
        values: dict[str, Any] = {
            "status": _FAILED,
            "stage": None,
            "error_code": code,
            "error_message": message,
            "finished_at": now,
            "heartbeat_at": now,
        }
        if timings is not None:
            values["timings"] = timings.model_dump(mode="json")
        return self._fenced(job_id, attempt, **values)

    def release(self, job_id: str, attempt: int) -> bool:
        """Hand a running attempt back to the queue: something outside the job failed under
        it (Redis went away) or its source asked us to come back later (a rate limit). The
        next claim is a new attempt (fencing stays strict), and this one does not count
        towards ``max_attempts``, which bounds deliveries whose worker died. Fenced like every
        write; ``False``: the job was cancelled or taken over meanwhile."""
        return self._fenced(
            job_id,
            attempt,
            status=_QUEUED,
            stage=None,
            worker=None,
            heartbeat_at=None,
            requeues=Job.requeues + 1,
        )

    def _fenced(self, job_id: str, attempt: int, **values: Any) -> bool:
        """One conditional UPDATE that only the current attempt of a running job can make."""
        values.setdefault("updated_at", self.clock())
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.attempts == attempt, Job.status == _RUNNING)
            .values(**values)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def cancel(self, job_id: str, tenant: str | None = None) -> Job:
        """Cancel a queued or running job (its worker sees it on its next fenced write).

        Cancelling a cancelled job returns it again, so a retried DELETE succeeds. With
        ``tenant``, another tenant's job is not found (and not touched).
        """
        now = self.clock()
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status.in_([_QUEUED, _RUNNING]))
            .values(status=_CANCELLED, stage=None, finished_at=now, updated_at=now)
        )
        if tenant is not None:
            stmt = stmt.where(Job.tenant == tenant)
        with self.engine.begin() as conn:
            changed = conn.execute(stmt).rowcount
        job = self.get(job_id, tenant)
        if job is None:
            raise NotFound(JOB_NOT_FOUND, f"there is no job {job_id}")
        if not changed and job.status != _CANCELLED:
            raise Conflict(
                JOB_NOT_CANCELLABLE, f"job {job_id} is already {job.status} and cannot be cancelled"
            )
        return job

    # --- webhooks ---------------------------------------------------------------------------

    def claim_webhook(self, *, lease_s: float) -> WebhookClaim | None:
        """Take the next due webhook of a finished job, or ``None`` when none is due.

        The claim pushes ``webhook_next_at`` one lease ahead and bumps ``webhook_attempts`` in
        one conditional UPDATE, so concurrent senders never send the same attempt twice, and
        a sender that dies mid-attempt only delays the job's webhook by one lease. The schedule
        lives in the status of record, so retries survive a restart of anything.
        """
        now = self.clock()
        due = and_(
            Job.webhook_status == _WEBHOOK_PENDING,
            Job.status.in_(_FINISHED),
            Job.webhook_next_at <= now,
        )
        oldest = (
            select(Job.id).where(due).order_by(Job.webhook_next_at, Job.id).limit(1)
        ).scalar_subquery()
        stmt = (
            update(Job)
            .where(Job.id == oldest, due)  # re-checked on the row: a racing sender wins once
            .values(
                webhook_next_at=now + timedelta(seconds=lease_s),
                webhook_attempts=Job.webhook_attempts + 1,
            )
            .returning(
                Job.id, Job.webhook_attempts, Job.webhook_url, Job.webhook_secret, Job.finished_at
            )
        )
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        job_id, attempt, url, secret, finished_at = row
        return WebhookClaim(
            job_id=job_id,
            attempt=attempt,
            url=url,
            secret=secret,
            finished_at=finished_at or now,
        )

    def record_webhook(
        self,
        claim: WebhookClaim,
        *,
        at: datetime,
        status_code: int | None,
        error: str | None,
        outcome: WebhookStatus | None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Log one attempt and schedule the next (``retry_at``) or end delivery (``outcome``).

        Fenced by the attempt number: a sender whose lease ran out (another one took the
        webhook over) records nothing. Ending delivery erases the secret.
        """
        values: dict[str, Any] = {"webhook_next_at": retry_at}
        if outcome is not None:
            values = {
                "webhook_status": WebhookStatus(outcome).value,
                "webhook_next_at": None,
                "webhook_secret": None,
            }
        stmt = (
            update(Job)
            .where(
                Job.id == claim.job_id,
                Job.webhook_attempts == claim.attempt,
                Job.webhook_status == _WEBHOOK_PENDING,
            )
            .values(**values)
        )
        with self.engine.begin() as conn:
            if conn.execute(stmt).rowcount != 1:
                return False
            conn.execute(
                insert(WebhookDelivery).values(
                    job_id=claim.job_id,
                    attempt=claim.attempt,
                    at=at,
                    status_code=status_code,
                    error=error[:512] if error else None,
                )
            )
        return True

    def stale(self, *, older_than_s: float, limit: int = 100) -> builtins.list[str]:
        """Queued or running jobs with no sign of life for ``older_than_s``, for re-enqueueing.

        Every write to a live job (including each heartbeat) moves ``updated_at``, so one
        column says "no sign of life". The jobs returned are marked as swept (``updated_at``
        set to now) in the same statement, so several sweepers never re-enqueue one job twice
        and a job still waiting in a long queue is re-enqueued at most once per period.
        """
        now = self.clock()
        cutoff = now - timedelta(seconds=older_than_s)
        unseen = and_(Job.status.in_([_QUEUED, _RUNNING]), Job.updated_at < cutoff)
        oldest = (
            select(Job.id).where(unseen).order_by(Job.updated_at, Job.id).limit(limit)
        ).scalar_subquery()
        stmt = (
            update(Job)
            .where(Job.id.in_(oldest), unseen)  # re-checked per row: a racing sweeper wins once
            .values(updated_at=now)
            .returning(Job.id)
        )
        with self.engine.begin() as conn:
            return [row[0] for row in conn.execute(stmt)]


def _visible(owner: str, tenant: str | None) -> bool:
    return tenant is None or owner == tenant


def _claimable(now: datetime, lease_s: float) -> ColumnElement[bool]:
    """Queued, or running under a lease that ran out (its worker died or hung)."""
    expired = now - timedelta(seconds=lease_s)
    return or_(
        Job.status == _QUEUED,
        and_(
            Job.status == _RUNNING,
            or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < expired),
        ),
    )
