"""The job repository on SQLite and on the real Postgres server: idempotency, fencing, leases."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from clipmaker.errors import JOB_NOT_CANCELLABLE, JOB_NOT_FOUND, Conflict, NotFound
from clipmaker.jobs.db import make_engine, migrate
from clipmaker.jobs.models import (
    ClipRequest,
    ErrorInfo,
    JobStage,
    JobStatus,
    StoredResult,
    Timings,
    WebhookStatus,
)
from clipmaker.jobs.repository import Claim, JobRepository

T = TypeVar("T")
LEASE_S = 30.0


class FakeClock:
    """The repository's clock, moved by the tests: a lease runs out when a test says so, not
    when a slow machine happens to take long enough. Each reading ticks a millisecond, so
    rows written one after another keep their order, as on a real clock."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += timedelta(milliseconds=1)
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def repo(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[JobRepository]:
    """A migrated, empty database: a SQLite file, or a fresh schema on the Postgres server."""
    schema: str | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        base: str = request.getfixturevalue("postgres_url")
        schema = f"t_{secrets.token_hex(4)}"
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?options=-csearch_path%3D{schema}"
    migrate(url)
    engine = make_engine(url)
    yield JobRepository(engine, clock=clock)
    engine.dispose()
    if schema is not None:
        with psycopg.connect(base.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def clip(start: float = 1.0, end: float = 2.0) -> ClipRequest:
    return ClipRequest.model_validate(
        {"source": {"url": "https://example.com/v.mp4"}, "start": start, "end": end}
    )


def result() -> StoredResult:
    return StoredResult(video_key="jobs/x/clip.mp4", video_bytes=123, video_duration=1.0)


def in_threads(count: int, fn: Callable[[int], T]) -> list[T]:
    """Run ``fn`` in ``count`` threads released at the same moment; re-raise any failure."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = fn(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]
    return results


# --- submitting and reading ---------------------------------------------------------------------


def test_create_and_get(repo: JobRepository) -> None:
    job, created = repo.create(clip(1, 3.5))
    assert created
    stored = repo.get(job.id)
    assert stored is not None
    assert stored.status == JobStatus.queued
    assert stored.attempts == 0 and stored.progress == 0.0
    assert stored.clip_request == clip(1, 3.5)
    # Timestamps come back aware and in UTC, whatever the database keeps.
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - stored.created_at).total_seconds()) < 60
    assert stored.created_at == job.created_at
    assert repo.get("0" * 32) is None


def test_same_idempotency_key_returns_the_same_job(repo: JobRepository) -> None:
    first, created = repo.create(clip(), idempotency_key="key-1")
    again, created_again = repo.create(clip(5, 6), idempotency_key="key-1")
    other, created_other = repo.create(clip(), idempotency_key="key-2")
    assert created and not created_again and created_other
    assert again.id == first.id and other.id != first.id
    assert again.clip_request == clip()  # the original request, not the second one
    assert repo.list()[1] == 2


def test_concurrent_creates_with_one_key_make_one_job(repo: JobRepository) -> None:
    outcomes = in_threads(8, lambda _: repo.create(clip(), idempotency_key="same"))
    assert len({job.id for job, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1
    assert repo.list()[1] == 1


def test_list_is_newest_first_paginated_and_filtered(repo: JobRepository) -> None:
    ids = [repo.create(clip(i, i + 1))[0].id for i in range(5)]
    newest_first = list(reversed(ids))

    page, total = repo.list(limit=2)
    assert total == 5 and [job.id for job in page] == newest_first[:2]
    page, _ = repo.list(limit=2, offset=2)
    assert [job.id for job in page] == newest_first[2:4]
    page, _ = repo.list(limit=2, offset=4)
    assert [job.id for job in page] == newest_first[4:]

    repo.cancel(ids[0])
    assert repo.claim(ids[1], worker="w", lease_s=LEASE_S, max_attempts=3) is not None
    queued, queued_total = repo.list(status=JobStatus.queued)
    assert queued_total == 3 and [job.id for job in queued] == newest_first[:3]
    assert [job.id for job in repo.list(status=JobStatus.running)[0]] == [ids[1]]
    assert repo.list(status=JobStatus.cancelled)[1] == 1
    assert repo.list(status=JobStatus.succeeded) == ([], 0)


def test_batch_in_one_transaction_keeps_order(repo: JobRepository) -> None:
    rejected = ErrorInfo(code="upload_not_found", message="no upload 123")
    batch, jobs = repo.create_batch([clip(0, 1), rejected, clip(2, 3)])
    assert batch.size == 3 and len(jobs) == 2
    assert all(job.batch_id == batch.id for job in jobs)

    found = repo.get_batch(batch.id)
    assert found is not None
    stored, stored_jobs = found
    assert [job.id for job in stored_jobs] == [job.id for job in jobs]
    assert [job.clip_request.start for job in stored_jobs] == [0, 2]
    assert stored.items == [
        {"job_id": jobs[0].id},
        {"error": {"code": "upload_not_found", "message": "no upload 123"}},
        {"job_id": jobs[1].id},
    ]
    assert repo.get_batch("f" * 32) is None
    assert repo.list()[1] == 2


def test_create_job_in_a_batch(repo: JobRepository) -> None:
    batch, _ = repo.create_batch([])
    job, _ = repo.create(clip(), batch_id=batch.id)
    found = repo.get_batch(batch.id)
    assert found is not None and [j.id for j in found[1]] == [job.id]


def test_uploads(repo: JobRepository) -> None:
    upload_id = secrets.token_hex(16)
    upload = repo.create_upload(
        upload_id=upload_id, filename="talk.mp4", key="uploads/x", size=1024, duration=12.5
    )
    assert upload.id == upload_id
    stored = repo.get_upload(upload_id)
    assert stored is not None
    assert (stored.filename, stored.key, stored.bytes, stored.duration) == (
        "talk.mp4",
        "uploads/x",
        1024,
        12.5,
    )
    assert repo.get_upload("0" * 32) is None


def test_check(repo: JobRepository, tmp_path: Path) -> None:
    repo.check()  # the database answers
    # A database that does not answer: readiness must say so, not pass.
    (tmp_path / "a-directory").mkdir()
    for url in (
        f"sqlite:///{tmp_path / 'a-directory'}",  # not a database file
        "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2",
    ):
        engine = make_engine(url)
        with pytest.raises(Exception, match="(?i)unable to open|connect|refused"):
            JobRepository(engine).check()
        engine.dispose()


# --- claiming and fencing -------------------------------------------------------------------------


def test_claim_runs_the_job_once(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert isinstance(claim, Claim)
    assert (claim.job_id, claim.attempt, claim.request) == (job.id, 1, clip())
    assert claim.created_at == job.created_at
    running = repo.get(job.id)
    assert running is not None
    assert (running.status, running.worker, running.attempts) == ("running", "w1", 1)
    assert running.started_at is not None and running.heartbeat_at is not None

    # Held by a live worker: nobody else gets it.
    assert repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=3) is None
    assert repo.claim("0" * 32, worker="w2", lease_s=LEASE_S, max_attempts=3) is None


def test_racing_claims_have_one_winner(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claims = in_threads(
        6, lambda i: repo.claim(job.id, worker=f"w{i}", lease_s=30, max_attempts=3)
    )
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1 and winners[0].attempt == 1


def test_heartbeat_keeps_the_lease(repo: JobRepository, clock: FakeClock) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert claim is not None
    for _ in range(4):  # 4 x 0.6 leases: without the heartbeats the lease would run out
        clock.advance(LEASE_S * 0.6)
        assert repo.heartbeat(job.id, claim.attempt)
        assert repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=3) is None
    clock.advance(LEASE_S * 1.01)  # the worker stops beating: the lease runs out
    taken = repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=3)
    assert taken is not None and taken.attempt == 2


def test_expired_lease_is_taken_over_and_fences_out_the_old_worker(
    repo: JobRepository, clock: FakeClock
) -> None:
    job, _ = repo.create(clip())
    first = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert first is not None
    started_at = repo.get(job.id).started_at  # type: ignore[union-attr]
    assert repo.set_stage(job.id, first.attempt, JobStage.fetching, 0.2)

    clock.advance(LEASE_S * 0.99)  # quiet, but still inside its lease: nobody takes it
    assert repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=3) is None
    clock.advance(LEASE_S * 0.02)  # w1 "died": no heartbeat for longer than the lease
    second = repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=3)
    assert second is not None and second.attempt == 2

    # w1 wakes up: every write it tries is refused.
    assert not repo.heartbeat(job.id, first.attempt)
    assert not repo.set_stage(job.id, first.attempt, JobStage.cutting, 0.5)
    assert not repo.succeed(job.id, first.attempt, result(), Timings(total_s=1))
    assert not repo.fail(job.id, first.attempt, "internal_error", "boom")

    assert repo.heartbeat(job.id, second.attempt)
    assert repo.set_stage(job.id, second.attempt, JobStage.transcribing, 0.7)
    taken = repo.get(job.id)
    assert taken is not None
    assert (taken.worker, taken.attempts, taken.stage, taken.progress) == (
        "w2",
        2,
        "transcribing",
        0.7,
    )
    assert taken.started_at == started_at  # the job started with its first attempt
    assert repo.succeed(job.id, second.attempt, result(), Timings(total_s=2))
    done = repo.get(job.id)
    assert done is not None and done.status == "succeeded" and done.timings["total_s"] == 2


def test_out_of_attempts_fails_the_job(repo: JobRepository, clock: FakeClock) -> None:
    job, _ = repo.create(clip())
    for attempt in (1, 2):
        claim = repo.claim(job.id, worker=f"w{attempt}", lease_s=LEASE_S, max_attempts=2)
        assert claim is not None and claim.attempt == attempt
        clock.advance(LEASE_S + 0.1)  # each worker dies

    assert repo.claim(job.id, worker="w3", lease_s=LEASE_S, max_attempts=2) is None
    failed = repo.get(job.id)
    assert failed is not None
    assert failed.status == "failed" and failed.error_code == "too_many_attempts"
    assert "delivered 2 times" in (failed.error_message or "")
    assert failed.finished_at is not None and failed.attempts == 2
    # Finished: no more claims, and the dead workers cannot write.
    assert repo.claim(job.id, worker="w4", lease_s=LEASE_S, max_attempts=5) is None
    assert not repo.succeed(job.id, 2, result(), Timings())


def test_out_of_attempts_waits_for_a_live_worker(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=30, max_attempts=1)
    assert claim is not None
    # A redelivery while the last attempt is alive must not fail the job under its worker.
    assert repo.claim(job.id, worker="w2", lease_s=30, max_attempts=1) is None
    assert repo.get(job.id).status == "running"  # type: ignore[union-attr]
    assert repo.succeed(job.id, claim.attempt, result(), Timings())


def test_succeed_writes_the_result_once(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert claim is not None
    assert repo.succeed(job.id, claim.attempt, result(), Timings(fetch_s=0.5, total_s=1.5))
    other = StoredResult(video_key="other.mp4", video_bytes=1, video_duration=1)
    assert not repo.succeed(job.id, claim.attempt, other, Timings())
    assert not repo.fail(job.id, claim.attempt, "internal_error", "late")
    assert not repo.heartbeat(job.id, claim.attempt)
    assert repo.claim(job.id, worker="w2", lease_s=0, max_attempts=3) is None

    done = repo.get(job.id)
    assert done is not None
    assert done.status == "succeeded" and done.progress == 1.0 and done.stage is None
    assert StoredResult.model_validate(done.result) == result()
    assert Timings.model_validate(done.timings) == Timings(fetch_s=0.5, total_s=1.5)
    assert done.finished_at is not None and done.error_code is None
    assert done.updated_at >= done.created_at


def test_fail_records_code_message_and_timings(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert claim is not None
    timings = Timings(fetch_s=1)
    assert repo.fail(job.id, claim.attempt, "range_out_of_bounds", "ends at 10 s", timings)
    failed = repo.get(job.id)
    assert failed is not None
    assert (failed.status, failed.error_code, failed.error_message) == (
        "failed",
        "range_out_of_bounds",
        "ends at 10 s",
    )
    assert failed.timings == Timings(fetch_s=1).model_dump(mode="json")
    assert not repo.fail(job.id, claim.attempt, "internal_error", "again")


# --- cancelling -----------------------------------------------------------------------------------


def test_cancel_queued_job_then_claim_gets_nothing(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    cancelled = repo.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    assert repo.claim(job.id, worker="w1", lease_s=0, max_attempts=3) is None
    assert repo.get(job.id).status == "cancelled"  # type: ignore[union-attr]
    assert repo.cancel(job.id).status == "cancelled"  # a retried DELETE is fine


def test_cancel_running_job_fences_out_its_worker(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert claim is not None
    repo.cancel(job.id)
    assert not repo.heartbeat(job.id, claim.attempt)
    assert not repo.set_stage(job.id, claim.attempt, JobStage.storing, 0.9)
    assert not repo.succeed(job.id, claim.attempt, result(), Timings())
    assert repo.get(job.id).status == "cancelled"  # type: ignore[union-attr]


def test_cancel_finished_or_unknown_job(repo: JobRepository) -> None:
    job, _ = repo.create(clip())
    claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    assert claim is not None and repo.succeed(job.id, claim.attempt, result(), Timings())
    with pytest.raises(Conflict) as conflict:
        repo.cancel(job.id)
    assert conflict.value.code == JOB_NOT_CANCELLABLE and "succeeded" in conflict.value.message
    with pytest.raises(NotFound) as missing:
        repo.cancel("0" * 32)
    assert missing.value.code == JOB_NOT_FOUND


# --- the sweeper's view ---------------------------------------------------------------------------


def test_stale_finds_jobs_without_signs_of_life_once(
    repo: JobRepository, clock: FakeClock
) -> None:
    waiting, _ = repo.create(clip())
    alive, _ = repo.create(clip())
    dead, _ = repo.create(clip())
    finished, _ = repo.create(clip())
    alive_claim = repo.claim(alive.id, worker="w1", lease_s=LEASE_S, max_attempts=3)
    dead_claim = repo.claim(dead.id, worker="w2", lease_s=LEASE_S, max_attempts=3)
    done_claim = repo.claim(finished.id, worker="w3", lease_s=LEASE_S, max_attempts=3)
    assert alive_claim and dead_claim and done_claim
    assert repo.succeed(finished.id, done_claim.attempt, result(), Timings())
    assert repo.stale(older_than_s=LEASE_S) == []

    clock.advance(LEASE_S / 2)
    assert repo.heartbeat(alive.id, alive_claim.attempt)
    assert repo.stale(older_than_s=LEASE_S) == []
    clock.advance(LEASE_S / 2 + 0.1)
    assert repo.heartbeat(alive.id, alive_claim.attempt)
    stale = repo.stale(older_than_s=LEASE_S)
    assert sorted(stale) == sorted([waiting.id, dead.id])
    # Swept: a second sweeper (or the next sweep) does not re-enqueue them again at once.
    assert repo.stale(older_than_s=LEASE_S) == []
    # ...and the dead worker's job can still be taken over by whoever gets the new entry.
    assert repo.claim(dead.id, worker="w4", lease_s=LEASE_S, max_attempts=3) is not None


def test_stale_respects_limit_and_racing_sweepers(repo: JobRepository, clock: FakeClock) -> None:
    for i in range(6):
        repo.create(clip(i, i + 1))
    clock.advance(0.2)
    assert len(repo.stale(older_than_s=0.1, limit=4)) == 4
    clock.advance(0.2)
    swept = in_threads(3, lambda _: repo.stale(older_than_s=0.1, limit=100))
    ids = [job_id for batch in swept for job_id in batch]
    assert len(ids) == 6 and len(set(ids)) == 6  # each job to exactly one sweeper


# --- webhooks ------------------------------------------------------------------------------------

HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def with_webhook(start: float = 1.0) -> ClipRequest:
    body = clip(start, start + 1).model_dump(mode="json")
    body["webhook"] = {"url": "https://receiver.example/hook", "secret": HOOK_SECRET}
    return ClipRequest.model_validate(body)


def test_webhook_secret_is_kept_apart_from_the_request(repo: JobRepository) -> None:
    job, _ = repo.create(with_webhook())
    assert "webhook" not in job.request  # the request is what the API echoes back
    stored = repo.get(job.id)
    assert stored is not None and stored.webhook_url == "https://receiver.example/hook"
    assert stored.webhook_status == "pending"


def test_a_webhook_is_due_only_once_the_job_has_ended(repo: JobRepository) -> None:
    job, _ = repo.create(with_webhook())
    assert repo.claim_webhook(lease_s=30) is None  # queued
    claim = repo.claim(job.id, worker="w1", lease_s=30, max_attempts=3)
    assert claim is not None
    assert repo.claim_webhook(lease_s=30) is None  # running
    repo.fail(job.id, claim.attempt, "not_media", "no")
    hook = repo.claim_webhook(lease_s=30)
    assert hook is not None and hook.job_id == job.id and hook.attempt == 1
    assert hook.secret == HOOK_SECRET and hook.url == "https://receiver.example/hook"
    assert repo.claim_webhook(lease_s=30) is None  # leased to that sender now


def test_racing_senders_send_one_attempt(repo: JobRepository) -> None:
    job, _ = repo.create(with_webhook())
    repo.cancel(job.id)
    won = [c for c in in_threads(6, lambda i: repo.claim_webhook(lease_s=30)) if c is not None]
    assert len(won) == 1


def test_retries_are_scheduled_then_delivery_ends_and_the_secret_goes(
    repo: JobRepository, clock: FakeClock
) -> None:
    job, _ = repo.create(with_webhook())
    repo.cancel(job.id)
    first = repo.claim_webhook(lease_s=30)
    assert first is not None
    now = clock()
    assert repo.record_webhook(
        first, at=now, status_code=500, error=None, outcome=None, retry_at=now
    )
    second = repo.claim_webhook(lease_s=30)  # due again at once
    assert second is not None and second.attempt == 2
    assert not repo.record_webhook(  # the first sender's lease is gone: fenced out
        first, at=now, status_code=204, error=None, outcome=WebhookStatus.delivered
    )
    assert repo.record_webhook(
        second, at=now, status_code=204, error=None, outcome=WebhookStatus.delivered
    )
    assert repo.claim_webhook(lease_s=0) is None  # delivered: never sent again
    stored = repo.get(job.id)
    assert stored is not None
    assert stored.webhook_status == "delivered" and stored.webhook_secret is None
    deliveries = repo.deliveries([job.id])[job.id]
    assert [(d.attempt, d.status_code) for d in deliveries] == [(1, 500), (2, 204)]


def test_a_sender_that_died_is_replaced_after_its_lease(
    repo: JobRepository, clock: FakeClock
) -> None:
    job, _ = repo.create(with_webhook())
    repo.cancel(job.id)
    assert repo.claim_webhook(lease_s=LEASE_S) is not None  # and then nothing recorded
    clock.advance(LEASE_S * 0.99)  # still leased to that sender
    assert repo.claim_webhook(lease_s=LEASE_S) is None
    clock.advance(LEASE_S * 0.02)  # its lease ran out: another sender takes the webhook over
    claim = repo.claim_webhook(lease_s=LEASE_S)
    assert claim is not None and claim.attempt == 2
# --- tenants and hand-backs ----------------------------------------------------------------------


def test_a_released_attempt_goes_back_to_the_queue_without_using_up_attempts(
    repo: JobRepository,
) -> None:
    job, _ = repo.create(clip())
    for attempt in (1, 2, 3):  # Redis failed under each of them: handed back every time
        claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=1)
        assert claim is not None and claim.attempt == attempt
        assert repo.release(job.id, claim.attempt)
        assert not repo.release(job.id, claim.attempt)  # once, and only by the live attempt
        queued = repo.get(job.id)
        assert queued is not None and (queued.status, queued.worker) == ("queued", None)
        assert not repo.heartbeat(job.id, claim.attempt)  # the old attempt is fenced out
    last = repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=1)
    assert last is not None and last.attempt == 4
    assert repo.succeed(job.id, last.attempt, result(), Timings())


def test_tenants_see_only_their_own(repo: JobRepository) -> None:
    mine, _ = repo.create(clip(), tenant="acme", idempotency_key="k")
    theirs, created = repo.create(clip(1, 3), tenant="globex", idempotency_key="k")
    assert created and theirs.id != mine.id  # one key, two tenants, two jobs
    again, created = repo.create(clip(), tenant="acme", idempotency_key="k")
    assert again.id == mine.id and not created
    assert repo.get(mine.id, "globex") is None and repo.get(mine.id, "acme") is not None
    assert repo.get(mine.id) is not None  # no tenant: every tenant (admins, workers)
    jobs, total = repo.list(tenant="globex")
    assert [job.id for job in jobs] == [theirs.id] and total == 1
    with pytest.raises(NotFound):
        repo.cancel(mine.id, "globex")
    assert repo.get(mine.id).status == "queued"  # type: ignore[union-attr]
    batch, _ = repo.create_batch([clip()], tenant="acme")
    assert repo.get_batch(batch.id, "globex") is None
    assert repo.get_batch(batch.id, "acme") is not None
