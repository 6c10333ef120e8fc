"""The Redis caches, on CI's real Redis server."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from clipmaker.cache import ExtractionCache, ResultCache
from clipmaker.jobs.models import ClipRequest
from clipmaker.media import ResolvedSource
from tests.support.waiting import wait_for


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, decode_responses=True)


def source_for(url: str) -> ResolvedSource:
    return ResolvedSource(
        url=url,
        media_url=url + "?signed=1",
        http_headers={"User-Agent": "x"},
        title="a talk",
        duration=600.0,
        extractor="generic",
    )


def test_concurrent_jobs_for_one_url_wait_on_one_extraction(
    client: redis.Redis, instance: str
) -> None:
    cache = ExtractionCache(client, instance, ttl_s=60)
    calls: list[str] = []

    def slow_resolve(url: str) -> ResolvedSource:
        calls.append(url)
        time.sleep(0.5)
        return source_for(url)

    results: list[tuple[ResolvedSource, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.resolve("http://v/1", slow_resolve)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["http://v/1"]
    assert len(results) == 6
    assert all(source == source_for("http://v/1") for source, _ in results)
    assert sorted(cached for _, cached in results) == [False] + [True] * 5
    [key] = [k for k in client.scan_iter(f"{instance}:extract:*") if not k.endswith(":lock")]
    assert 0 < client.ttl(key) <= 60
    # A later job reuses it without calling yt-dlp again.
    assert cache.resolve("http://v/1", slow_resolve) == (source_for("http://v/1"), True)
    assert len(calls) == 1


def test_failed_extractions_are_not_cached(client: redis.Redis, instance: str) -> None:
    cache = ExtractionCache(client, instance, ttl_s=60)

    def broken(url: str) -> ResolvedSource:
        raise RuntimeError("site down")

    with pytest.raises(RuntimeError):
        cache.resolve("http://v/2", broken)
    assert cache.resolve("http://v/2", source_for) == (source_for("http://v/2"), False)


def test_extraction_cache_expires(client: redis.Redis, instance: str) -> None:
    cache = ExtractionCache(client, instance, ttl_s=2)
    calls: list[str] = []

    def counted(url: str) -> ResolvedSource:
        calls.append(url)
        return source_for(url)

    assert cache.resolve("http://v/3", counted) == (source_for("http://v/3"), False)
    # Before expiry: a hit, with no second extraction.
    assert cache.resolve("http://v/3", counted) == (source_for("http://v/3"), True)
    assert calls == ["http://v/3"]
    [key] = [k for k in client.scan_iter(f"{instance}:extract:*") if not k.endswith(":lock")]
    assert 0 < client.pttl(key) <= 2000
    # Redis owns the expiry clock: wait for the entry to go, then the URL is resolved anew.
    wait_for(lambda: not client.exists(key), timeout=30)
    assert cache.resolve("http://v/3", counted) == (source_for("http://v/3"), False)
    assert calls == ["http://v/3", "http://v/3"]


def test_without_redis_the_work_is_simply_done(instance: str) -> None:
    dead = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2, retry=None)
    cache = ExtractionCache(dead, instance, ttl_s=60)
    assert cache.resolve("http://v/4", source_for) == (source_for("http://v/4"), False)
    results = ResultCache(dead, instance, ttl_s=60)
    request = ClipRequest.model_validate({"source": {"url": "http://v/4"}, "start": 1, "end": 2})
    results.remember(request, "job")
    assert results.lookup(request) is None


def test_identical_requests_share_a_result_key(client: redis.Redis, instance: str) -> None:
    cache = ResultCache(client, instance, ttl_s=60)

    def request(**changes: object) -> ClipRequest:
        body = {"source": {"url": "http://v/5.mp4"}, "start": 5, "end": 12, "subtitles": "srt"}
        return ClipRequest.model_validate(body | changes)

    cache.remember(request(), "job-1")
    assert cache.lookup(request(start="00:00:05", end=12.0)) == "job-1"
    for different in (
        request(end=13),
        request(subtitles="vtt"),
        request(accuracy="keyframe"),
        request(language="en"),
        request(source={"url": "http://v/6.mp4"}),
    ):
        assert cache.lookup(different) is None
    cache.forget(request())
    assert cache.lookup(request()) is None
