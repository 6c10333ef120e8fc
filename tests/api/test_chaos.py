"""Chaos: 100 mixed jobs while their workers, Redis and the whole service die under them.

Two deployments of their own (not the shared session ones, which these faults would break):
- ``embedded``: embedded Redis, SQLite, local files; the embedded redis-server is SIGKILLed
  twice and the whole service is stopped and started again once;
- ``own-redis``: PostgreSQL, and a standalone redis-server that this test starts on a port of
  its own (never the machine's shared one), kills, and starts again.
In both, media and ASR worker processes are killed at random moments. What must hold, as a
user would check it: every accepted job ends ``succeeded`` or ``failed`` with a reason a
program can branch on (never ``internal_error``), none is lost, none has two results, and no
scratch folder is left behind.
"""

from __future__ import annotations

import collections
import os
import random
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from clipmaker.queue import EmbeddedRedisPaths
from clipmaker.settings import Settings
from clipmaker.workers import NAMESPACE, asr_worker_name, media_worker_name
from tests.conftest import free_port, fresh_postgres_database
from tests.support.http_server import MediaServer
from tests.support.redis_server import own_redis
from tests.support.waiting import wait_for

JOBS_PER_DEPLOYMENT = 50  # two deployments: 100 jobs in all
FINAL = {"succeeded", "failed", "cancelled"}


@dataclass
class Deployment:
    """One clipmaker of the test's own on the session's Ray cluster, that it can stop and
    start again with the same settings (and so the same data, queue and database)."""

    settings: Settings
    port: int
    name: str = field(default_factory=lambda: f"chaos-{secrets.token_hex(3)}")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"

    def start(self) -> None:
        from ray import serve

        from clipmaker.app import build_app
        from clipmaker.cli import wait_ready

        settings = self.settings.with_overrides(http_port=self.port, public_base_url=self.base_url)
        serve.run(build_app(settings), name=self.name, route_prefix=f"/{self.name}")
        wait_ready(self.base_url, timeout_s=180)

    def stop(self) -> None:
        from ray import serve

        from clipmaker.workers import shutdown_worker_pool

        serve.delete(self.name)
        shutdown_worker_pool(self.settings)


def call(method: str, url: str, timeout_s: float = 120, **kwargs: Any) -> httpx.Response:
    """What a careful client does: retry while the service is away (connection refused, 5xx,
    the route not mounted during a restart), up to a bound; return the first real answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.request(method, url, timeout=30, **kwargs)
            routed = response.headers.get("content-type", "").startswith("application/json")
            if response.status_code < 500 and (response.status_code != 404 or routed):
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{method} {url}: no answer in {timeout_s} s"
        time.sleep(0.5)


def mixed_requests(media: MediaServer, count: int, seed: int) -> list[tuple[dict, str]]:
    """Jobs of every kind, each with the outcome a user expects: frame-accurate and keyframe
    clips, with and without subtitles, and requests that must fail with a clear code."""
    rng = random.Random(seed)
    out: list[tuple[dict, str]] = []
    for i in range(count):
        start = round(rng.uniform(0.0, 12.0), 2)
        kind = i % 5
        body: dict[str, Any] = {"source": {"url": media.url("talk.mp4")}}
        if kind == 0:
            body |= {"start": start, "end": start + 2.5}
        elif kind == 1:
            body |= {"start": start, "end": start + 3.0, "accuracy": "keyframe"}
        elif kind == 2:
            body |= {"start": start, "end": start + 4.0, "subtitles": "srt"}
        elif kind == 3:
            body |= {"start": 30 + start, "end": 35 + start}  # past the 20 s source
            out.append((body, "failed:range_out_of_bounds"))
            continue
        else:
            body |= {"source": {"url": media.url("page.html")}, "start": 1, "end": 2}
            out.append((body, "failed:not_media"))
            continue
        out.append((body, "succeeded"))
    return out


def kill_a_worker(settings: Settings, rng: random.Random) -> str:
    name = rng.choice(
        [media_worker_name(settings, i) for i in range(settings.media_workers)]
        + [asr_worker_name(settings, i) for i in range(settings.asr_workers)]
    )
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=False)
    except ValueError:
        return f"{name} (not running)"
    return name


def run_chaos(
    deployment: Deployment,
    media: MediaServer,
    faults: list[tuple[float, str, Callable[[], object]]],
    seed: int,
) -> collections.Counter[str]:
    """Submit the jobs, fire each fault at its moment (seconds after the first submit), wait
    for every job to end, and check what a user would."""
    jobs: list[tuple[str, str]] = []
    fired: list[str] = []
    stop = threading.Event()

    def fire() -> None:
        started = time.monotonic()
        for at, what, action in sorted(faults, key=lambda f: f[0]):
            if stop.wait(max(0.0, at - (time.monotonic() - started))):
                return
            fired.append(f"{what}: {action()}")

    chaos = threading.Thread(target=fire, daemon=True)
    chaos.start()
    try:
        for index, (body, expected) in enumerate(mixed_requests(media, JOBS_PER_DEPLOYMENT, seed)):
            key = f"chaos-{seed}-{index}"  # retried submits never make two jobs
            answer = call(
                "POST",
                f"{deployment.base_url}/api/jobs",
                json=body,
                headers={"Idempotency-Key": key},
            )
            assert answer.status_code == 202, answer.text
            jobs.append((answer.json()["id"], expected))
            time.sleep(0.05)
        chaos.join(120)

        def final(job_id: str) -> dict | None:
            job = call("GET", f"{deployment.base_url}/api/jobs/{job_id}").json()
            return job if job["status"] in FINAL else None

        outcomes: collections.Counter[str] = collections.Counter()
        for job_id, expected in jobs:
            job = wait_for(lambda job_id=job_id: final(job_id), timeout=600, interval=0.5)
            error = job.get("error") or {}
            outcome = job["status"] + (f":{error['code']}" if error else "")
            outcomes[outcome] += 1
            assert outcome == expected, (job_id, job)
            if job["status"] == "succeeded":
                attempts = {key.split("/")[2] for key in stored_keys(deployment, job_id)}
                assert len(attempts) == 1, (job_id, attempts)  # one result, one attempt's files
    finally:
        stop.set()
    print(f"\n{deployment.name}: faults fired: {fired}\noutcomes: {dict(outcomes)}")
    assert len(fired) == len(faults)
    assert sum(outcomes.values()) == JOBS_PER_DEPLOYMENT  # none lost
    assert not any(o.endswith("internal_error") for o in outcomes)
    # No orphaned scratch: every attempt's folder is gone once the jobs have ended.
    scratch = deployment.settings.scratch_dir
    wait_for(lambda: not scratch.exists() or not any(scratch.iterdir()), timeout=60)
    return outcomes


def stored_keys(deployment: Deployment, job_id: str) -> list[str]:
    from clipmaker.storage import ResultStore

    return ResultStore.from_settings(deployment.settings).list_keys(f"jobs/{job_id}/")


def chaos_settings(tmp: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        instance=f"chaos-{secrets.token_hex(3)}",
        lease_s=4.0,
        max_attempts=6,  # random kills may hit one job more than once
        allowed_source_networks="127.0.0.1/32",  # where the media server is
        auth="off",
        **changes,
    ).with_overrides(redis_url=changes.get("redis_url"))


@pytest.fixture
def deployments() -> Iterator[list[Deployment]]:
    started: list[Deployment] = []
    yield started
    for deployment in started:
        deployment.stop()


def test_chaos_embedded_redis_killed_twice_and_a_full_restart(
    ray_cluster: int, tmp_path: Path, media_server: MediaServer, deployments: list[Deployment]
) -> None:
    deployment = Deployment(chaos_settings(tmp_path), ray_cluster)
    deployment.start()
    deployments.append(deployment)
    rng = random.Random(7)
    pidfile = EmbeddedRedisPaths.for_data_dir(deployment.settings.data_dir).pidfile

    def kill_embedded_redis() -> str:
        pid = int(pidfile.read_text())
        os.kill(pid, signal.SIGKILL)
        return f"redis-server {pid} killed"

    def restart_service() -> str:
        deployment.stop()
        deployment.start()
        return "stopped and started again"

    outcomes = run_chaos(
        deployment,
        media_server,
        [
            (1.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
            (3.0, "embedded redis", kill_embedded_redis),
            (6.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
            (9.0, "service", restart_service),
            (14.0, "embedded redis", kill_embedded_redis),
            (17.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
        ],
        seed=1,
    )
    assert outcomes["succeeded"] == JOBS_PER_DEPLOYMENT * 3 // 5


def test_chaos_standalone_redis_killed_and_started_again(
    ray_cluster: int,
    tmp_path: Path,
    media_server: MediaServer,
) -> None:
    # A database of its own: deployments that share one sweep each other's jobs (the sweeper
    # re-queues any stale job of its database into its own queue).
    with (
        fresh_postgres_database() as postgres_url,
        own_redis(free_port(), tmp_path / "redis") as redis_server,
    ):
        deployment = Deployment(
            chaos_settings(tmp_path, redis_url=redis_server.url, database_url=postgres_url),
            ray_cluster,
        )
        deployment.start()
        rng = random.Random(11)

        def kill_redis() -> str:
            redis_server.kill()
            return "killed"

        def start_redis() -> str:
            redis_server.start()
            return "started again"

        try:
            outcomes = run_chaos(
                deployment,
                media_server,
                [
                    (1.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
                    (3.0, "redis", kill_redis),
                    (8.0, "redis", start_redis),
                    (10.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
                    (14.0, "worker", lambda: kill_a_worker(deployment.settings, rng)),
                ],
                seed=2,
            )
        finally:
            deployment.stop()
        assert outcomes["succeeded"] == JOBS_PER_DEPLOYMENT * 3 // 5
