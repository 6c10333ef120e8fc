"""Wiring: from one Settings object to the connected stores every process needs.

The ingress replica and every worker actor build their own ``Services`` from the same
settings, so each process opens its own database pool and Redis connection (neither can be
pickled across Ray processes).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from clipmaker.cache import ExtractionCache, ResultCache
from clipmaker.jobs.db import make_engine
from clipmaker.jobs.repository import JobRepository
from clipmaker.queue import JobIndex, JobQueue, connect_redis
from clipmaker.redis_supervisor import release_embedded_redis, supervise_embedded_redis
from clipmaker.settings import Settings
from clipmaker.storage import ResultStore
from clipmaker.tenants.keys import KeyRepository
from clipmaker.tenants.limits import Limits


@dataclass
class Services:
    settings: Settings
    jobs: JobRepository
    redis: redis.Redis
    queue: JobQueue
    index: JobIndex
    store: ResultStore
    extractions: ExtractionCache
    results: ResultCache
    keys: KeyRepository
    limits: Limits

    @classmethod
    def connect(cls, settings: Settings) -> Services:
        client = connect_redis(settings)
        if settings.redis_url is None:  # ours to keep alive: restart it if it dies
            supervise_embedded_redis(settings.data_dir)
        engine = make_engine(settings.resolved_database_url)
        return cls(
            settings=settings,
            jobs=JobRepository(engine),
            redis=client,
            queue=JobQueue(client, settings.instance),
            index=JobIndex(client, settings.instance),
            store=ResultStore.from_settings(settings),
            extractions=ExtractionCache(
                client, settings.instance, ttl_s=settings.extraction_cache_ttl_s
            ),
            results=ResultCache(client, settings.instance, ttl_s=settings.result_cache_ttl_s),
            keys=KeyRepository(engine),
            limits=Limits(client, settings.instance),
        )

    def close(self) -> None:
        self.jobs.engine.dispose()
        self.redis.close()
        if self.settings.redis_url is None:
            release_embedded_redis(self.settings.data_dir)
