"""Fixtures for the real services the tests talk to.

PostgreSQL and Redis are the servers CI runs (127.0.0.1:5432 database ``test``,
127.0.0.1:6379); ``scripts/test.sh`` installs and starts them where they are missing. A test
that needs one fails loudly when it is not there: nothing is skipped. S3 is moto's server on
loopback, spoken to over HTTP through s3fs exactly as production speaks to S3.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator

import psycopg
import pytest
import redis

POSTGRES_ADMIN_URL = os.environ.get(
    "CLIPMAKER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_TEST_URL = os.environ.get("CLIPMAKER_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on CI's PostgreSQL server (its URL), dropped afterwards."""
    name = f"clipmaker_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on CI's PostgreSQL server, dropped after the session."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """CI's Redis server. Tests keep apart by using their own ``instance`` key prefix."""
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_TEST_URL}: {exc}")
    return REDIS_TEST_URL


@pytest.fixture
def instance() -> str:
    """A unique deployment name, so Redis keys and Ray actor names never collide."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback, with credentials in the environment as AWS tools expect."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def make_bucket(s3_endpoint: str) -> str:
    """A new empty bucket on the moto server; returns its name."""
    import boto3

    name = f"clips-{secrets.token_hex(4)}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    return make_bucket(s3_endpoint)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[int]:
    """One local Ray cluster with Serve for the whole session (starting one costs seconds);
    yields Serve's HTTP port. Logical CPUs are pinned: each deployment under test needs one
    slot per worker actor."""
    import ray
    from ray import serve

    ray.init(
        address="local",  # our own cluster, never another one running on this machine
        num_cpus=4,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONUNBUFFERED": "1"}},
    )
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield port
    serve.shutdown()
    ray.shutdown()
