"""``HttpSession``: one job's HTTP reading: a pooled client, headers, counter and block cache.

Every connection goes through a pinned client (``clipmaker.net.pinned_client``): the host is
resolved once, refused as ``source_forbidden`` unless the ``AddressPolicy`` allows it, and
connected to at exactly that address, on every redirect and every playlist segment. A
``TransferGuard`` stops reads on cancellation, past the job's deadline, or below a minimum
rate. Such a stop is remembered (``fatal_error``), so an error FFmpeg swallowed (a skipped HLS
segment) still ends the open with its real cause. Every request is bounded
(``Range: bytes=a-b``); a transfer that drops is resumed where it stopped.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from clipmaker.errors import INVALID_SOURCE_URL, SOURCE_UNREACHABLE, ClipError
from clipmaker.media.http.cache import BlockCache
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.http.errors import (
    BAD_URL,
    RangeNotSupported,
    Transient,
    http_error,
    int_or_none,
    parse_total,
    unreachable,
)
from clipmaker.media.http.sizes import (
    BLOCK_SIZE,
    CACHE_BYTES,
    MAX_REQUEST,
    RETRIES,
    RETRY_DELAYS_S,
)
from clipmaker.net import AddressPolicy, SourceForbidden, pinned_client, proxied_client
from clipmaker.net.bounds import TransferGuard

__all__ = ["HttpSession", "Resource"]

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.I)


@dataclass
class Resource:
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
        self._resources: dict[str, Resource] = {}
        self.cache = BlockCache(max(cache_bytes, 2 * MAX_REQUEST))
        self._plans: dict[str, list[tuple[int, int]]] = {}  # url -> block ranges [a, b)

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        self.cache.close()
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

    def resource(self, url: str) -> Resource:
        with self._lock:
            res = self._resources.get(url)
            if res is None:
                res = self._resources[url] = Resource(url)
            return res

    def plan(self, url: str, byte_ranges: list[tuple[int, int]]) -> None:
        """Say which bytes of ``url`` are still needed (``[first, stop)`` each, from the
        container's index): readers then fetch each range whole, in one request where it
        fits, and never read ahead past its end."""
        blocks = sorted(
            (first // BLOCK_SIZE, -(-stop // BLOCK_SIZE))
            for first, stop in byte_ranges
            if stop > first
        )
        merged: list[tuple[int, int]] = []
        for a, b in blocks:
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        with self._lock:
            self._plans[url] = merged

    def planned_stop(self, url: str, index: int) -> int | None:
        """Where a fetch from block ``index`` should stop (exclusive) under the plan for
        ``url``: the end of the planned range holding it; None outside the plan (the reader's
        own read-ahead then applies: a demuxer's detours are its business)."""
        with self._lock:
            plan = self._plans.get(url)
        if plan is None:
            return None
        for a, b in plan:
            if a <= index < b:
                return b
        return None

    # -- requests -------------------------------------------------------------------------

    def fetch_range(self, res: Resource, first: int, last: int) -> bytes:
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
            except Transient as exc:
                got += exc.partial
                if len(got) >= want:
                    return bytes(got[:want])
                if attempt >= RETRIES:
                    if isinstance(exc.cause, ClipError):  # still a 5xx
                        raise exc.cause from None
                    raise unreachable(exc.cause, res.url, self.timeout_s) from exc.cause
                time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                attempt += 1
                continue
            if whole:  # a 200 with the complete (small) resource
                return body[first : last + 1]
            got += body
            return bytes(got)

    def _request_range(self, res: Resource, first: int, last: int) -> tuple[bytes, bool]:
        headers = {"Range": f"bytes={first}-{last}"}
        received = bytearray()
        self.counter.request()
        try:
            with self._client.stream("GET", res.url, headers=headers) as response:
                status = response.status_code
                if status == 416:
                    # asked at or past the end (size unknown, or the file shrank)
                    size = parse_total(response.headers.get("Content-Range"))
                    if size is not None:
                        res.size = size
                    return b"", False
                if status >= 400:
                    self.error_statuses.append(status)
                    if status >= 500:  # a CDN's passing fault: worth another try
                        raise Transient(http_error(response, res.url), received)
                    raise http_error(response, res.url)
                if status == 200:
                    length = int_or_none(response.headers.get("Content-Length"))
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
                    raise Transient(httpx.ReadError("the transfer ended early"), received)
                return bytes(received[:expected]), False
        except (httpx.TransportError, httpx.StreamError) as exc:
            if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
                raise ClipError(INVALID_SOURCE_URL, BAD_URL) from exc
            raise Transient(exc, received) from exc

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
                    raise ClipError(INVALID_SOURCE_URL, BAD_URL) from exc
                if attempt >= RETRIES:
                    raise unreachable(exc, url, self.timeout_s) from exc
                time.sleep(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)])
                attempt += 1
                continue
            if response.status_code >= 400:
                self.error_statuses.append(response.status_code)
                error = http_error(response, url)
                response.close()
                raise error
            return response
