"""yt-dlp's failures as ``ClipError``s a user can act on, in plain words.

Why a site won't give the video (private, removed, rate limited...) gets its own code
(``youtube.extraction_error``). Network failures get fixed messages that echo nothing a server
said (reason phrases, ports); anything else is yt-dlp's message without its colour codes,
prefixes and command-line advice.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Sequence

import httpx
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.utils import ExtractorError, UnsupportedError

from clipmaker.errors import INVALID_SOURCE_URL, NOT_MEDIA, SOURCE_UNREACHABLE, ClipError
from clipmaker.media.youtube import causes, extraction_error

__all__ = ["classify"]

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PREFIX = re.compile(r"^(?:ERROR:\s*)?(?:\[[\w:.-]+\]\s*)?(?:[\w.-]+:\s+)?")
_CAUSED_BY = re.compile(r"\s*\(caused by .*\)\s*$", re.S)
_ADVICE = re.compile(
    r"[;.]?\s*(?:please report this issue|Use --list-formats|Confirm you are on the latest"
    r"|see\s+https://github\.com/yt-dlp).*$",
    re.I | re.S,
)


def _clean(message: str) -> str:
    """yt-dlp's message without colour codes, 'ERROR:', '[extractor] id:' and CLI advice."""
    text = _ANSI.sub("", message).strip()
    text = _CAUSED_BY.sub("", text)
    text = _ADVICE.sub("", text)
    text = _PREFIX.sub("", text, count=1).strip()
    return text.rstrip(" .;") or "unknown error"


def classify(
    exc: BaseException, url: str, timeout_s: float, statuses: Sequence[int] = ()
) -> ClipError:
    """A ``ClipError`` for what yt-dlp raised. Why a site won't give the video (private,
    removed, rate limited...) gets its own code (``youtube.extraction_error``). Network
    failures get fixed messages (the status code, never the reason phrase or the socket's
    words, which would tell an internal port's protocol)."""
    mapped = extraction_error(exc, statuses)
    if mapped is not None:
        return mapped
    chain = causes(exc, limit=20)
    for cause in chain:
        if isinstance(cause, YtdlpHTTPError):
            return ClipError(
                SOURCE_UNREACHABLE, f"the source server refused the request (HTTP {cause.status})"
            )
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return ClipError(SOURCE_UNREACHABLE, "the source host could not be found")
        if isinstance(cause, TimeoutError | httpx.TimeoutException):
            return ClipError(
                SOURCE_UNREACHABLE, f"the source did not answer within {timeout_s:g} seconds"
            )
        if isinstance(cause, ssl.SSLError):
            return ClipError(SOURCE_UNREACHABLE, "the secure connection to the source failed")
        if isinstance(cause, ConnectionError | httpx.ConnectError):
            return ClipError(SOURCE_UNREACHABLE, "could not connect to the source server")
        if isinstance(cause, httpx.TransportError):
            return ClipError(SOURCE_UNREACHABLE, "the connection to the source server failed")
    if "No suitable extractor" in str(exc):  # only some extractors are allowed here
        return ClipError(INVALID_SOURCE_URL, "this site is not supported by this service")
    for cause in chain:
        if isinstance(cause, UnsupportedError):
            return ClipError(NOT_MEDIA, f"no video found at {url}")
        if isinstance(cause, ExtractorError) and "Requested format is not available" in str(cause):
            return ClipError(
                NOT_MEDIA,
                f"{url} offers no video format we can read (only audio, or streaming "
                "protocols other than HTTP, HLS and DASH)",
            )
    # Anything else yt-dlp reports means the video can't be had from here.
    return ClipError(SOURCE_UNREACHABLE, _clean(str(exc)))
