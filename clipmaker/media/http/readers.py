"""File objects over HTTP for PyAV: ``RangeReader`` (seekable, bounded ranges) and
``StreamReader`` (a plain GET, for servers without Range); ``open_reader`` picks one, and
``nested_open`` is PyAV's ``io_open`` hook for the demuxers that open more files (HLS).

FFmpeg's own http protocol reads with ranges it abandons (open-ended ``Range: bytes=N-``), so
what the network carried is unknown. Here every read goes through the session: bounded,
cached, counted. Read-ahead starts small (a seek should waste little), grows (x1.5) while reads
stay sequential, up to ``MAX_REQUEST`` (10 MiB, the chunk size that keeps hosts such as YouTube
from throttling).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping

import httpx

from clipmaker.media.http.errors import RangeNotSupported, int_or_none, unreachable
from clipmaker.media.http.session import HttpSession
from clipmaker.media.http.sizes import (
    BLOCK_SIZE,
    FIRST_REQUEST,
    GROWTH,
    MAX_REQUEST,
    SEEK_REQUEST,
    SEGMENT_REQUEST,
)
from clipmaker.media.locations import (
    decode_data_url,
    describe_location,
    is_playlist_data,
    is_url,
)

__all__ = ["RangeReader", "StreamReader", "nested_open", "open_reader"]

IoOpen = Callable[[str, int, Mapping[str, object]], io.RawIOBase]


def open_reader(
    session: HttpSession,
    url: str,
    *,
    start: int = 0,
    end: int | None = None,
    first_request: int = FIRST_REQUEST,
) -> RangeReader | StreamReader:
    """A reader over ``url`` (bytes ``start..end-1``): ranged when the server allows,
    else a plain streaming read."""
    res = session.resource(url)
    if res.ranges is False:
        return StreamReader(session, url, start=start, end=end)
    try:
        return RangeReader(session, url, start=start, end=end, first_request=first_request)
    except RangeNotSupported:
        return StreamReader(session, url, start=start, end=end)


def nested_open(session: HttpSession) -> IoOpen:
    """PyAV's ``io_open`` for ``session``: nested opens by the hls demuxer, through our readers.

    FFmpeg passes the byte range of an ``EXT-X-BYTERANGE`` segment as the http options
    ``offset`` and ``end_offset``; they are honoured. Writing, and any scheme but http(s),
    is refused: a playlist must not make FFmpeg read local files.
    """

    def io_open(url: str, flags: int, options: Mapping[str, object]) -> io.RawIOBase:
        if flags & 2:  # AVIO_FLAG_WRITE
            raise PermissionError(f"refusing to open {describe_location(url)} for writing")
        if is_playlist_data(url):
            return io.BytesIO(decode_data_url(url))
        if not is_url(url):
            raise PermissionError(f"refusing to open {describe_location(url)}: not http(s)")
        start = int_or_none(options.get("offset")) or 0
        end = int_or_none(options.get("end_offset"))
        if end is not None and end <= start:
            end = None
        return open_reader(session, url, start=start, end=end, first_request=SEGMENT_REQUEST)

    return io_open


class RangeReader(io.RawIOBase):
    """A seekable, readable file over an http(s) URL, for ``av.open(reader)``.

    Reads are served from the session's block cache; a miss fetches one bounded range
    starting at the missing block: ``first_request`` bytes for the first fetch at the start,
    ``SEEK_REQUEST`` after a jump, ``GROWTH`` times more each time reads continue where the
    last fetch ended; never more than ``MAX_REQUEST``, never a block already cached.

    ``start``/``end`` make the reader a window onto bytes ``start..end-1`` of the resource
    (position 0 is ``start``), for segments given as byte ranges. Opening sends the first
    request (it tells the size and whether the server honours Range); raises
    ``RangeNotSupported`` if it does not, ``ClipError`` (``source_unreachable``) for HTTP
    errors and network failures.
    """

    def __init__(
        self,
        session: HttpSession,
        url: str,
        *,
        start: int = 0,
        end: int | None = None,
        first_request: int = FIRST_REQUEST,
    ) -> None:
        super().__init__()
        self._session = session
        self._res = session.resource(url)
        self.url = url
        self.name = describe_location(url)  # PyAV shows it; FFmpeg may guess a format by it
        self._base = start
        self._end = end
        self._pos = 0
        self._window = max(BLOCK_SIZE, first_request)
        self._next_block: int | None = None  # where this reader's last fetch ended
        self._first_request = True
        if self._res.size is None or self._res.ranges is None:
            self._fill(self._base // BLOCK_SIZE)  # learn the size and Range support now

    # io.RawIOBase interface

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    @property
    def size(self) -> int | None:
        """Bytes in this reader's window (None when the server won't say)."""
        total = self._res.size
        if self._end is not None:
            return self._end - self._base if total is None else min(self._end, total) - self._base
        return None if total is None else max(0, total - self._base)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            size = self.size
            if size is None:
                raise OSError("the size of this resource is unknown")
            pos = size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise OSError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        n = len(data)
        memoryview(buffer).cast("B")[:n] = data
        return n

    def readall(self) -> bytes:
        chunks = []
        while chunk := self.read(MAX_REQUEST):
            chunks.append(chunk)
        return b"".join(chunks)

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed RangeReader")
        limit = self.size
        if size is None or size < 0:
            return self.readall()
        if limit is not None:
            size = min(size, limit - self._pos)
        if size <= 0:
            return b""
        out = bytearray()
        while len(out) < size:
            absolute = self._base + self._pos
            index, offset = divmod(absolute, BLOCK_SIZE)
            block = self._session.cache.get(self.url, index)
            if block is None:
                self._fill(index)
                block = self._session.cache.get(self.url, index)
                if block is None:  # fetched but already evicted: tiny cache, read direct
                    block = self._fetch_direct(index)
            if offset >= len(block):
                break  # end of the resource
            take = block[offset : offset + size - len(out)]
            out += take
            self._pos += len(take)
            if len(block) < BLOCK_SIZE and offset + len(take) >= len(block):
                break  # the last (short) block
        return bytes(out)

    # fetching

    def _fill(self, index: int) -> None:
        if self._first_request:
            # the start of the resource (headers, an index) or of a segment: first_request;
            # anywhere else this is a seek
            window = self._window if index == self._base // BLOCK_SIZE else SEEK_REQUEST
            self._first_request = False
        elif index == self._next_block:
            window = min(int(self._window * GROWTH), MAX_REQUEST)
        else:
            window = SEEK_REQUEST
        self._window = window
        blocks = max(1, window // BLOCK_SIZE)
        first_byte = index * BLOCK_SIZE
        stop = index + blocks
        planned = self._session.planned_stop(self.url, index)
        if planned is not None:  # the index says what is needed: that range, or one block
            stop = min(planned, index + MAX_REQUEST // BLOCK_SIZE)
        limit = self._res.size
        if self._end is not None:
            limit = self._end if limit is None else min(limit, self._end)
        if limit is not None:
            stop = min(stop, -(-limit // BLOCK_SIZE))
        # never fetch again what the cache already holds
        for k in range(index + 1, stop):
            if self._session.cache.has(self.url, k):
                stop = k
                break
        stop = max(stop, index + 1)
        last_byte = stop * BLOCK_SIZE - 1
        if self._res.size is not None:
            last_byte = min(last_byte, self._res.size - 1)
        if self._res.size is not None and first_byte >= self._res.size:
            self._session.cache.put(self.url, index, b"")
            return
        data = self._session.fetch_range(self._res, first_byte, last_byte)
        self._session.cache.put(self.url, index, data)
        self._next_block = stop

    def _fetch_direct(self, index: int) -> bytes:
        first = index * BLOCK_SIZE
        last = first + BLOCK_SIZE - 1
        if self._res.size is not None:
            if first >= self._res.size:
                return b""
            last = min(last, self._res.size - 1)
        return self._session.fetch_range(self._res, first, last)


class StreamReader(io.RawIOBase):
    """A sequential reader over a plain GET, for servers without Range (counted too).

    Reads bytes ``start..end-1`` of the body: what comes before ``start`` is received and
    dropped (it still counts), and the connection is closed at ``end``. Not seekable.
    """

    def __init__(
        self, session: HttpSession, url: str, *, start: int = 0, end: int | None = None
    ) -> None:
        super().__init__()
        self._session = session
        self.url = url
        self.name = describe_location(url)
        self._response = session.open_stream(url)
        self._chunks = self._response.iter_raw()
        self._buffer = b""
        self._skip = start
        self._left = None if end is None else end - start
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def _next_chunk(self) -> bytes:
        try:
            chunk = next(self._chunks)
        except StopIteration:
            return b""
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise unreachable(exc, self.url, self._session.timeout_s) from exc
        self._session.counter.add(len(chunk))
        return chunk

    def read(self, size: int = -1) -> bytes:
        if self.closed:
            raise ValueError("read from a closed StreamReader")
        if size is None or size < 0:
            size = 1 << 62
        if self._left is not None:
            size = min(size, self._left)
        while self._skip > 0:
            chunk = self._buffer or self._next_chunk()
            self._buffer = b""
            if not chunk:
                return b""
            if len(chunk) > self._skip:
                self._buffer = chunk[self._skip :]
                self._skip = 0
            else:
                self._skip -= len(chunk)
        if size <= 0:
            return b""
        if not self._buffer:
            self._buffer = self._next_chunk()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        self._pos += len(data)
        if self._left is not None:
            self._left -= len(data)
            if self._left <= 0:
                self._response.close()
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
