"""Redis caches that save whole stages of work.

- ``ExtractionCache``: yt-dlp's extraction of a URL (a second or more per call, and rate
  limited by sites). Many clips of one video resolve it once; concurrent jobs for the same URL
  wait on one extraction instead of running N (single flight, through a Redis lock).
- ``ResultCache``: the finished result of an identical request (same source, range and
  options), so a repeated request is served without fetching or cutting anything.

Both are optimisations: when Redis misbehaves they step aside and the work is simply done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable

import redis

from clipmaker.jobs.models import ClipRequest
from clipmaker.media import ResolvedSource

log = logging.getLogger("clipmaker.cache")

_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _load(cached: str | bytes) -> ResolvedSource:
    """A cached ``ResolvedSource``, ignoring fields this version does not know."""
    known = {f.name for f in dataclasses.fields(ResolvedSource)}
    return ResolvedSource(**{k: v for k, v in json.loads(cached).items() if k in known})


class ExtractionCache:
    def __init__(self, client: redis.Redis, instance: str, *, ttl_s: int) -> None:
        self.redis = client
        # v2: ResolvedSource gained fields (note, player_client, expires_at...). A versioned
        # key keeps an older worker (rolling deploy) from reading entries it can't load.
        self.prefix = f"{instance}:extract:v2:"
        self.ttl_s = ttl_s

    def resolve(
        self,
        url: str,
        resolve: Callable[[str], ResolvedSource],
        *,
        wait_s: float = 60.0,
        refresh: bool = False,
    ) -> tuple[ResolvedSource, bool]:
        """The resolved source and whether it came from the cache.

        ``refresh``: resolve again whatever is cached (its media URLs expired or were
        refused) and cache the new answer for the jobs that come next.
        """
        key = self.prefix + _digest(url)
        lock = key + ":lock"
        token = secrets.token_hex(8)
        deadline = time.monotonic() + wait_s
        try:
            while time.monotonic() < deadline:
                cached = None if refresh else self.redis.get(key)
                if cached:
                    return _load(cached), True
                if self.redis.set(lock, token, nx=True, px=int(wait_s * 1000)):
                    try:
                        source = resolve(url)
                        payload = json.dumps(dataclasses.asdict(source))
                        self.redis.set(key, payload, ex=self.ttl_s)
                        return source, False
                    finally:
                        self.redis.eval(_RELEASE, 1, lock, token)
                time.sleep(0.05)  # another job is extracting this URL: wait for its answer
        except redis.RedisError:
            log.warning("extraction cache unavailable; resolving %s directly", url, exc_info=True)
        return resolve(url), False


class ResultCache:
    def __init__(self, client: redis.Redis, instance: str, *, ttl_s: int) -> None:
        self.redis = client
        self.prefix = f"{instance}:result:"
        self.ttl_s = ttl_s

    def key(self, request: ClipRequest) -> str:
        """Identical requests share a key: the source as given, the range and the options."""
        source = request.source.model_dump(mode="json", exclude_none=True)
        # Where the job is reported to is no part of what it makes.
        options = request.model_dump(mode="json", exclude={"source", "webhook"})
        return self.prefix + _digest(json.dumps([source, options], sort_keys=True))

    def lookup(self, request: ClipRequest) -> str | None:
        """The id of a job that already produced this result, if one is remembered."""
        try:
            return self.redis.get(self.key(request))
        except redis.RedisError:
            return None

    def remember(self, request: ClipRequest, job_id: str) -> None:
        try:
            self.redis.set(self.key(request), job_id, ex=self.ttl_s)
        except redis.RedisError:
            log.warning("result cache unavailable; job %s not remembered", job_id)

    def forget(self, request: ClipRequest) -> None:
        with contextlib.suppress(redis.RedisError):
            self.redis.delete(self.key(request))
