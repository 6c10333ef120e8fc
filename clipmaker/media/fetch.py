"""From the URL a user pasted to one media URL that FFmpeg can read with Range requests.

Users paste page URLs (YouTube, Vimeo, ...) or direct links to files. yt-dlp knows how to turn
either into the URL of an actual media file plus the HTTP headers its host expects; we ask it
only for that (no download), and pick a single progressive format (one file, video and, when
offered, audio together) so that ``cut`` can seek inside it and read only the bytes of the clip.

Every failure becomes a ``ClipError`` a user can act on: a URL we won't fetch
(``invalid_source_url``), a host we can't reach (``source_unreachable``), a page without a
video (``not_media``). yt-dlp's messages are rewritten into plain words.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError

from clipmaker.errors import INVALID_SOURCE_URL, NOT_MEDIA, SOURCE_UNREACHABLE, ClipError

__all__ = ["ResolvedSource", "resolve"]

# Progressive (single-file, plain http/https) formats only: "b" is the best format with both
# video and audio; "bv*" the best with video, with or without audio. HLS/DASH manifests and
# fragmented formats are excluded because they can't be range-read as one file.
FORMAT_SPEC = "b[protocol~='^https?$']/bv*[protocol~='^https?$']"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PREFIX = re.compile(r"^(?:ERROR:\s*)?(?:\[[\w:.-]+\]\s*)?(?:[\w.-]+:\s+)?")
_CAUSED_BY = re.compile(r"\s*\(caused by .*\)\s*$", re.S)
_ADVICE = re.compile(
    r"[;.]?\s*(?:please report this issue|Use --list-formats|Confirm you are on the latest"
    r"|see\s+https://github\.com/yt-dlp).*$",
    re.I | re.S,
)


@dataclass(frozen=True)
class ResolvedSource:
    url: str  # what the user gave
    media_url: str  # the file FFmpeg should open
    http_headers: dict[str, str] = field(default_factory=dict)  # send these with every request
    title: str | None = None
    duration: float | None = None  # seconds, when the site says; None for direct links
    extractor: str = "generic"  # yt-dlp's extractor name, e.g. "youtube", "generic"
    format_id: str | None = None  # yt-dlp's id of the chosen format (for logs)


class _QuietLogger:
    """yt-dlp writes errors to stderr unless given a logger; we report them as ClipError."""

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        pass


def _check_url(url: str) -> str:
    text = url.strip()
    if not text:
        raise ClipError(INVALID_SOURCE_URL, "the source URL is empty")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError as exc:
        raise ClipError(INVALID_SOURCE_URL, f"{text!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = f"a {parts.scheme}: URL" if parts.scheme else f"{text!r} (no http:// or https://)"
        raise ClipError(
            INVALID_SOURCE_URL, f"only http:// and https:// URLs can be fetched, not {shown}"
        )
    if not parts.hostname or any(c.isspace() for c in text):
        raise ClipError(INVALID_SOURCE_URL, f"{text!r} is not a valid URL")
    del port
    return text


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps (yt-dlp nests network errors three deep)."""
    chain: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is seen for seen in chain) or len(chain) > 20:
            continue
        chain.append(current)
        if isinstance(current, DownloadError) and current.exc_info:
            todo.append(current.exc_info[1])
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return chain


def _clean(message: str) -> str:
    """yt-dlp's message without colour codes, 'ERROR:', '[extractor] id:' and CLI advice."""
    text = _ANSI.sub("", message).strip()
    text = _CAUSED_BY.sub("", text)
    text = _ADVICE.sub("", text)
    text = _PREFIX.sub("", text, count=1).strip()
    return text.rstrip(" .;") or "unknown error"


def _classify(exc: BaseException, url: str, timeout_s: float) -> ClipError:
    host = urlsplit(url).netloc
    chain = _causes(exc)
    for cause in chain:
        if isinstance(cause, YtdlpHTTPError):
            return ClipError(
                SOURCE_UNREACHABLE,
                f"{host} answered HTTP {cause.status} {cause.reason or ''}".strip(),
            )
    for cause in chain:
        if isinstance(cause, socket.gaierror):
            return ClipError(
                SOURCE_UNREACHABLE, f"could not find the host {host} (DNS lookup failed)"
            )
        if isinstance(cause, ConnectionRefusedError):
            return ClipError(SOURCE_UNREACHABLE, f"could not connect to {host}: connection refused")
        if isinstance(cause, TimeoutError):
            return ClipError(
                SOURCE_UNREACHABLE, f"{host} did not answer within {timeout_s:g} seconds"
            )
        if isinstance(cause, ssl.SSLError):
            return ClipError(SOURCE_UNREACHABLE, f"secure connection to {host} failed: {cause}")
        if isinstance(cause, ConnectionError):
            return ClipError(SOURCE_UNREACHABLE, f"the connection to {host} failed: {cause}")
    for cause in chain:
        if isinstance(cause, UnsupportedError):
            return ClipError(NOT_MEDIA, f"no video found at {url}")
        if isinstance(cause, ExtractorError) and "Requested format is not available" in str(cause):
            return ClipError(
                NOT_MEDIA,
                f"{url} offers no single-file video format (only streaming manifests or audio)",
            )
    # Anything else yt-dlp reports (private, removed, age-gated, geo-blocked, sign-in
    # required...) means the video can't be had from here.
    return ClipError(SOURCE_UNREACHABLE, _clean(str(exc)))


def _pick_entry(info: dict[str, Any], url: str) -> dict[str, Any]:
    """A single video from what yt-dlp returned (a playlist of one is accepted)."""
    if info.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in info.get("entries") or [] if e]
        if len(entries) != 1:
            raise ClipError(
                INVALID_SOURCE_URL,
                f"{url} is a playlist of {len(entries)} videos; give the URL of one video",
            )
        return entries[0]
    return info


def resolve(url: str, *, timeout_s: float = 30.0) -> ResolvedSource:
    """Ask yt-dlp which media file ``url`` stands for, without downloading it.

    Works for any page yt-dlp has an extractor for and for direct links to media files (its
    "generic" extractor). A direct link to something that is not media (a text file) can still
    resolve: ``probe``/``cut`` then say ``not_media``.
    """
    url = _check_url(url)
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
        "skip_download": True,
        "noplaylist": True,
        "socket_timeout": timeout_s,
        "format": FORMAT_SPEC,
        "cachedir": False,
    }
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = _pick_entry(ydl.extract_info(url, download=False) or {}, url)
            media_url = info.get("url")
            if not media_url:
                raise ClipError(NOT_MEDIA, f"no video found at {url}")
            headers = {str(k): str(v) for k, v in (info.get("http_headers") or {}).items()}
            # Sites that need cookies for the media request keep them in yt-dlp's jar,
            # not in http_headers.
            cookie = ydl.cookiejar.get_cookie_header(media_url)
            if cookie and "Cookie" not in headers:
                headers["Cookie"] = cookie
    except ClipError:
        raise
    except (yt_dlp.utils.YoutubeDLError, OSError) as exc:
        raise _classify(exc, url, timeout_s) from exc
    duration = info.get("duration")
    return ResolvedSource(
        url=url,
        media_url=media_url,
        http_headers=headers,
        title=info.get("title"),
        duration=float(duration) if isinstance(duration, int | float) else None,
        extractor=str(info.get("extractor") or info.get("extractor_key") or "generic").lower(),
        format_id=info.get("format_id"),
    )
