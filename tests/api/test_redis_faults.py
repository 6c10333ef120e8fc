"""Redis dies and comes back: no accepted job is lost or failed, the API answers 503 (never
500) while it is away, and everything resumes by itself.

Two faults, each injected for real: a standalone redis-server of the test's own, SIGKILLed and
started again by the test; and the embedded redis-server, SIGKILLed and brought back by the
service's own supervisor with nobody's help.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from clipmaker.queue import EmbeddedRedisPaths, _alive, _answers
from clipmaker.settings import Settings
from tests.api.conftest import Service, _settings
from tests.api.helpers import wait_for
from tests.support.http_server import MediaServer
from tests.support.redis_process import RedisProcess


@dataclass
class OwnRedisService:
    settings: Settings
    base_url: str
    redis: RedisProcess


@pytest.fixture(scope="module")
def own_redis_service(
    request: pytest.FixtureRequest, ray_cluster: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OwnRedisService]:
    from ray import serve

    from clipmaker.app import build_app
    from clipmaker.cli import wait_ready
    from clipmaker.workers import shutdown_worker_pool

    tmp = tmp_path_factory.mktemp("own-redis")
    server = RedisProcess(tmp / "redis")
    server.start()
    instance = f"test-redis-{secrets.token_hex(3)}"
    prefix = f"/{instance}"
    settings = _settings("embedded", tmp, instance, request).with_overrides(
        http_port=ray_cluster,
        public_base_url=f"http://127.0.0.1:{ray_cluster}{prefix}",
        redis_url=server.url,
        asr_workers=0,
    )
    serve.run(build_app(settings), name=instance, route_prefix=prefix)
    try:
        wait_ready(settings.resolved_public_base_url, timeout_s=180)
        yield OwnRedisService(settings, settings.resolved_public_base_url, server)
    finally:
        serve.delete(instance)
        shutdown_worker_pool(settings)
        server.stop()


def _body(media_server: MediaServer, start: float, end: float) -> dict:
    return {"source": {"url": media_server.url("long.mp4")}, "start": start, "end": end}


def _final(http: httpx.Client, job_id: str, timeout: float = 180) -> dict:
    seen: dict = {}

    def finished() -> bool:
        seen.update(http.get(f"/api/jobs/{job_id}").json())
        return seen.get("status") in ("succeeded", "failed", "cancelled")

    wait_for(finished, timeout=timeout, interval=0.2)
    return seen


def test_standalone_redis_killed_and_restarted(
    own_redis_service: OwnRedisService, media_server: MediaServer
) -> None:
    svc = own_redis_service
    with httpx.Client(base_url=svc.base_url, timeout=30) as http:
        before = [
            http.post("/api/jobs", json=_body(media_server, s, s + 8)).json()["id"]
            for s in (1, 11, 21, 31)
        ]
        to_cancel = http.post("/api/jobs", json=_body(media_server, 41, 50)).json()["id"]
        svc.redis.kill()

        # While Redis is away: clear 503s with Retry-After where Redis is needed, answers
        # from SQL where it is not; never a 500.
        refused = http.post("/api/jobs", json=_body(media_server, 2, 3))
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "service_unavailable"
        assert int(refused.headers["retry-after"]) > 0
        assert "127.0.0.1" not in refused.text and str(svc.redis.port) not in refused.text
        assert http.get(f"/api/jobs/{before[0]}").status_code == 200
        assert http.get("/api/jobs").status_code == 200
        assert http.delete(f"/api/jobs/{to_cancel}").status_code == 200
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["redis"].startswith("failing")
        assert str(svc.redis.port) not in not_ready.text  # no addresses for strangers

        svc.redis.start()  # same port, same append-only file
        wait_for(lambda: http.get("/readyz").status_code == 200, timeout=60, interval=0.2)
        after = http.post("/api/jobs", json=_body(media_server, 3, 5))
        assert after.status_code == 202, after.text

        finals = [_final(http, job_id) for job_id in [*before, after.json()["id"]]]
        assert [f["status"] for f in finals] == ["succeeded"] * 5, [f["error"] for f in finals]
        assert _final(http, to_cancel)["status"] == "cancelled"


@pytest.mark.parametrize("service", ["embedded"], indirect=True)
def test_embedded_redis_killed_comes_back_by_itself(
    service: Service, media_server: MediaServer
) -> None:
    paths = EmbeddedRedisPaths.for_data_dir(service.settings.data_dir)
    http = service.client.http
    submitted = [
        http.post("/api/jobs", json=_body(media_server, s, s + 6)).json()["id"] for s in (2, 12)
    ]
    old_pid = int(paths.pidfile.read_text())
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(old_pid), timeout=10, interval=0.02)

    statuses: set[int] = set()

    def back() -> bool:
        statuses.add(http.get(f"/api/jobs/{submitted[0]}").status_code)
        statuses.add(http.post("/api/jobs", json={"start": 1}).status_code)  # a 422, or a 503
        return _answers(paths.socket) and int(paths.pidfile.read_text()) != old_pid

    wait_for(back, timeout=30, interval=0.05)  # nobody but the service restarts it
    assert 500 not in statuses, statuses
    after = http.post("/api/jobs", json=_body(media_server, 30, 33))
    assert after.status_code == 202, after.text
    finals = [_final(http, job_id) for job_id in [*submitted, after.json()["id"]]]
    assert [f["status"] for f in finals] == ["succeeded"] * 3, [f["error"] for f in finals]


def test_orphaned_scratch_is_swept(own_redis_service: OwnRedisService) -> None:
    """A killed attempt's scratch folder (its job long finished) goes at the next sweep; a
    folder that is not an attempt's is none of the sweeper's business."""
    scratch = own_redis_service.settings.scratch_dir
    orphan = scratch / f"{secrets.token_hex(16)}-1"
    (orphan / "partial").mkdir(parents=True)
    (orphan / "partial" / "clip.mp4").write_bytes(b"x" * 1024)
    old = 1_000_000_000
    os.utime(orphan, (old, old))
    other = scratch / "not-an-attempt"
    other.mkdir(exist_ok=True)
    os.utime(other, (old, old))
    wait_for(lambda: not orphan.exists(), timeout=own_redis_service.settings.lease_s * 3 + 10)
    assert other.is_dir()
