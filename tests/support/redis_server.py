"""A redis-server of the test's own, on a free loopback port, for fault tests that kill and
restart it (never the machine's shared server)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from clipmaker.queue import redis_server_executable
from tests.support.waiting import wait_for


class OwnRedis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                redis_server_executable(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_for(lambda: _answers(probe), timeout=30)
        probe.close()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@contextmanager
def own_redis(port: int, workdir: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(port, workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()
