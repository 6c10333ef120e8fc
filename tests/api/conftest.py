"""A running clipmaker, over real HTTP on a local Ray cluster, in both of its shapes:

- ``embedded``: no settings at all but a data dir (SQLite, embedded Redis, local results);
- ``services``: CI's PostgreSQL and Redis servers and S3 through moto's server.

Tests that take ``service`` run once per shape.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from clipmaker.client import Client
from clipmaker.settings import Settings
from clipmaker.tenants.keys import KeyRepository
from clipmaker.tenants.models import ApiKeyCreate
from clipmaker.testing.sample import make_video
from tests.conftest import fresh_postgres_database, make_bucket
from tests.support.http_server import MediaServer, serve_directory

# Spoken in the source video, at these times (seconds).
SPEECH = (
    (1.0, "Good morning everyone."),
    (6.5, "The purple elephant plays the violin."),
    (14.0, "Yesterday it rained all afternoon."),
)


@dataclass
class Service:
    mode: str
    settings: Settings
    base_url: str
    client: Client

    def store_keys(self, prefix: str) -> list[str]:
        """Every stored object under a prefix, read straight from the backend."""
        from clipmaker.storage import ResultStore

        store = ResultStore.from_settings(self.settings)
        return store.list_keys(prefix)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_video(root / "talk.mp4", duration_s=20.0, fps=25, gop_s=2.0, speech=SPEECH)
    make_video(root / "long.mp4", duration_s=60.0, fps=25, gop_s=2.0, speech=SPEECH)
    (root / "page.html").write_text("<html><body><p>No video here.</p></body></html>")
    data = (root / "talk.mp4").read_bytes()
    (root / "corrupt.mp4").write_bytes(data[:2048] + bytes(len(data) // 3))
    return root


@pytest.fixture(scope="session")
def media_server(media_dir: Path) -> Iterator[MediaServer]:
    with serve_directory(media_dir) as server:
        yield server


def _settings(mode: str, tmp: Path, instance: str, request: pytest.FixtureRequest) -> Settings:
    common = {
        "data_dir": tmp / "data",
        "instance": instance,
        "lease_s": 4.0,  # a dead worker's job is taken over within seconds
        "max_upload_bytes": 6 * 1024 * 1024,
        "signed_url_ttl_s": 600,
        "webhook_retry_base_s": 0.5,  # a receiver's retry comes within a second
        "webhook_poll_s": 0.2,
        # the test media servers listen on 127.0.0.1: admit exactly that (127.0.0.2 and ::1
        # stay forbidden, for the SSRF tests)
        "allowed_source_networks": ("127.0.0.1/32",),
    }
    if mode == "embedded":
        return Settings(**common)
    s3_endpoint = request.getfixturevalue("s3_endpoint")
    return Settings(
        **common,
        database_url=request.getfixturevalue("postgres_url"),
        redis_url=request.getfixturevalue("redis_url"),
        storage_url=f"s3://{make_bucket(s3_endpoint)}/results",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        s3_region="us-east-1",
    )


@pytest.fixture(scope="session", params=["embedded", "services"])
def service(
    request: pytest.FixtureRequest, ray_cluster: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    from ray import serve

    from clipmaker.app import build_app
    from clipmaker.cli import wait_ready
    from clipmaker.queue import connect_redis
    from clipmaker.workers import shutdown_worker_pool

    mode = request.param
    instance = f"test-{mode}-{secrets.token_hex(3)}"  # CI's Redis outlives runs: fresh keys
    tmp = tmp_path_factory.mktemp(mode)
    prefix = f"/{instance}"
    settings = _settings(mode, tmp, instance, request).with_overrides(
        http_port=ray_cluster, public_base_url=f"http://127.0.0.1:{ray_cluster}{prefix}"
    )
    serve.run(build_app(settings), name=instance, route_prefix=prefix)
    base_url = settings.resolved_public_base_url
    wait_ready(base_url, timeout_s=180)
    client = Client(base_url)
    yield Service(mode, settings, base_url, client)
    client.close()
    serve.delete(instance)
    shutdown_worker_pool(settings)
    if mode == "embedded":
        with contextlib.suppress(redis.RedisError):
            connect_redis(settings).shutdown(nosave=True)


# --- a deployment with keys required -------------------------------------------------------------

KEYED_QUEUE_CAP = 5  # max_queued_jobs of the keyed deployment: small enough to fill in a test


@dataclass
class KeyedService:
    """A running clipmaker with ``CLIPMAKER_AUTH=required`` (PostgreSQL of its own, CI's Redis,
    local results so that result links go through the API), and a way to make real keys."""

    settings: Settings
    base_url: str
    keys: KeyRepository

    def key(self, tenant: str, **limits: object) -> str:
        """A new key for ``tenant`` (``admin``, ``requests_per_minute``, ``max_running``)."""
        _, key = self.keys.create(ApiKeyCreate(tenant=tenant, **limits))
        return key

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60)

    def client(self, key: str) -> Client:
        return Client(self.base_url, api_key=key)


@pytest.fixture(scope="session")
def keyed_service(
    request: pytest.FixtureRequest,
    ray_cluster: int,
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
) -> Iterator[KeyedService]:
    from ray import serve

    from clipmaker.app import build_app
    from clipmaker.cli import wait_ready
    from clipmaker.jobs.db import make_engine
    from clipmaker.workers import shutdown_worker_pool

    instance = f"test-keys-{secrets.token_hex(3)}"
    tmp = tmp_path_factory.mktemp("keys")
    prefix = f"/{instance}"
    with fresh_postgres_database() as database_url:
        settings = _settings("embedded", tmp, instance, request).with_overrides(
            http_port=ray_cluster,
            public_base_url=f"http://127.0.0.1:{ray_cluster}{prefix}",
            database_url=database_url,
            redis_url=redis_url,
            auth="required",
            asr_workers=0,  # no subtitles here: one CPU slot for the whole deployment
            max_queued_jobs=KEYED_QUEUE_CAP,
        )
        serve.run(build_app(settings), name=instance, route_prefix=prefix)
        wait_ready(settings.resolved_public_base_url, timeout_s=180)
        keys = KeyRepository(make_engine(database_url))
        try:
            yield KeyedService(settings, settings.resolved_public_base_url, keys)
        finally:
            serve.delete(instance)
            shutdown_worker_pool(settings)
            keys.engine.dispose()
