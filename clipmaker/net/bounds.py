"""Bounds on how long and how slowly a job may read from the network.

A source that drips one byte a second never trips a per-read timeout, and a read blocked on a
silent server can't notice that its job was cancelled. ``TransferGuard`` is consulted by the
network streams of a pinned client (``clipmaker.net.client``) between socket reads and, while
a read waits, every ``tick_s``: so a cancelled job, a job past its deadline, or a source slower
than ``min_bytes_per_s`` stops within about a tick, wherever the read was (yt-dlp's page reads,
range requests, playlist segments), without waiting for a socket timeout.

The rate is judged per connection, over the last ``window_s`` seconds spent waiting for that
connection's bytes (time the caller spends elsewhere, decoding, does not count), so a fast
source read by a slow consumer is never "too slow", and a stalled one fails after one window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from clipmaker.errors import JOB_DEADLINE_EXCEEDED, SOURCE_TOO_SLOW, ClipError

__all__ = ["DEADLINE_MESSAGE", "TOO_SLOW_MESSAGE", "RateMeter", "TransferGuard"]

DEADLINE_MESSAGE = "the job ran past its deadline"
TOO_SLOW_MESSAGE = "the source sends data too slowly"


class TransferGuard:
    """What a job allows its network reads: a deadline, a minimum rate, a way to stop.

    ``deadline`` is a ``time.monotonic()`` instant (None: none). ``stop`` is called between
    reads and raises to end the job (the worker's raises ``JobCancelled`` once the job is
    cancelled or taken over). ``check`` raises the first bound that is crossed; once one has
    been, ``error`` keeps it, so a caller that saw only a side effect (a playlist segment that
    FFmpeg skipped) can still report the real cause.
    """

    def __init__(
        self,
        *,
        deadline: float | None = None,
        min_bytes_per_s: float = 0.0,
        window_s: float = 10.0,
        stop: Callable[[], None] | None = None,
        tick_s: float = 0.5,
    ) -> None:
        self.deadline = deadline
        self.min_bytes_per_s = max(0.0, float(min_bytes_per_s))
        self.window_s = max(0.1, float(window_s))
        self.stop = stop
        self.tick_s = max(0.01, float(tick_s))
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    @classmethod
    def within(cls, seconds: float | None, **kwargs: object) -> TransferGuard:
        """A guard whose deadline is ``seconds`` from now (None or <= 0: no deadline)."""
        deadline = time.monotonic() + seconds if seconds and seconds > 0 else None
        return cls(deadline=deadline, **kwargs)  # type: ignore[arg-type]

    @property
    def error(self) -> BaseException | None:
        with self._lock:
            return self._error

    def fail(self, error: BaseException) -> BaseException:
        """Remember the first reason the job must stop; returns the one to raise."""
        with self._lock:
            if self._error is None:
                self._error = error
            return self._error

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise if the job must stop: an earlier failure, cancellation, the deadline."""
        error = self.error
        if error is not None:
            raise error
        if self.stop is not None:
            try:
                self.stop()
            except BaseException as exc:
                raise self.fail(exc) from None
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise self.fail(ClipError(JOB_DEADLINE_EXCEEDED, DEADLINE_MESSAGE))

    def meter(self) -> RateMeter:
        """A rate meter for one connection."""
        return RateMeter(self)


class RateMeter:
    """Bytes received on one connection against the time spent waiting for them."""

    def __init__(self, guard: TransferGuard) -> None:
        self.guard = guard
        self._waited = 0.0  # seconds spent inside reads on this connection
        self._received = 0
        self._samples: deque[tuple[float, int]] = deque([(0.0, 0)])

    def record(self, waited_s: float, n_bytes: int) -> None:
        """Account one wait (a read that returned ``n_bytes``, or a tick with none); raises
        ``source_too_slow`` once a full window brought fewer bytes than the minimum rate."""
        self._waited += waited_s
        self._received += n_bytes
        self._samples.append((self._waited, self._received))
        guard = self.guard
        if guard.min_bytes_per_s <= 0:
            return
        horizon = self._waited - guard.window_s
        if horizon < 0:
            return
        # the newest sample at or before the horizon marks the window's start
        while len(self._samples) > 1 and self._samples[1][0] <= horizon:
            self._samples.popleft()
        start_time, start_bytes = self._samples[0]
        span = self._waited - start_time
        if span >= guard.window_s and self._received - start_bytes < guard.min_bytes_per_s * span:
            raise guard.fail(ClipError(SOURCE_TOO_SLOW, TOO_SLOW_MESSAGE))
