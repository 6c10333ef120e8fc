"""The per-key rate (GCRA in Redis) and the admission lock, on CI's real Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from clipmaker.tenants.limits import Limits


@pytest.fixture
def limits(redis_url: str, instance: str) -> Iterator[Limits]:
    client = redis.Redis.from_url(redis_url)
    yield Limits(client, instance)
    keys = list(client.scan_iter(match=f"{instance}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_burst_up_to_the_limit_then_refused(limits: Limits) -> None:
    decisions = [limits.take("k1", 5) for _ in range(6)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert 1 <= refused.retry_after_s <= 12  # one request back every 60/5 s
    assert refused.headers()["Retry-After"] == str(refused.retry_after_s)
    assert refused.headers()["RateLimit-Limit"] == "5"
    assert 0 < refused.reset_s <= 60
    assert limits.take("k2", 5).allowed  # keys are apart


def test_a_refused_request_spends_nothing(limits: Limits) -> None:
    assert limits.take("k", 10, weight=8).remaining == 2
    assert not limits.take("k", 10, weight=3).allowed  # would need three
    assert limits.take("k", 10, weight=2).allowed  # the two are still there
    assert not limits.take("k", 10).allowed


def test_concurrent_takers_never_exceed_the_limit(limits: Limits, redis_url: str) -> None:
    """Replicas are separate clients: the script makes check-and-spend one step."""
    allowed: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        other = Limits(redis.Redis.from_url(redis_url), limits.prefix.split(":")[0])
        for _ in range(10):
            result = other.take("shared", 5).allowed
            with lock:
                allowed.append(result)

    threads = [threading.Thread(target=take) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 5


def test_admission_lock_is_exclusive_and_times_out(limits: Limits) -> None:
    with limits.admission("k"):
        with pytest.raises(TimeoutError), limits.admission("k", wait_s=0.2):
            pass
        with limits.admission("other"):  # other keys are not held up
            pass
    with limits.admission("k", wait_s=0.2):  # released
        pass
