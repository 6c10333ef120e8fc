"""A redis-server of the test's own, on a free loopback port: a real server a test may kill
and start again (never the machine's shared one)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from clipmaker.queue import redis_server_executable
from tests.conftest import free_port


class RedisProcess:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            [
                redis_server_executable(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    if int(client.info("persistence").get("loading", 0)) == 0:
                        return
                except redis.RedisError:
                    pass
                assert time.monotonic() < deadline, "own redis-server did not start"
                time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last write; what a crash or the OOM killer does."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
