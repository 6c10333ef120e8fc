"""The durable queue and the job index on the real Redis server and on the embedded one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from clipmaker.queue import (
    EmbeddedRedisPaths,
    JobIndex,
    JobQueue,
    _alive,
    connect_redis,
    embedded_redis_url,
    stop_embedded_redis,
)
from clipmaker.settings import Settings
from tests.conftest import free_port
from tests.support.redis_server import own_redis
from tests.support.waiting import wait_for

RECLAIM_MS = 300
LONG_LEASE_MS = 60_000  # a lease no test outlives: "still fresh" holds however slow the machine


def idle_ms(queue: JobQueue, entry_id: str) -> int:
    """How long Redis says the entry has gone untouched (Redis owns this clock)."""
    [pending] = queue.redis.xpending_range(queue.stream, queue.group, entry_id, entry_id, 1)
    return int(pending["time_since_delivered"])


def embedded_settings(data_dir: Path) -> Settings:
    # No REDIS_URL from the environment: these tests are about the embedded server.
    return Settings(data_dir=data_dir).with_overrides(redis_url=None)


def server_pid(data_dir: Path) -> int:
    return int(EmbeddedRedisPaths.for_data_dir(data_dir).pidfile.read_text())


def wait_dead(pid: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        assert time.monotonic() < deadline, f"redis-server {pid} still running"
        time.sleep(0.02)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose embedded redis-server, if a test started one, is stopped afterwards."""
    path = tmp_path / "data"
    yield path
    pid_file = EmbeddedRedisPaths.for_data_dir(path).pidfile
    pid = int(pid_file.read_text()) if pid_file.exists() else None
    stop_embedded_redis(path)
    if pid is not None:
        wait_dead(pid)


@pytest.fixture(params=["server", "embedded"])
def client(request: pytest.FixtureRequest, instance: str) -> Iterator[redis.Redis]:
    """A client of CI's Redis server, or of a fresh embedded one; keys cleaned up after."""
    if request.param == "server":
        url: str = request.getfixturevalue("redis_url")
        conn = connect_redis(Settings().with_overrides(redis_url=url))
    else:
        conn = connect_redis(embedded_settings(request.getfixturevalue("data_dir")))
    yield conn
    keys = list(conn.scan_iter(match=f"{instance}:*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.fixture
def queue(client: redis.Redis, instance: str) -> JobQueue:
    return JobQueue(client, instance)


# --- the queue ----------------------------------------------------------------------------------


def test_enqueue_receive_ack(queue: JobQueue, client: redis.Redis, instance: str) -> None:
    first = queue.enqueue("job-a")
    queue.enqueue("job-b")
    assert client.exists(f"{instance}:jobs")
    assert (queue.depth(), queue.pending()) == (2, 0)

    a = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    b = queue.receive("c2", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert a is not None and b is not None
    assert (a.entry_id, a.job_id, a.deliveries) == (first, "job-a", 1)
    assert (b.job_id, b.deliveries) == ("job-b", 1)
    assert (queue.depth(), queue.pending()) == (0, 2)

    queue.ack(a)
    queue.ack(b)
    assert (queue.depth(), queue.pending()) == (0, 0)
    assert client.xlen(queue.stream) == 0  # acked entries do not pile up

    started = time.monotonic()
    assert queue.receive("c1", block_ms=150, reclaim_idle_ms=RECLAIM_MS) is None
    assert time.monotonic() - started >= 0.1  # it blocked for new work
    assert queue.receive("c1", block_ms=0, reclaim_idle_ms=RECLAIM_MS) is None  # no block


def test_blocked_receive_wakes_on_enqueue(queue: JobQueue) -> None:
    timer = threading.Timer(0.2, queue.enqueue, args=("job-late",))
    timer.start()
    try:
        delivery = queue.receive("c1", block_ms=5000, reclaim_idle_ms=RECLAIM_MS)
    finally:
        timer.join()
    assert delivery is not None and delivery.job_id == "job-late"


def test_entry_of_a_dead_consumer_is_reclaimed(queue: JobQueue) -> None:
    queue.enqueue("job-a")
    before_taking = time.monotonic()
    taken = queue.receive("dies", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert taken is not None
    # Still fresh: the other consumer gets nothing.
    assert queue.receive("lives", block_ms=50, reclaim_idle_ms=LONG_LEASE_MS) is None

    again = wait_for(
        lambda: queue.receive("lives", block_ms=0, reclaim_idle_ms=RECLAIM_MS), timeout=30
    )
    assert time.monotonic() - before_taking >= RECLAIM_MS / 1000  # never before the lease ran out
    assert (again.entry_id, again.job_id, again.deliveries) == (taken.entry_id, "job-a", 2)
    assert queue.pending() == 1  # one entry, now held by "lives"
    queue.ack(again)
    assert queue.pending() == 0 and queue.depth() == 0


def test_touch_keeps_an_entry_from_being_reclaimed(queue: JobQueue) -> None:
    queue.enqueue("job-long")
    mine = queue.receive("slow", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert mine is not None
    for _ in range(2):
        # Let it go quiet for a while (by Redis' clock), then touch it: the idle time starts
        # again, so a lease as long as the quiet spell no longer lets anyone take it.
        quiet_ms = wait_for(lambda: (ms := idle_ms(queue, mine.entry_id)) >= 600 and ms, 30)
        queue.touch(mine, "slow")
        assert idle_ms(queue, mine.entry_id) < quiet_ms
        assert queue.receive("other", block_ms=0, reclaim_idle_ms=quiet_ms) is None
    # "slow" stops touching (it died): the entry is taken once its lease runs out.
    taken = wait_for(
        lambda: queue.receive("other", block_ms=0, reclaim_idle_ms=RECLAIM_MS), timeout=30
    )
    assert taken.entry_id == mine.entry_id
    assert taken.deliveries == 2  # touches are not deliveries


def test_acked_entry_is_never_redelivered(queue: JobQueue) -> None:
    queue.enqueue("job-a")
    delivery = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert delivery is not None
    queue.ack(delivery)
    # With no lease at all, any entry still pending would be reclaimed at once.
    assert queue.receive("c2", block_ms=0, reclaim_idle_ms=0) is None
    queue.ack(delivery)  # acking twice is harmless


def test_queued_job_ids_lists_waiting_and_delivered_entries(queue: JobQueue) -> None:
    for i in range(5):
        queue.enqueue(f"job-{i}")
    delivered = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert delivered is not None
    assert queue.queued_job_ids(page=2) == {f"job-{i}" for i in range(5)}
    queue.ack(delivered)
    assert delivered.job_id not in queue.queued_job_ids(page=2)


def test_dead_entry_behind_many_live_ones_is_reclaimed(queue: JobQueue) -> None:
    for i in range(25):
        queue.enqueue(f"job-{i}")
    held = [queue.receive("busy", block_ms=100, reclaim_idle_ms=RECLAIM_MS) for _ in range(25)]
    assert all(held)
    dead = held[-1]
    assert dead is not None
    quiet_ms = wait_for(lambda: (ms := idle_ms(queue, dead.entry_id)) >= 1000 and ms, 30)
    for delivery in held[:-1]:  # all but the last are alive and touched
        assert delivery is not None
        queue.touch(delivery, "busy")
    rescuer = JobQueue(queue.redis, queue.stream.removesuffix(":jobs"))
    reclaimed = rescuer.receive("rescuer", block_ms=0, reclaim_idle_ms=quiet_ms)
    assert reclaimed is not None and reclaimed.job_id == "job-24"


def test_group_creation_is_idempotent_and_instances_are_apart(
    client: redis.Redis, instance: str
) -> None:
    one = JobQueue(client, instance)
    JobQueue(client, instance)  # a second process starting up
    other = JobQueue(client, f"{instance}-other")
    one.enqueue("job-a")
    assert other.receive("c", block_ms=0, reclaim_idle_ms=RECLAIM_MS) is None
    assert other.depth() == 0 and one.depth() == 1
    client.delete(other.stream)


def test_queue_recovers_when_its_stream_vanishes(queue: JobQueue, client: redis.Redis) -> None:
    client.delete(queue.stream)  # e.g. a Redis that was flushed
    assert queue.receive("c1", block_ms=0, reclaim_idle_ms=RECLAIM_MS) is None
    queue.enqueue("job-a")
    delivery = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert delivery is not None and delivery.job_id == "job-a"


def test_malformed_entry_is_dropped(queue: JobQueue, client: redis.Redis) -> None:
    client.xadd(queue.stream, {"something": "else"})
    queue.enqueue("job-a")
    first = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    second = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert first is None and second is not None and second.job_id == "job-a"
    queue.ack(second)
    assert client.xlen(queue.stream) == 0 and queue.pending() == 0


def test_check(tmp_path: Path, instance: str) -> None:
    with own_redis(free_port(), tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=2, socket_connect_timeout=2)
        queue = JobQueue(client, instance)
        queue.check()  # answers
        server.kill()
        # Readiness must notice a Redis that went away, not report it as fine.
        with pytest.raises(redis.ConnectionError):
            queue.check()
        client.close()


# --- the index ----------------------------------------------------------------------------------


def test_progress(client: redis.Redis, instance: str) -> None:
    index = JobIndex(client, instance)
    index.set_progress("job-a", "fetching", 0.25)
    index.set_progress("job-b", "transcribing", 0.8, ttl_s=60)
    index.set_progress("job-a", "cutting", 0.5)
    assert index.progress(["job-a", "job-b", "job-missing"]) == {"job-a": 0.5, "job-b": 0.8}
    assert index.progress([]) == {}
    assert index.stage("job-a") == "cutting" and index.stage("job-missing") is None
    assert 0 < client.ttl(f"{instance}:progress:job-b") <= 60


def test_cancel_flags(client: redis.Redis, instance: str) -> None:
    index = JobIndex(client, instance)
    assert not index.is_cancelled("job-a")
    index.request_cancel("job-a")
    assert index.is_cancelled("job-a") and not index.is_cancelled("job-b")


# --- the embedded server ------------------------------------------------------------------------


def test_embedded_server_starts_once_and_is_reused(data_dir: Path) -> None:
    settings = embedded_settings(data_dir)
    first = connect_redis(settings)
    first.set("k", "v")
    pid = server_pid(data_dir)
    second = connect_redis(settings)  # another process or replica connecting later
    assert second.get("k") == "v" and server_pid(data_dir) == pid
    url = embedded_redis_url(settings)
    assert url == f"unix://{data_dir.resolve() / 'redis.sock'}"
    # decode_responses in both modes: strings, not bytes.
    assert isinstance(second.get("k"), str)
    # The server is a unix socket only, and only for us.
    assert second.config_get("port")["port"] == "0"
    assert oct((data_dir / "redis.sock").stat().st_mode & 0o777) == "0o700"
    first.close()
    second.close()


def test_embedded_server_started_by_racing_processes_is_one(data_dir: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from clipmaker.settings import Settings;"
        "from clipmaker.queue import connect_redis;"
        "s = Settings(data_dir=Path(sys.argv[1])).with_overrides(redis_url=None);"
        "r = connect_redis(s); print(r.info('server')['process_id'])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    pids = {out.decode().strip() for out, _ in outputs}
    assert pids == {str(server_pid(data_dir))}
    # Threads of one process agree with them too.
    threads_pids: list[int] = []
    settings = embedded_settings(data_dir)

    def connect() -> None:
        threads_pids.append(connect_redis(settings).info("server")["process_id"])

    threads = [threading.Thread(target=connect) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert set(map(str, threads_pids)) == pids


def test_enqueued_job_survives_a_crash_of_the_embedded_server(
    data_dir: Path, instance: str
) -> None:
    settings = embedded_settings(data_dir)
    client = connect_redis(settings)
    queue = JobQueue(client, instance)
    queue.enqueue("job-accepted")
    in_flight = queue.enqueue("job-in-flight")
    assert queue.receive("w1", block_ms=100, reclaim_idle_ms=RECLAIM_MS) is not None  # accepted
    assert queue.receive("w1", block_ms=100, reclaim_idle_ms=RECLAIM_MS) is not None  # in flight

    pid = server_pid(data_dir)
    os.kill(pid, signal.SIGKILL)  # a crash, not a clean shutdown
    wait_dead(pid)
    client.close()

    restarted = connect_redis(settings)
    assert server_pid(data_dir) != pid
    queue = JobQueue(restarted, instance)
    assert queue.pending() == 2  # the group and its pending entries came back from the AOF
    got = [queue.receive("w2", block_ms=0, reclaim_idle_ms=0) for _ in range(2)]
    assert {d.job_id for d in got if d} == {"job-accepted", "job-in-flight"}
    assert in_flight in {d.entry_id for d in got if d}
    restarted.close()


def test_clean_stop_and_restart_keeps_data(data_dir: Path, instance: str) -> None:
    settings = embedded_settings(data_dir)
    client = connect_redis(settings)
    JobQueue(client, instance).enqueue("job-a")
    client.close()
    pid = server_pid(data_dir)
    assert stop_embedded_redis(data_dir)
    wait_dead(pid)
    assert not stop_embedded_redis(data_dir)  # nothing left to stop
    queue = JobQueue(connect_redis(settings), instance)
    delivery = queue.receive("c1", block_ms=100, reclaim_idle_ms=RECLAIM_MS)
    assert delivery is not None and delivery.job_id == "job-a"


def test_deep_data_dir_gets_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    paths = EmbeddedRedisPaths.for_data_dir(deep)
    assert paths.socket.parent != deep and len(str(paths.socket)) < 100
    try:
        client = connect_redis(embedded_settings(deep))
        assert client.ping()
        client.close()
    finally:
        pid = server_pid(deep)
        stop_embedded_redis(deep)
        wait_dead(pid)
