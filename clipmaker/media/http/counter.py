"""``ByteCounter``: what a job received from the network, for its record and its bench."""

from __future__ import annotations

import threading

__all__ = ["ByteCounter"]


class ByteCounter:
    """Running total of body bytes received from the network; safe to share across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = 0
        self._requests = 0

    def add(self, n: int) -> None:
        with self._lock:
            self._total += n

    def request(self) -> None:
        with self._lock:
            self._requests += 1

    @property
    def total(self) -> int:
        """Bytes received so far."""
        with self._lock:
            return self._total

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (retries included)."""
        with self._lock:
            return self._requests

    def __repr__(self) -> str:
        return f"ByteCounter(total={self.total}, requests={self.requests})"
