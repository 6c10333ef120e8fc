"""Bounds on reads: a dripping source is too slow, a stalled read stops on cancel or deadline.

All through a real socket to a local server; each test bounds how long the failure may take.
"""

from __future__ import annotations

import threading
import time

import pytest

from clipmaker.errors import JOB_DEADLINE_EXCEEDED, SOURCE_TOO_SLOW, ClipError, JobCancelled
from clipmaker.net import AddressPolicy, pinned_client
from clipmaker.net.bounds import TransferGuard
from tests.support.targets import Reply, serve_target, wait_for

LOOPBACK = AddressPolicy(["127.0.0.1/32"])
DRIP = Reply(200, b"x" * 1000, drip_s=0.2)  # 5 bytes a second, for 200 s
STALL = Reply(200, b"x" * 10, size=1_000_000, drip_s=3600.0)  # headers, then nothing


def _get(url: str, guard: TransferGuard, timeout_s: float = 30.0) -> None:
    with pinned_client(LOOPBACK, guard=guard, timeout=timeout_s) as client:
        client.get(url)


def test_a_dripping_source_fails_as_too_slow_within_its_window() -> None:
    guard = TransferGuard(min_bytes_per_s=1000, window_s=1.0, tick_s=0.1)
    with serve_target("127.0.0.1", {"/drip": DRIP}) as target:
        started = time.monotonic()
        with pytest.raises(ClipError) as caught:
            _get(target.url("/drip"), guard)
        elapsed = time.monotonic() - started
    assert caught.value.code == SOURCE_TOO_SLOW
    assert elapsed < 3.0  # one window and a tick, not the 200 s the drip would take
    assert guard.error is caught.value


def test_a_fast_source_is_not_too_slow() -> None:
    guard = TransferGuard(min_bytes_per_s=1000, window_s=0.5, tick_s=0.1)
    body = b"y" * 5_000_000
    with (
        serve_target("127.0.0.1", {"/big": Reply(200, body)}) as target,
        pinned_client(LOOPBACK, guard=guard) as client,
    ):
        assert client.get(target.url("/big")).content == body
    assert guard.error is None


def test_a_stalled_read_stops_at_the_deadline() -> None:
    guard = TransferGuard.within(1.0, tick_s=0.1)
    with serve_target("127.0.0.1", {"/stall": STALL}) as target:
        started = time.monotonic()
        with pytest.raises(ClipError) as caught:
            _get(target.url("/stall"), guard)
        elapsed = time.monotonic() - started
    assert caught.value.code == JOB_DEADLINE_EXCEEDED
    assert 0.9 < elapsed < 2.5


def test_cancelling_stops_a_stalled_read_at_once() -> None:
    cancelled = threading.Event()

    def stop() -> None:
        if cancelled.is_set():
            raise JobCancelled("job")

    guard = TransferGuard(stop=stop, tick_s=0.1)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            _get(target.url("/stall"), guard, timeout_s=60)
        except BaseException as exc:
            errors.append(exc)

    with serve_target("127.0.0.1", {"/stall": STALL}) as target:
        thread = threading.Thread(target=read)
        thread.start()
        assert wait_for(lambda: target.requests == ["/stall"])  # the read is in flight, stalled
        cancelled.set()
        started = time.monotonic()
        thread.join(timeout=5)
        assert not thread.is_alive()
        assert time.monotonic() - started < 1.0
    assert len(errors) == 1 and isinstance(errors[0], JobCancelled)


def test_without_a_guard_a_read_waits_for_the_socket_timeout() -> None:
    """The contrast: with no guard the same stall ends only at the read timeout."""
    with (
        serve_target("127.0.0.1", {"/stall": STALL}) as target,
        pinned_client(LOOPBACK, timeout=1.0) as client,
    ):
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            client.get(target.url("/stall"))
        assert type(caught.value).__name__ == "ReadTimeout"
        assert time.monotonic() - started >= 0.9
