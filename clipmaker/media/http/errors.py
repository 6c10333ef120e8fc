"""HTTP failures as ``ClipError``s with fixed words: nothing a server says is echoed back.

``Transient`` marks a failure worth another try (a dropped connection, a 5xx) and carries the
bytes already received, so a retry resumes where the transfer stopped.
"""

from __future__ import annotations

import httpx

from clipmaker.errors import SOURCE_UNREACHABLE, ClipError

__all__ = [
    "BAD_URL",
    "RangeNotSupported",
    "Transient",
    "http_error",
    "int_or_none",
    "parse_total",
    "unreachable",
]


class RangeNotSupported(ClipError):
    """The server answered a ranged request with the whole resource (200): no Range support."""

    def __init__(self, url: str) -> None:
        super().__init__(SOURCE_UNREACHABLE, "the source server does not support range requests")
        self.url = url


class Transient(Exception):
    """A connection or transfer failure worth retrying; carries the bytes already received."""

    def __init__(self, cause: Exception, partial: bytes | bytearray) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.partial = bytes(partial)


def int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value is not None and str(value).strip() != "" else None
    except ValueError:
        return None


def parse_total(content_range: str | None) -> int | None:
    if not content_range or "/" not in content_range:
        return None
    return int_or_none(content_range.rsplit("/", 1)[1])


BAD_URL = "the source URL cannot be fetched"


def http_error(response: httpx.Response, url: str) -> ClipError:
    """The status code only: a reason phrase is the server's own text."""
    return ClipError(
        SOURCE_UNREACHABLE, f"the source server refused the request (HTTP {response.status_code})"
    )


def unreachable(exc: BaseException, url: str, timeout_s: float) -> ClipError:
    """One fixed message per kind of failure: never the socket's or the server's words."""
    if isinstance(exc, httpx.TimeoutException):
        return ClipError(SOURCE_UNREACHABLE, f"the source did not answer within {timeout_s:g} s")
    if isinstance(exc, httpx.ConnectError):
        return ClipError(SOURCE_UNREACHABLE, "could not connect to the source server")
    return ClipError(SOURCE_UNREACHABLE, "the connection to the source server failed")


# ---------------------------------------------------------------------------------------------
# Readers
