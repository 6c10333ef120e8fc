"""Webhooks: once a job ends, POST it to the URL its request gave, signed per Standard Webhooks.

Why this shape:
- **Signed** (standardwebhooks.com): headers ``webhook-id`` (the same for every retry of one
  message, so a receiver can drop duplicates), ``webhook-timestamp`` (Unix seconds of this
  attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``, where
  the key is the base64-decoded part of the ``whsec_`` secret.
- **Never blocks a worker**: sender threads (``WebhookSenders``, started by each media worker)
  claim due deliveries from the job table and send them; the job's own thread only wakes them.
- **Retries survive restarts**: the schedule (``webhook_next_at``, ``webhook_attempts``) is in
  the status of record, claimed with one fenced UPDATE (``JobRepository.claim_webhook``). Any
  finished job with a pending webhook is due, whoever finished it (a worker, a cancel through
  the API, a job given up after its workers died), so no final status is ever missed.
- **Bounded**: exponential backoff from ``webhook_retry_base_s``, each wait at most an hour,
  until ``webhook_retry_for_s`` after the job ended; then the webhook is marked ``failed``.
- **Same address rules as a source**: checked at submit (``check_webhook_url``), and every
  attempt goes through ``send``, which connects only through ``clipmaker.net``'s pinned client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
from datetime import datetime, timedelta

import httpx

from clipmaker.errors import ClipError
from clipmaker.jobs.models import JobPublic, WebhookStatus, as_utc, utcnow, webhook_key
from clipmaker.jobs.repository import JobRepository, WebhookClaim
from clipmaker.net.addresses import AddressPolicy
from clipmaker.net.client import pinned_client
from clipmaker.settings import Settings

log = logging.getLogger("clipmaker.webhooks")

MAX_RETRY_DELAY_S = 3600.0
USER_AGENT = "clipmaker-webhooks/1"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message (Standard Webhooks, v1)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def message_id(job_id: str) -> str:
    """One message per job: retries carry the same id, so receivers can deduplicate."""
    return f"msg_{job_id}"


def payload(job: JobPublic) -> bytes:
    """The body: the job as the API shows it, in the spec's recommended envelope.

    It depends only on the finished job (not on the delivery log), so every retry sends the
    same bytes.
    """
    data = job.model_dump(mode="json", exclude={"webhook"})
    envelope = {
        "type": f"job.{job.status}",
        "timestamp": (job.finished_at or job.updated_at).isoformat(),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def send(settings: Settings, url: str, headers: dict[str, str], body: bytes) -> int:
    """POST once and return the receiver's status code (redirects are not followed).

    The one place that opens a webhook connection: it goes through the pinned client, so the
    receiver's address is resolved once, checked against the same rules as a source
    (``AddressPolicy``) and connected to exactly; a forbidden one raises ``SourceForbidden``.
    """
    client = pinned_client(
        AddressPolicy.from_settings(settings),
        timeout=httpx.Timeout(settings.webhook_timeout_s),
        follow_redirects=False,
    )
    with client:
        return client.post(url, content=body, headers=headers).status_code


def check_webhook_url(settings: Settings, url: str) -> None:
    """Submit-time check of a webhook URL, by the rules of a source URL (no DNS: a name is
    checked on the address actually connected to, at each attempt)."""
    try:
        AddressPolicy.from_settings(settings).check_url(url)
    except ClipError as exc:
        message = exc.message.replace("the source ", "the webhook ")
        raise ClipError(exc.code, f"webhook.url: {message}") from None


def retry_at(settings: Settings, claim: WebhookClaim, now: datetime) -> datetime | None:
    """When to try again after a failed attempt, or ``None`` once the window is spent."""
    delay = min(settings.webhook_retry_base_s * 2 ** (claim.attempt - 1), MAX_RETRY_DELAY_S)
    when = now + timedelta(seconds=delay)
    give_up_at = as_utc(claim.finished_at) + timedelta(seconds=settings.webhook_retry_for_s)
    return when if when <= give_up_at else None


def deliver_one(settings: Settings, jobs: JobRepository) -> bool:
    """Claim one due webhook and make one attempt; ``False`` when none was due."""
    claim = jobs.claim_webhook(lease_s=settings.webhook_timeout_s + 30)
    if claim is None:
        return False
    job = jobs.get(claim.job_id)
    if job is None:  # deleted meanwhile: nothing to say
        return True
    body = payload(JobPublic.from_job(job))
    now = utcnow()
    status_code: int | None = None
    error: str | None = None
    try:
        status_code = send(
            settings,
            claim.url,
            headers(claim.secret, message_id(claim.job_id), int(now.timestamp()), body),
            body,
        )
    except Exception as exc:  # refused address, DNS, timeout, reset: all worth a retry
        error = f"{type(exc).__name__}: {exc}"[:512]
    outcome: WebhookStatus | None = None
    next_at: datetime | None = None
    if status_code is not None and 200 <= status_code < 300:
        outcome = WebhookStatus.delivered
    else:
        next_at = retry_at(settings, claim, utcnow())
        if next_at is None:
            outcome = WebhookStatus.failed
    jobs.record_webhook(
        claim, at=now, status_code=status_code, error=error, outcome=outcome, retry_at=next_at
    )
    log.info(
        "job %s: webhook attempt %d -> %s%s",
        claim.job_id,
        claim.attempt,
        status_code if status_code is not None else error,
        f" ({outcome})" if outcome else "",
    )
    return True


class WebhookSenders:
    """A few daemon threads that deliver due webhooks, woken early when a job ends here."""

    def __init__(self, settings: Settings, jobs: JobRepository, *, threads: int = 2) -> None:
        self.settings = settings
        self.jobs = jobs
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, daemon=True, name=f"webhooks-{n}")
            for n in range(threads)
        ]

    def start(self) -> WebhookSenders:
        for thread in self._threads:
            thread.start()
        return self

    def wake(self) -> None:
        """A job just ended: look for due webhooks now rather than at the next poll."""
        with self._wake:
            self._wake.notify_all()

    def stop(self) -> None:
        self._stop.set()
        self.wake()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if deliver_one(self.settings, self.jobs):
                    continue  # more may be due
            except Exception:  # the database blinked: try again after the poll interval
                log.warning("webhook delivery loop failed", exc_info=True)
            with self._wake:
                self._wake.wait(self.settings.webhook_poll_s)

