"""Bring the embedded redis-server back when it dies.

The embedded server is a daemon shared by every process of a deployment on one machine (the
ingress, the media workers). Any of them may notice that it is gone, so each runs one small
supervisor thread per data dir: every ``interval_s`` it asks the server for a sign of life and,
when there is none, starts it again (under the start-up file lock, so one process restarts it
and the others find it running). The append-only file, fsynced on every write, brings back the
queue and the index as they were. A server stopped on purpose (``stop_embedded_redis``, at
service shutdown) is left stopped.

Clients need nothing special: redis-py reconnects on the next command, and the code paths that
meet a ``RedisError`` meanwhile answer 503 (API) or retry (workers).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from clipmaker.queue import (
    EmbeddedRedisPaths,
    EmbeddedRedisStopped,
    _answers,
    ensure_embedded_redis,
)

log = logging.getLogger("clipmaker.redis")

_lock = threading.Lock()
_supervisors: dict[Path, _Supervisor] = {}


class _Supervisor:
    def __init__(self, data_dir: Path, interval_s: float) -> None:
        self.paths = EmbeddedRedisPaths.for_data_dir(data_dir)
        self.data_dir = data_dir
        self.interval_s = interval_s
        self.users = 0
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="redis-supervisor")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if _answers(self.paths.socket):
                continue
            try:
                ensure_embedded_redis(self.data_dir, restart=True)
            except EmbeddedRedisStopped:
                continue  # the service is stopping: leave it down
            except Exception:
                log.warning("embedded Redis is down and did not restart; retrying", exc_info=True)
                continue
            self.restarts += 1
            log.warning("embedded Redis was down; restarted it (%d so far)", self.restarts)


def supervise_embedded_redis(data_dir: Path, *, interval_s: float = 0.5) -> None:
    """Watch the embedded server of ``data_dir`` from this process (once per process and data
    dir, however many callers ask); ``release_embedded_redis`` undoes one call."""
    key = data_dir.expanduser().resolve()
    with _lock:
        supervisor = _supervisors.get(key)
        if supervisor is None:
            supervisor = _supervisors[key] = _Supervisor(key, interval_s)
            supervisor.start()
        supervisor.users += 1


def release_embedded_redis(data_dir: Path) -> None:
    key = data_dir.expanduser().resolve()
    with _lock:
        supervisor = _supervisors.get(key)
        if supervisor is None:
            return
        supervisor.users -= 1
        if supervisor.users <= 0:
            supervisor.stop()
            del _supervisors[key]
