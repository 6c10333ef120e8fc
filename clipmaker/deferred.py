"""Jobs put off until later: a source said "rate limited", so asking again at once is futile.

A rate-limited job is not failed. Its worker hands it back (the job row returns to
``queued``, fenced by attempt, without using up a delivery attempt) and schedules it here, in
a Redis sorted set scored by the time it is due. Every media worker's sweeper moves due jobs
onto the queue. The number of deferrals per job is counted, and after
``rate_limit_retries`` of them the job fails with ``source_rate_limited``; the waits double
from ``rate_limit_backoff_s`` up to ``MAX_BACKOFF_S``.

Crash safety follows the queue's at-least-once rule: a job is scheduled before its row goes
back to ``queued``, and taken off the set before it is enqueued; a job lost between the two
steps is a queued job with no queue entry, which the sweeper re-enqueues after its usual wait.
The sweeper leaves jobs that are waiting here alone.
"""

from __future__ import annotations

import time

import redis

__all__ = ["MAX_BACKOFF_S", "DeferredJobs", "backoff_s"]

MAX_BACKOFF_S = 3600.0  # YouTube's own rate limit lasts "up to an hour"
_COUNT_TTL_S = 2 * 24 * 3600

# Take every member due by ARGV[1] (at most ARGV[2]) off the set, atomically: each due job is
# handed to exactly one sweeper.
_POP_DUE = """
local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due > 0 then redis.call('zrem', KEYS[1], unpack(due)) end
return due
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def backoff_s(deferral: int, first_s: float, cap_s: float = MAX_BACKOFF_S) -> float:
    """The wait before try ``deferral + 1`` (``deferral`` counts from 1): doubling, capped."""
    return min(first_s * 2 ** max(deferral - 1, 0), cap_s)


class DeferredJobs:
    def __init__(self, client: redis.Redis, instance: str) -> None:
        self.redis = client
        self.key = f"{instance}:deferred"
        self.count_prefix = f"{instance}:deferrals:"

    def bump(self, job_id: str) -> int:
        """Count one more deferral of ``job_id``; returns how many there have been."""
        key = self.count_prefix + job_id
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, _COUNT_TTL_S)
        count, _ = pipe.execute()
        return int(count)

    def schedule(self, job_id: str, delay_s: float, *, now: float | None = None) -> float:
        """Put ``job_id`` off for ``delay_s``; returns the Unix time it is due."""
        due = (time.time() if now is None else now) + max(delay_s, 0.0)
        self.redis.zadd(self.key, {job_id: due})
        return due

    def cancel(self, job_id: str) -> None:
        self.redis.zrem(self.key, job_id)

    def pop_due(self, *, now: float | None = None, limit: int = 100) -> list[str]:
        """Take the jobs that are due off the set (the caller enqueues them)."""
        at = time.time() if now is None else now
        return [_text(j) for j in self.redis.eval(_POP_DUE, 1, self.key, repr(at), limit)]

    def waiting(self) -> set[str]:
        """Every job still put off."""
        return {_text(j) for j in self.redis.zrange(self.key, 0, -1)}
