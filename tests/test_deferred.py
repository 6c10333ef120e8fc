"""Rate-limited jobs put off and brought back: the Redis schedule and the fenced hand-back."""

from __future__ import annotations

import secrets

import redis

from clipmaker.deferred import MAX_BACKOFF_S, DeferredJobs, backoff_s
from clipmaker.jobs.repository import JobRepository
from tests.jobs.test_repository import LEASE_S, clip, clock, repo  # noqa: F401 - fixtures


def test_waits_double_and_stop_at_the_cap() -> None:
    assert [backoff_s(n, 120) for n in (1, 2, 3)] == [120, 240, 480]
    assert backoff_s(20, 120) == MAX_BACKOFF_S


def test_due_jobs_are_handed_out_once_and_on_time(redis_url: str) -> None:
    deferred = DeferredJobs(redis.Redis.from_url(redis_url), f"t{secrets.token_hex(4)}")
    deferred.schedule("early", 10, now=1000.0)
    deferred.schedule("late", 60, now=1000.0)
    assert deferred.waiting() == {"early", "late"}
    assert deferred.pop_due(now=1005.0) == []
    assert deferred.pop_due(now=1010.0) == ["early"]
    assert deferred.pop_due(now=1010.0) == []  # taken once
    assert deferred.waiting() == {"late"}
    assert [deferred.bump("late") for _ in range(3)] == [1, 2, 3]
    deferred.cancel("late")
    assert deferred.waiting() == set()


def test_a_deferred_job_is_queued_again_without_using_up_an_attempt(
    repo: JobRepository,  # noqa: F811
) -> None:
    job, _ = repo.create(clip())
    for deferral in range(1, 4):  # more deferrals than max_attempts allows deliveries
        claim = repo.claim(job.id, worker="w1", lease_s=LEASE_S, max_attempts=2)
        assert claim is not None and claim.attempt == deferral  # a new attempt: fencing stays
        assert repo.release(job.id, claim.attempt)
        queued = repo.get(job.id)
        assert queued is not None and (queued.status, queued.requeues) == ("queued", deferral)
        assert queued.worker is None
    claim = repo.claim(job.id, worker="w2", lease_s=LEASE_S, max_attempts=2)
    assert claim is not None
    assert not repo.release(job.id, claim.attempt + 1)  # fenced: not this attempt's to hand back
    repo.cancel(job.id)
    assert not repo.release(job.id, claim.attempt)  # fenced: cancelled
