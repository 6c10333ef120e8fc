"""Read media over HTTP ourselves, so every byte is bounded, cached and counted.

FFmpeg's own http protocol reads with ranges it abandons (open-ended ``Range: bytes=N-``, or
10 MiB chunks with ``request_size``): the server pushes data until FFmpeg hangs up, and what
the network carried is unknown. Here PyAV reads
through Python file objects instead:

- ``RangeReader``: a seekable file over one URL that fetches bounded ``Range: bytes=a-b``
  requests. Read-ahead starts small (a seek should waste little), grows (x1.5) while reads stay
  sequential, up to ``MAX_REQUEST`` (10 MiB, the chunk size that keeps hosts such as YouTube
  from throttling). Fetched blocks go into a small cache shared by every reader of the
  session, so a demuxer's back-and-forth near one position, or a second open of the same
  source, does not fetch again.
- ``HttpSession.io_open``: PyAV's ``io_open`` hook, so the nested opens of the HLS demuxer
  (playlists, init sections, segments, ``EXT-X-BYTERANGE`` parts) go through the same counted
  readers and the same headers. Only http(s) URLs are opened: a playlist can't point FFmpeg
  at local files.
- ``ByteCounter``: the running total of body bytes received, shared by all readers of a job.
  Everything that came over the network counts, including read-ahead nobody used.
- Addresses and bounds: every connection goes through a pinned client
  (``clipmaker.net.pinned_client``): the host is resolved once, refused as
  ``source_forbidden`` unless the ``AddressPolicy`` allows it, and connected to at exactly that
  address, on every redirect and every playlist segment. A ``TransferGuard`` stops reads on
  cancellation, past the job's deadline, or below a minimum rate. Such a stop is remembered by
  the session (``fatal_error``), so an error FFmpeg swallowed (a skipped HLS segment) still
  ends the open with its real cause. Network failures have fixed messages: nothing a server
  says (reason phrases, headers) is echoed back to the user.
- ``SourceOpener``: what a job hands to ``cut``: a zero-argument callable returning a context
  manager that yields an opened ``InputContainer``. It tries range reading and falls back to
  downloading the whole source into scratch (``full_fetch``) when the server ignores Range
  or the source is live; ``fetch_path`` then says which ("range", "full" or "local").

Sources that are HLS playlists (also the playlists ``fetch.resolve`` builds for DASH formats
that are lists of fragments, passed as ``data:`` URLs) are opened with FFmpeg's hls demuxer,
reading through ``io_open``. A DASH manifest itself can't be opened: PyAV's FFmpeg is built
without libxml2, so it has no dash demuxer; ``fetch.resolve`` turns manifests into inputs.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote_to_bytes, urlsplit

import av
import httpx

from clipmaker.errors import INVALID_SOURCE_URL, NOT_MEDIA, SOURCE_UNREACHABLE, ClipError
from clipmaker.net import AddressPolicy, SourceForbidden, pinned_client, proxied_client
from clipmaker.net.bounds import TransferGuard

if TYPE_CHECKING:
    from av.container import InputContainer

__all__ = [
    "BLOCK_SIZE",
    "ByteCounter",
    "FetchPath",
    "HLS_PLAYLIST_MIME",
    "HttpSession",
    "MAX_REQUEST",
    "OpenedSource",
    "SourceOpener",
    "RangeNotSupported",
    "RangeReader",
    "StreamReader",
    "describe_location",
    "full_fetch",
    "hls_data_url",
    "is_playlist_data",
    "is_url",
]

FetchPath = Literal["range", "full", "local"]

BLOCK_SIZE = 64 * 1024  # cache granularity; requests start and end on block bounds
FIRST_REQUEST = 256 * 1024  # the first request of a reader (headers, the start of an index)
SEEK_REQUEST = 128 * 1024  # after a seek: small, in case the demuxer jumps again
# No single request asks for more. 10 MiB is yt-dlp's http_chunk_size for YouTube: googlevideo
# throttles or refuses (403) larger and open-ended ranges (yt-dlp #17612, #10178; cobalt #1230),
# and every request here is bounded (``Range: bytes=a-b``, never ``a-``), so none exceeds it.
MAX_REQUEST = 10 * 1024 * 1024
# A request that continues where the reader's last one ended grows by this factor. Measured on
# 18 clips (10-60 s) of a 10-minute 320x240 MP4: x2 fetched 1.48x the clip's packets in 5
# requests a clip, x1.5 1.24x in 6.5 (the last request overshoots the clip's end).
GROWTH = 1.5
CACHE_BYTES = 32 * 1024 * 1024  # blocks kept per session, least recently used dropped
SEGMENT_REQUEST = MAX_REQUEST  # nested opens (segments) are read whole: ask for it at once
RETRIES = 2  # extra attempts after a connection error, a dropped or stalled transfer
RETRY_DELAYS_S = (0.1, 0.4)
PYAV_BUFFER = 64 * 1024  # PyAV's read size from our file objects
HLS_PLAYLIST_MIME = "application/vnd.apple.mpegurl"
DEFAULT_MAX_FULL_FETCH = 8 * 1024**3  # a full download beyond this is refused (8 GiB)

# The hls demuxer must not try FFmpeg's keep-alive path (it needs FFmpeg's http protocol and
# asserts without it), nor open segments ahead in parallel. Segment names and extensions are
# whatever the host uses (DASH fragments are often .m4s or have none): the extension checks
# exist to stop playlists from reading local files, which our io_open never opens anyway.
HLS_OPTIONS = {
    "http_persistent": "0",
    "http_multiple": "0",
    "allowed_extensions": "ALL",
    "extension_picky": "0",
}
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)


# ---------------------------------------------------------------------------------------------
# Names and counting


def is_url(location: str | Path) -> bool:
    """True for http(s) URLs; anything else is read as a local path."""
    return isinstance(location, str) and location.lower().startswith(("http://", "https://"))


def is_playlist_data(location: str | Path) -> bool:
    """True for a ``data:`` URL holding an HLS playlist (what ``fetch`` builds for DASH)."""
    return isinstance(location, str) and location[:40].lower().startswith(
        ("data:" + HLS_PLAYLIST_MIME + ";", "data:" + HLS_PLAYLIST_MIME + ",")
    )


_SOURCE_COMMENT = "# clipmaker-source: "


def describe_location(location: str | Path) -> str:
    """A short, safe name for messages: a URL without its query (signed URLs carry secrets)."""
    if is_playlist_data(location):
        text = _decode_data_url(str(location)).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.startswith(_SOURCE_COMMENT):
                return line[len(_SOURCE_COMMENT) :].strip()
        return "an HLS playlist"
    if is_url(location):
        parts = urlsplit(str(location))
        path = parts.path if len(parts.path) <= 60 else parts.path[:57] + "..."
        return f"{parts.scheme}://{parts.netloc}{path}"
    return str(location)


def hls_data_url(playlist: str) -> str:
    """A ``data:`` URL carrying ``playlist`` (an HLS media playlist with absolute URLs)."""
    encoded = base64.b64encode(playlist.encode("utf-8")).decode("ascii")
    return f"data:{HLS_PLAYLIST_MIME};base64,{encoded}"


def _decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if header.lower().endswith(";base64"):
        return base64.b64decode(payload)
    return unquote_to_bytes(payload)


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


class RangeNotSupported(ClipError):
    """The server answered a ranged request with the whole resource (200): no Range support."""

    def __init__(self, url: str) -> None:
        super().__init__(SOURCE_UNREACHABLE, "the source server does not support range requests")
        self.url = url


# ---------------------------------------------------------------------------------------------
# The session: one HTTP client, headers, counter and block cache for everything a job reads


@dataclass
class _Resource:
    """What we know about one URL: its size and whether it honours Range."""

    url: str
    size: int | None = None  # None: not known yet (or the server won't say)
    ranges: bool | None = None  # None: not asked yet


class HttpSession:
    """HTTP reading for one job: a pooled client, the headers the host expects, the byte
    counter and a cache of fetched blocks shared by every reader (re-opens included).

    Thread-safe: readers of different sources (video and audio) may run in parallel.

    ``policy`` says which addresses may be connected to (default: ``AddressPolicy.from_env()``,
    public addresses unless ``CLIPMAKER_ALLOWED_SOURCE_NETWORKS`` says more); ``guard`` bounds
    the reads (cancellation, deadline, minimum rate). A test ``transport`` replaces both.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        counter: ByteCounter | None = None,
        timeout_s: float = 30.0,
        cache_bytes: int = CACHE_BYTES,
        transport: httpx.BaseTransport | None = None,
        policy: AddressPolicy | None = None,
        guard: TransferGuard | None = None,
        proxy: str | None = None,
    ) -> None:
        self.counter = counter if counter is not None else ByteCounter()
        self.timeout_s = timeout_s
        clean = {
            str(k): str(v)
            for k, v in (headers or {}).items()
            if not any(c in str(k) + str(v) for c in "\r\n")
        }
        # Media must arrive as stored: a compressed answer to a Range request is ambiguous.
        if not any(k.lower() == "accept-encoding" for k in clean):
            clean["Accept-Encoding"] = "identity"
        self.headers = clean
        self.policy = policy if policy is not None else AddressPolicy.from_env()
        self.guard = guard
        self._refusal: ClipError | None = None
        # statuses >= 400 the source answered: a 403/410 on a URL that worked before means it
        # expired (googlevideo URLs do after hours), which the caller fixes by resolving again
        self.error_statuses: list[int] = []
        options = {
            "headers": clean,
            "timeout": httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
            "follow_redirects": True,
        }
        if transport is not None:
            self._client = httpx.Client(transport=transport, **options)  # type: ignore[arg-type]
        elif proxy:  # the deployment's own: googlevideo URLs only work from the IP that
            # extracted them, so media goes the way yt-dlp went (clipmaker.net.proxied_client)
            self._client = proxied_client(self.policy, proxy, **options)  # type: ignore[arg-type]
        else:
            self._client = pinned_client(self.policy, guard=guard, **options)
        self._lock = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._blocks: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cached = 0
        self._cache_limit = max(cache_bytes, 2 * MAX_REQUEST)
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._blocks.clear()
            self._cached = 0
        self._client.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fatal_error(self) -> BaseException | None:
        """Why this session must not go on, if it must not: a forbidden address met on any
        read, or the guard's stop (cancelled, deadline, too slow). Callers raise it in place
        of whatever FFmpeg made of the failed read."""
        if self._refusal is not None:
            return self._refusal
        return self.guard.error if self.guard is not None else None

    def _check(self) -> None:
        error = self.fatal_error()
        if error is not None:
            raise error
        if self.guard is not None:
            self.guard.check()

    # -- resources and cache --------------------------------------------------------------

    def resource(self, url: str) -> _Resource:
        with self._lock:
            res = self._resources.get(url)
            if res is None:
                res = self._resources[url] = _Resource(url)
            return res

    def _get_block(self, url: str, index: int) -> bytes | None:
        with self._lock:
            key = (url, index)
            data = self._blocks.get(key)
            if data is not None:
                self._blocks.move_to_end(key)
            return data

    def _has_block(self, url: str, index: int) -> bool:
        with self._lock:
            return (url, index) in self._blocks

    def _put_blocks(self, url: str, first_index: int, data: bytes) -> None:
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
            while self._cached > self._cache_limit and self._blocks:
                _, dropped = self._blocks.popitem(last=False)
                self._cached -= len(dropped)

    # -- requests -------------------------------------------------------------------------

    def fetch_range(self, res: _Resource, first: int, last: int) -> bytes:
        """Bytes ``first..last`` (inclusive) of ``res``: one bounded request, whole body read.

        Learns the size from Content-Range. Raises ``RangeNotSupported`` when the server
        answers 200 with more than was asked for (it ignores Range); a 200 whose body is no
        bigger than the request is the whole resource and is accepted. A transfer that drops
        is resumed where it stopped (``RETRIES`` times); received bytes always count.
        """
        want = last - first + 1
        got = bytearray()
        attempt = 0
        while True:
            self._check()
            start = first + len(got)
            try:
                body, whole = self._request_range(res, start, last)
            except SourceForbidden as exc:
                self._refusal = exc
                raise
            except _Transient as exc:
                got += exc.partial
                if len(got) >= want:
                    return bytes(got[:want])
                if attempt >= RETRIES:
                    if isinstance(exc.cause, ClipError):  # still a 5xx
                        raise exc.cause from None
                    raise _unreachable(exc.cause, res.url, self.timeout_s) from exc.cause
                time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                attempt += 1
                continue
            if whole:  # a 200 with the complete (small) resource
                return body[first : last + 1]
            got += body
            return bytes(got)

    def _request_range(self, res: _Resource, first: int, last: int) -> tuple[bytes, bool]:
        headers = {"Range": f"bytes={first}-{last}"}
        received = bytearray()
        self.counter.request()
        try:
            with self._client.stream("GET", res.url, headers=headers) as response:
                status = response.status_code
                if status == 416:
                    # asked at or past the end (size unknown, or the file shrank)
                    size = _parse_total(response.headers.get("Content-Range"))
                    if size is not None:
                        res.size = size
                    return b"", False
                if status >= 400:
                    self.error_statuses.append(status)
                    if status >= 500:  # a CDN's passing fault: worth another try
                        raise _Transient(_http_error(response, res.url), received)
                    raise _http_error(response, res.url)
                if status == 200:
                    length = _int_or_none(response.headers.get("Content-Length"))
                    if first != 0 or length is None or length > last - first + 1:
                        res.ranges = False
                        raise RangeNotSupported(res.url)
                    for chunk in response.iter_raw():
                        received += chunk
                        self.counter.add(len(chunk))
                    res.size = len(received)
                    res.ranges = False
                    return bytes(received), True
                if status != 206:
                    raise ClipError(
                        SOURCE_UNREACHABLE,
                        f"the source server answered HTTP {status} to a range request",
                    )
                content_range = response.headers.get("Content-Range")
                match = _CONTENT_RANGE.match(content_range or "")
                if match is None or int(match.group(1)) != first:
                    raise ClipError(
                        SOURCE_UNREACHABLE,
                        f"the source server answered with the wrong byte range (for bytes "
                        f"{first}-{last})",
                    )
                res.ranges = True
                if match.group(3) != "*":
                    res.size = int(match.group(3))
                for chunk in response.iter_raw():
                    received += chunk
                    self.counter.add(len(chunk))
                expected = int(match.group(2)) - first + 1
                if len(received) < expected:
                    raise _Transient(httpx.ReadError("the transfer ended early"), received)
                return bytes(received[:expected]), False
        except (httpx.TransportError, httpx.StreamError) as exc:
            if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
                raise ClipError(INVALID_SOURCE_URL, _BAD_URL) from exc
            raise _Transient(exc, received) from exc

    def open_stream(self, url: str) -> httpx.Response:
        """A plain GET (no Range) whose body the caller reads; retries the connection."""
        attempt = 0
        while True:
            self._check()
            self.counter.request()
            try:
                request = self._client.build_request("GET", url)
                response = self._client.send(request, stream=True)
            except SourceForbidden as exc:
                self._refusal = exc
                raise
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
                    raise ClipError(INVALID_SOURCE_URL, _BAD_URL) from exc
                if attempt >= RETRIES:
                    raise _unreachable(exc, url, self.timeout_s) from exc
                time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                attempt += 1
                continue
            if response.status_code >= 400:
                self.error_statuses.append(response.status_code)
                error = _http_error(response, url)
                response.close()
                raise error
            return response

    # -- readers --------------------------------------------------------------------------

    def reader(
        self,
        url: str,
        *,
        start: int = 0,
        end: int | None = None,
        first_request: int = FIRST_REQUEST,
    ) -> RangeReader | StreamReader:
        """A reader over ``url`` (bytes ``start..end-1``): ranged when the server allows,
        else a plain streaming read."""
        res = self.resource(url)
        if res.ranges is False:
            return StreamReader(self, url, start=start, end=end)
        try:
            return RangeReader(self, url, start=start, end=end, first_request=first_request)
        except RangeNotSupported:
            return StreamReader(self, url, start=start, end=end)

    def io_open(self, url: str, flags: int, options: Mapping[str, object]) -> io.RawIOBase:
        """PyAV's ``io_open``: nested opens by the hls/dash demuxers, through our readers.

        FFmpeg passes the byte range of an ``EXT-X-BYTERANGE`` segment as the http options
        ``offset`` and ``end_offset``; they are honoured. Writing, and any scheme but http(s),
        is refused: a playlist must not make FFmpeg read local files.
        """
        if flags & 2:  # AVIO_FLAG_WRITE
            raise PermissionError(f"refusing to open {describe_location(url)} for writing")
        if is_playlist_data(url):
            return io.BytesIO(_decode_data_url(url))
        if not is_url(url):
            raise PermissionError(f"refusing to open {describe_location(url)}: not http(s)")
        start = _int_or_none(options.get("offset")) or 0
        end = _int_or_none(options.get("end_offset"))
        if end is not None and end <= start:
            end = None
        return self.reader(url, start=start, end=end, first_request=SEGMENT_REQUEST)


class _Transient(Exception):
    """A connection or transfer failure worth retrying; carries the bytes already received."""

    def __init__(self, cause: Exception, partial: bytes | bytearray) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.partial = bytes(partial)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None and str(value).strip() != "" else None
    except ValueError:
        return None


def _parse_total(content_range: str | None) -> int | None:
    if not content_range or "/" not in content_range:
        return None
    return _int_or_none(content_range.rsplit("/", 1)[1])


_BAD_URL = "the source URL cannot be fetched"


def _http_error(response: httpx.Response, url: str) -> ClipError:
    """The status code only: a reason phrase is the server's own text."""
    return ClipError(
        SOURCE_UNREACHABLE, f"the source server refused the request (HTTP {response.status_code})"
    )


def _unreachable(exc: BaseException, url: str, timeout_s: float) -> ClipError:
    """One fixed message per kind of failure: never the socket's or the server's words."""
    if isinstance(exc, httpx.TimeoutException):
        return ClipError(SOURCE_UNREACHABLE, f"the source did not answer within {timeout_s:g} s")
    if isinstance(exc, httpx.ConnectError):
        return ClipError(SOURCE_UNREACHABLE, "could not connect to the source server")
    return ClipError(SOURCE_UNREACHABLE, "the connection to the source server failed")


# ---------------------------------------------------------------------------------------------
# Readers


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
            block = self._session._get_block(self.url, index)
            if block is None:
                self._fill(index)
                block = self._session._get_block(self.url, index)
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
        limit = self._res.size
        if self._end is not None:
            limit = self._end if limit is None else min(limit, self._end)
        if limit is not None:
            stop = min(stop, -(-limit // BLOCK_SIZE))
        # never fetch again what the cache already holds
        for k in range(index + 1, stop):
            if self._session._has_block(self.url, k):
                stop = k
                break
        stop = max(stop, index + 1)
        last_byte = stop * BLOCK_SIZE - 1
        if self._res.size is not None:
            last_byte = min(last_byte, self._res.size - 1)
        if self._res.size is not None and first_byte >= self._res.size:
            self._session._put_blocks(self.url, index, b"")
            return
        data = self._session.fetch_range(self._res, first_byte, last_byte)
        self._session._put_blocks(self.url, index, data)
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
            raise _unreachable(exc, self.url, self._session.timeout_s) from exc
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


# ---------------------------------------------------------------------------------------------
# Full download


def full_fetch(
    url: str,
    dest: Path,
    *,
    headers: Mapping[str, str] | None = None,
    counter: ByteCounter,
    progress: Callable[[int, int | None], None] | None = None,
    max_bytes: int = DEFAULT_MAX_FULL_FETCH,
    timeout_s: float = 30.0,
    session: HttpSession | None = None,
    policy: AddressPolicy | None = None,
    guard: TransferGuard | None = None,
) -> Path:
    """Download all of ``url`` into ``dest`` (streamed, counted); returns ``dest``.

    Written to a ``.part`` file renamed into place when complete. ``progress(done, total)``
    is called as bytes arrive (``total`` None when the server does not say); if it raises,
    the download stops and nothing is left at ``dest``. More than ``max_bytes`` (a live
    stream never ends) is a ``ClipError``. Without a ``session``, one is made with ``policy``
    and ``guard`` (see ``HttpSession``).
    """
    own = session is None
    sess = session or HttpSession(
        headers=headers, counter=counter, timeout_s=timeout_s, policy=policy, guard=guard
    )
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    try:
        response = sess.open_stream(url)
        try:
            total = _int_or_none(response.headers.get("Content-Length"))
            if total is not None and total > max_bytes:
                raise ClipError(
                    SOURCE_UNREACHABLE,
                    f"the source is {total} bytes, more than the {max_bytes} we download whole",
                )
            done = 0
            with part.open("wb") as fh:
                for chunk in response.iter_raw():
                    sess.counter.add(len(chunk))
                    fh.write(chunk)
                    done += len(chunk)
                    if done > max_bytes:
                        raise ClipError(
                            SOURCE_UNREACHABLE,
                            f"the source goes on past {max_bytes} bytes (a live stream?); "
                            "not downloading it whole",
                        )
                    if progress is not None:
                        progress(done, total)
            if total is not None and done < total:
                raise ClipError(
                    SOURCE_UNREACHABLE,
                    f"the download of the source stopped at {done} of {total} bytes",
                )
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise _unreachable(exc, url, sess.timeout_s) from exc
        finally:
            response.close()
        part.replace(dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        if own:
            sess.close()
    return dest


# ---------------------------------------------------------------------------------------------
# Opening sources


@dataclass(frozen=True)
class OpenedSource:
    container: InputContainer
    fetch_path: FetchPath  # "range": partial reads; "full": downloaded whole; "local": a file
    local_path: Path | None  # the downloaded copy (fetch_path "full") or the local file


# Demuxers that open further files named inside the input. On a local file (an upload, a full
# download) those names would be local paths: a crafted playlist could read other files.
_NESTING_DEMUXERS = frozenset({"hls", "applehttp", "concat", "dash", "image2"})


def _refuse_local_playlist(container: InputContainer, location: str | Path) -> InputContainer:
    name = container.format.name
    if set(name.split(",")) & _NESTING_DEMUXERS:
        container.close()
        raise ClipError(
            NOT_MEDIA,
            f"{describe_location(location)} is a playlist or list of files ({name}), "
            "not a media file",
        )
    return container


class SourceOpener:
    """Opens one source, as often as asked: ``with opener() as container: ...``.

    The first open decides how the source is read and records it in ``fetch_path``: a local
    file ("local"); range reads over http(s), HLS playlists included ("range"); or, when the
    server ignores Range or the source is live, a download into ``scratch_dir`` that later
    opens reuse ("full"). One HTTP session (connections, block cache, counter) serves every
    open. ``close()`` (or ``with opener:``) releases it and removes a download made into a
    temporary directory (a given ``scratch_dir`` is the caller's to clean).

    ``policy`` and ``guard`` go to the HTTP session (see ``HttpSession``). If a read met a
    forbidden address or the guard stopped it, ``open()`` raises that, whatever FFmpeg did
    with the failed read (the hls demuxer skips a segment it can't open).
    """

    def __init__(
        self,
        location: str | Path,
        *,
        headers: Mapping[str, str] | None = None,
        counter: ByteCounter,
        scratch_dir: Path | None = None,
        timeout_s: float = 30.0,
        live: bool = False,
        max_full_fetch_bytes: int = DEFAULT_MAX_FULL_FETCH,
        policy: AddressPolicy | None = None,
        guard: TransferGuard | None = None,
        proxy: str | None = None,
    ) -> None:
        self.location = location
        self.policy = policy
        self.guard = guard
        self.proxy = proxy
        self.headers = dict(headers or {})
        self.counter = counter
        self.scratch_dir = Path(scratch_dir) if scratch_dir is not None else None
        self.timeout_s = timeout_s
        self.live = live
        self.max_full_fetch_bytes = max_full_fetch_bytes
        self.fetch_path: FetchPath | None = None
        self.local_path: Path | None = None
        self._session: HttpSession | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SourceOpener({describe_location(self.location)!r}, fetch_path={self.fetch_path!r})"

    def __call__(self) -> contextlib.AbstractContextManager[InputContainer]:
        return self._container()

    @contextlib.contextmanager
    def _container(self) -> Iterator[InputContainer]:
        with self.open() as opened:
            yield opened.container

    @contextlib.contextmanager
    def open(self) -> Iterator[OpenedSource]:
        """Open the source; yields an ``OpenedSource``. Errors are ``ClipError``s."""
        try:
            container, fetch_path = self._open()
        except BaseException as exc:
            self._raise_fatal(exc)
            raise
        try:
            from clipmaker.media.probe import check_container

            check_container(container, self.location)
            yield OpenedSource(container, fetch_path, self.local_path)
        except BaseException as exc:
            self._raise_fatal(exc)
            raise
        finally:
            container.close()
        self._raise_fatal(None)

    def _raise_fatal(self, current: BaseException | None) -> None:
        """Raise the session's fatal error (forbidden address, cancelled, deadline, too slow)
        in place of ``current``; FFmpeg reports those as a read error, or not at all."""
        with self._lock:
            session = self._session
        fatal = session.fatal_error() if session is not None else None
        if fatal is None and self.guard is not None:
            fatal = self.guard.error
        if fatal is not None and fatal is not current:
            raise fatal from current

    def session(self) -> HttpSession:
        with self._lock:
            if self._session is None:
                self._session = HttpSession(
                    headers=self.headers,
                    counter=self.counter,
                    timeout_s=self.timeout_s,
                    policy=self.policy,
                    guard=self.guard,
                    proxy=self.proxy,
                )
            return self._session

    @property
    def error_statuses(self) -> list[int]:
        """HTTP statuses >= 400 the source answered so far (see ``HttpSession``)."""
        with self._lock:
            return list(self._session.error_statuses) if self._session is not None else []

    def close(self) -> None:
        with self._lock:
            session, self._session = self._session, None
            tempdir, self._tempdir = self._tempdir, None
        if session is not None:
            session.close()
        if tempdir is not None:
            tempdir.cleanup()

    def __enter__(self) -> SourceOpener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # how each kind of source is opened

    def _open(self) -> tuple[InputContainer, FetchPath]:
        from clipmaker.media.probe import check_location, media_error

        location = self.location
        if is_playlist_data(location):
            return self._av_open(io.BytesIO(_decode_data_url(str(location))), "range", format="hls")
        name = check_location(location)
        if not is_url(location):
            self.local_path = Path(name)
            self.fetch_path = "local"
            try:
                container = av.open(name, mode="r", options={"protocol_whitelist": "file"})
            except Exception as exc:
                raise media_error(exc, location, opening=True) from exc
            return _refuse_local_playlist(container, location), "local"
        url = name
        if self.fetch_path == "full" and self.local_path is not None:
            return self._av_open(str(self.local_path), "full")
        if self.live:
            return self._av_open(str(self._download(url)), "full")
        session = self.session()
        try:
            reader = RangeReader(session, url)
        except RangeNotSupported:
            return self._av_open(str(self._download(url)), "full")
        head = reader.read(1024)
        reader.seek(0)
        if head.lstrip(b"\xef\xbb\xbf").startswith(b"#EXTM3U"):
            reader.close()
            # the hls demuxer opens the playlist itself, through io_open (from the cache)
            return self._av_open(url, "range", format="hls")
        if _looks_like_mpd(head):
            reader.close()
            # PyAV's FFmpeg is built without libxml2: it has no DASH demuxer
            raise ClipError(
                NOT_MEDIA,
                f"{describe_location(url)} is a DASH manifest; resolve it first (fetch.resolve "
                "picks its video and audio streams)",
            )
        return self._av_open(reader, "range")

    def _av_open(
        self, source: str | io.RawIOBase, fetch_path: FetchPath, *, format: str | None = None
    ) -> tuple[InputContainer, FetchPath]:
        from clipmaker.media.probe import media_error

        options: dict[str, str] = {}
        io_open = None
        if isinstance(source, str) and not is_url(source):
            options["protocol_whitelist"] = "file"  # a downloaded copy: local reads only
        else:
            io_open = self.session().io_open
            if format == "hls":
                options.update(HLS_OPTIONS)
        try:
            container = av.open(
                source,
                mode="r",
                format=format,
                options=options,
                io_open=io_open,
                buffer_size=PYAV_BUFFER,
            )
        except Exception as exc:
            if isinstance(source, io.IOBase):
                source.close()
            raise media_error(exc, self.location, opening=True) from exc
        if isinstance(source, str) and not is_url(source):
            _refuse_local_playlist(container, self.location)
        self.fetch_path = fetch_path
        return container, fetch_path

    def _download(self, url: str) -> Path:
        if self.local_path is not None and self.local_path.exists():
            return self.local_path
        if self.scratch_dir is not None:
            directory = self.scratch_dir
        else:
            with self._lock:
                if self._tempdir is None:
                    self._tempdir = tempfile.TemporaryDirectory(prefix="clipmaker-fetch-")
                directory = Path(self._tempdir.name)
        suffix = Path(urlsplit(url).path).suffix
        if not re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix):
            suffix = ""
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        dest = directory / f"source-{digest}{suffix}"
        full_fetch(
            url,
            dest,
            counter=self.counter,
            max_bytes=self.max_full_fetch_bytes,
            session=self.session(),
        )
        self.local_path = dest
        self.fetch_path = "full"
        return dest


def _looks_like_mpd(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return text.startswith(b"<") and re.search(rb"<(?:\w+:)?MPD[\s>]", text) is not None
