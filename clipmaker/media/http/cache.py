"""``BlockCache``: fetched bytes kept in fixed blocks, least recently used dropped.

Shared by every reader of a session (video, audio, re-opens), so a demuxer's back-and-forth
near one position, or a second open of the same source, does not fetch again. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from clipmaker.media.http.sizes import BLOCK_SIZE

__all__ = ["BlockCache"]


class BlockCache:
    """Blocks of ``BLOCK_SIZE`` bytes by (url, index); an empty block marks a resource's end."""

    def __init__(self, limit: int) -> None:
        self._lock = threading.Lock()
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cached = 0
        self._limit = limit
        self._closed = False

    def close(self) -> None:
        """Drop everything; later ``put``s are ignored."""
        with self._lock:
            self._closed = True
            self._blocks.clear()
            self._cached = 0

    def get(self, url: str, index: int) -> bytes | None:
        with self._lock:
            key = (url, index)
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
            return data

    def has(self, url: str, index: int) -> bool:
        with self._lock:
            return (url, index) in self._blocks

    def put(self, url: str, first_index: int, data: bytes) -> None:
        """Store ``data`` (fetched from block ``first_index`` on) cut into blocks."""
        with self._lock:
            if self._closed:
                return
            if not data:  # the end of the resource: remember it as an empty block
                self._blocks[(url, first_index)] = b""
                return
            for k in range(0, len(data), BLOCK_SIZE):
                key = (url, first_index + k // BLOCK_SIZE)
                chunk = data[k : k + BLOCK_SIZE]
                old = self._blocks.pop(key, None)
                if old is not None:
                    self._cached -= len(old)
                self._blocks[key] = chunk
                self._cached += len(chunk)
            while self._cached > self._limit and self._blocks:
                _, dropped = self._blocks.popitem(last=False)
                self._cached -= len(dropped)
