"""Per-key request rates and admission locks, kept in Redis so every ingress replica shares
them (a limit held in one replica's memory would multiply by the number of replicas).

The rate is a GCRA (generic cell rate algorithm, a token bucket with one number of state per
key): a key may burst up to its limit, then gets one request per ``60 / limit`` seconds. Unlike
fixed per-minute windows there is no boundary at which a client can double its burst. The
clock is Redis's own (``TIME``), so replicas whose clocks differ still agree.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import redis

PERIOD_MS = 60_000

# KEYS[1]: the key's state (its "theoretical arrival time", ms). ARGV: limit, weight, period.
# Returns {allowed, remaining, ms until the bucket is full again, ms until allowed}.
_GCRA = """
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = math.max(math.floor(period / limit), 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * weight
local allow_at = new_tat - period
if allow_at > now then
  local remaining = math.max(math.floor((period - (tat - now)) / interval), 0)
  return {0, remaining, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(new_tat - now, 1))
local remaining = math.max(math.floor((period - (new_tat - now)) / interval), 0)
return {1, remaining, new_tat - now, 0}
"""

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@dataclass(frozen=True)
class RateDecision:
    """One rate check, in the terms of the IETF RateLimit header fields draft."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: int  # until the full limit is available again
    retry_after_s: int  # until this request would be allowed (0 when it was)

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_s),
            "RateLimit-Policy": f"{self.limit};w={PERIOD_MS // 1000}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(self.retry_after_s, 1))
        return headers


class Limits:
    """Rate buckets and short admission locks under ``<instance>:limits:``."""

    def __init__(self, client: redis.Redis, instance: str) -> None:
        self.redis = client
        self.prefix = f"{instance}:limits:"
        self._gcra = client.register_script(_GCRA)

    def take(self, key_id: str, limit: int, weight: int = 1) -> RateDecision:
        """Spend ``weight`` requests of ``key_id``'s per-minute ``limit``, if it has them.

        A refused request spends nothing, so a client that backs off is not punished twice.
        """
        allowed, remaining, full_ms, wait_ms = self._gcra(
            keys=[f"{self.prefix}rate:{key_id}"], args=[limit, max(weight, 0), PERIOD_MS]
        )
        return RateDecision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            reset_s=math.ceil(int(full_ms) / 1000),
            retry_after_s=math.ceil(int(wait_ms) / 1000),
        )

    @contextlib.contextmanager
    def admission(
        self, key_id: str, *, hold_s: float = 10.0, wait_s: float = 5.0
    ) -> Iterator[None]:
        """Serialise "count this key's jobs, then add some" across replicas, so two requests
        racing for a key's last slot cannot both get it. The lock expires by itself if its
        holder dies; ``TimeoutError`` when it cannot be had within ``wait_s``."""
        name = f"{self.prefix}admit:{key_id}"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait_s
        while not self.redis.set(name, token, nx=True, px=int(hold_s * 1000)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"admission lock for key {key_id} is busy")
            time.sleep(0.01)
        try:
            yield
        finally:
            self.redis.eval(_RELEASE, 1, name, token)
