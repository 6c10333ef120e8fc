"""YouTube as it is since 2025: player clients, PO tokens, SABR, and what its errors mean.

yt-dlp's YouTube extractor asks one or more "player clients" (web, tv, mweb...) for a video's
formats. Since 2025 (yt-dlp #12482, #13681, #14744, #17666):

- some clients' https (adaptive, DASH-like) formats need a GVS PO token and answer 403
  without one; a token provider plugin (``bgutil-ytdlp-pot-provider``) supplies tokens;
- SABR-only sessions drop the adaptive URLs: only the progressive 360p format (itag 18)
  is left, and yt-dlp has no SABR downloader;
- URLs expire (``expire=`` in the query, about six hours), and googlevideo throttles or
  refuses ranges larger than about 10 MiB.

So a resolution is checked before it is used (``choose``): the preferred result is a separate
video-only plus audio-only pair whose URLs answer a one-byte range request. Otherwise the next
configured player client is tried; when none gives one, the best format that can be read (the
progressive one) is used, and ``ResolvedSource.note`` says which path was taken and why.

``extraction_error`` maps what the extractor raises to codes a client can branch on. It reads
the same signals as yt-dlp's own YouTube extractor raises (``GeoRestrictedError``,
``ExtractorError(expected=True)`` with YouTube's reason text, HTTP 429), so the mapping holds
for the real extractor and for the test stand-in alike; messages are fixed and never echo what
the site said.

Nothing here knows of HTTP routes, Redis or Ray: plain functions over ``ResolvedSource``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.utils import ExtractorError, GeoRestrictedError

from clipmaker.errors import (
    SOURCE_AGE_RESTRICTED,
    SOURCE_GEO_BLOCKED,
    SOURCE_LIVE,
    SOURCE_NEEDS_LOGIN,
    SOURCE_PRIVATE,
    SOURCE_RATE_LIMITED,
    SOURCE_REMOVED,
    SOURCE_UNREACHABLE,
    ClipError,
)
from clipmaker.media.resolved import ResolvedSource, url_expiry
from clipmaker.net import AddressPolicy, pinned_client, proxied_client
from clipmaker.net.bounds import TransferGuard

__all__ = [
    "MESSAGES",
    "YoutubeOptions",
    "choose",
    "extraction_error",
    "extractor_args",
    "is_youtube",
    "pot_provider_plugin_dir",
    "probe_status",
    "url_expiry",
]

# One fixed message per code: what the user can do, nothing the site said.
MESSAGES = {
    SOURCE_PRIVATE: "the video is private",
    SOURCE_AGE_RESTRICTED: "the video is age-restricted and needs a signed-in, age-verified "
    "account",
    SOURCE_GEO_BLOCKED: "the video is not available in the country this service fetches from",
    SOURCE_REMOVED: "the video has been removed or does not exist",
    SOURCE_LIVE: "the video is a live stream or has not started yet; clip it once it has ended",
    SOURCE_NEEDS_LOGIN: "the site requires a signed-in account to play this video",
    SOURCE_RATE_LIMITED: "the site is limiting requests from this service; try again later",
}


@dataclass(frozen=True)
class YoutubeOptions:
    """A deployment's YouTube settings (see the README's "Clipping from YouTube").

    ``player_clients``: yt-dlp player clients tried one after the other (empty: yt-dlp's own
    default set, once). ``pot_provider_url``: base URL of a bgutil HTTP PO-token provider.
    ``cookies_file``: a Netscape cookies file of an account. ``proxy``: the deployment's own
    proxy for yt-dlp's requests.
    """

    player_clients: tuple[str, ...] = ()
    pot_provider_url: str | None = None
    cookies_file: str | None = None
    proxy: str | None = None


def is_youtube(extractor: str | None) -> bool:
    """yt-dlp's YouTube extractors (``youtube``, ``youtube:tab``, a plugin's ``youtube+x``)."""
    name = (extractor or "").lower()
    return name == "youtube" or name.startswith(("youtube:", "youtube+"))


def extractor_args(options: YoutubeOptions, client: str | None) -> dict[str, dict[str, list[str]]]:
    """yt-dlp's ``extractor_args`` for one attempt with ``client`` (None: yt-dlp's default)."""
    args: dict[str, dict[str, list[str]]] = {}
    if client:
        args["youtube"] = {"player_client": [client]}
    if options.pot_provider_url:
        args["youtubepot-bgutilhttp"] = {"base_url": [options.pot_provider_url]}
    return args


def pot_provider_plugin_dir() -> str | None:
    """The folder to name in yt-dlp's plugin dirs so the installed bgutil provider loads.

    yt-dlp looks for ``yt_dlp_plugins`` one level below each plugin dir; pip installs the
    provider's package into site-packages, so the dir is site-packages' parent. None when the
    package is not installed.
    """
    try:
        site = Path(str(metadata.distribution("bgutil-ytdlp-pot-provider").locate_file("")))
    except metadata.PackageNotFoundError:
        return None
    return str(site.resolve().parent) if (site / "yt_dlp_plugins").is_dir() else None


# ---------------------------------------------------------------------------------------------
# Errors


def causes(exc: BaseException, limit: int = 30) -> list[BaseException]:
    """The exception and everything it wraps, outermost first: ``__cause__``,
    ``__context__``, yt-dlp's ``cause`` and ``exc_info`` (yt-dlp nests network errors three
    deep), each once, at most ``limit`` + 1 of them."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > limit:
            continue
        seen.append(current)
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            todo.append(exc_info[1])
        todo.extend([getattr(current, "cause", None), current.__cause__, current.__context__])
    return seen


# YouTube's reason texts (playabilityStatus), lower-cased, in the order they are checked: a
# private video's subreason says "Sign in if you've been granted access", so "private" comes
# before the sign-in cases; the bot check before the generic sign-in.
_REASONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (SOURCE_PRIVATE, ("private video", "this video is private")),
    (SOURCE_AGE_RESTRICTED, ("confirm your age", "age-restricted", "inappropriate for some")),
    (
        SOURCE_GEO_BLOCKED,
        ("not made this video available in your country", "not available from your location"),
    ),
    (SOURCE_LIVE, ("live event will begin", "premieres in", "this live event", "is live now")),
    (
        SOURCE_RATE_LIMITED,
        ("try again later", "rate-limited", "rate limited", "too many requests"),
    ),
    # YouTube's bot check: the remedy is an account's cookies or a PO token, not waiting
    (SOURCE_NEEDS_LOGIN, ("not a bot", "members-only", "sign in", "registered users", "login")),
    (
        SOURCE_REMOVED,
        (
            "has been removed",
            "no longer available",
            "account associated with this video has been terminated",
            "video unavailable",
            "this video is unavailable",
            "does not exist",
        ),
    ),
)


def extraction_error(exc: BaseException, statuses: Sequence[int] = ()) -> ClipError | None:
    """The code for an extraction failure, or None when it is none of the cases above.

    ``statuses``: the HTTP statuses yt-dlp's requests got (the YouTube extractor turns a
    failed player request into a warning and then fails with "Failed to extract any player
    response", losing the status: the request handler keeps it). A 429 anywhere means rate
    limited, for any site. Reason texts are read only from YouTube's extractors.
    """
    chain = causes(exc)
    if 429 in statuses or any(isinstance(c, YtdlpHTTPError) and c.status == 429 for c in chain):
        return ClipError(SOURCE_RATE_LIMITED, MESSAGES[SOURCE_RATE_LIMITED])
    if any(isinstance(c, GeoRestrictedError) for c in chain):
        return ClipError(SOURCE_GEO_BLOCKED, MESSAGES[SOURCE_GEO_BLOCKED])
    for cause in chain:
        if not isinstance(cause, ExtractorError) or not is_youtube(getattr(cause, "ie", None)):
            continue
        text = str(getattr(cause, "orig_msg", None) or cause).lower().replace("\u2019", "'")
        for code, needles in _REASONS:
            if any(needle in text for needle in needles):
                return ClipError(code, MESSAGES[code])
    return None


# ---------------------------------------------------------------------------------------------
# Choosing what to read


def probe_status(
    url: str,
    headers: dict[str, str],
    *,
    policy: AddressPolicy,
    guard: TransferGuard | None = None,
    timeout_s: float = 15.0,
    proxy: str | None = None,
) -> int:
    """The status a one-byte range request for ``url`` gets (0: no answer at all).

    How a token-less format shows itself: googlevideo answers 403 at the first byte.
    """
    options: dict[str, Any] = {"headers": headers, "timeout": timeout_s, "follow_redirects": True}
    try:
        client = (
            proxied_client(policy, proxy, **options)
            if proxy
            else pinned_client(policy, guard=guard, **options)
        )
        with client, client.stream("GET", url, headers={"Range": "bytes=0-0"}) as response:
            return response.status_code
    except httpx.HTTPError:
        return 0


Again = Callable[[str | None, bool], ResolvedSource]
Probe = Callable[[str, dict[str, str]], int]


def _readable(source: ResolvedSource, probe: Probe) -> str | None:
    """Why ``source``'s inputs can't be read (None: they can)."""
    inputs = [(source.media_url, source.http_headers)]
    if source.audio_url:
        inputs.append((source.audio_url, source.audio_http_headers))
    for url, headers in inputs:
        if not url.startswith(("http://", "https://")):
            continue  # a playlist built from fragments: read segment by segment later
        status = probe(url, headers)
        if status == 403:
            return "its formats were refused (HTTP 403: no PO token for this client?)"
        if status == 0 or status >= 400:
            return f"its formats could not be read (HTTP {status or 'no answer'})"
    return None


def _label(client: str | None) -> str:
    return f"player client {client}" if client else "yt-dlp's default player clients"


def choose(
    first: ResolvedSource,
    clients: Sequence[str | None],
    again: Again,
    probe: Probe,
) -> ResolvedSource:
    """The best readable resolution of a YouTube video (see the module doc).

    ``first`` was resolved with ``clients[0]``; ``again(client, progressive)`` resolves once
    more with another client, or for the progressive format only; ``probe(url, headers)``
    returns the status of a one-byte range request. Raises the first extraction error when
    nothing at all can be read.
    """
    problems: list[str] = []
    fallback: ResolvedSource | None = None
    for index, client in enumerate(clients):
        if index == 0:
            current = first
        else:
            try:
                current = again(client, False)
            except ClipError:
                problems.append(f"{_label(client)}: extraction failed")
                continue
        if current.adaptive_formats == 0 and current.audio_url is None:
            problems.append(f"{_label(client)}: only a progressive format (SABR streaming)")
            if fallback is None and _readable(current, probe) is None:
                fallback = replace(current, player_client=client)
            continue
        problem = _readable(current, probe)
        if problem is None:
            note = None
            if problems:
                note = f"YouTube: used {_label(client)}; " + "; ".join(problems)
            return replace(current, player_client=client, note=note)
        problems.append(f"{_label(client)}: {problem}")
    if fallback is None:
        for client in clients:
            try:
                candidate = again(client, True)
            except ClipError:
                continue
            if _readable(candidate, probe) is None:
                fallback = replace(candidate, player_client=client)
                break
    if fallback is None:
        raise ClipError(
            SOURCE_UNREACHABLE,
            "no format of this video could be read (" + "; ".join(problems) + ")",
        )
    height = f"{fallback.height}p " if fallback.height else ""
    note = (
        f"YouTube: fell back to the progressive {height}format {fallback.format_id} "
        "(adaptive formats unavailable: " + "; ".join(problems) + ")"
    )
    return replace(fallback, note=note)


def deno_path() -> str | None:
    """The ``deno`` binary the ``deno`` package installed (yt-dlp's JS runtime for YouTube's
    challenges), found without relying on PATH: a worker started as ``.venv/bin/clipmaker``
    may not have ``.venv/bin`` on its PATH."""
    try:
        import deno

        return str(deno.find_deno_bin())
    except Exception:  # not installed, or no binary for this platform: yt-dlp searches PATH
        return None


@contextlib.contextmanager
def private_cookies(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``params`` with the cookies file replaced by a private copy for one extraction.

    yt-dlp writes the cookie jar back to its file when it closes: concurrent jobs would race
    on one file, and a read-only mount (a Kubernetes secret) would fail the extraction. The
    deployment's file is only read; what YouTube refreshes is dropped with the copy.
    """
    source = params.get("cookiefile")
    if not source:
        yield params
        return
    handle, copy = tempfile.mkstemp(prefix="clipmaker-cookies-", suffix=".txt")
    try:
        with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        yield {**params, "cookiefile": copy}
    finally:
        with contextlib.suppress(OSError):
            os.unlink(copy)


def params_for(options: YoutubeOptions) -> dict[str, Any]:
    """yt-dlp params for the JS runtime and the account (the per-attempt player client and
    the PO-token provider are in ``extractor_args``)."""
    params: dict[str, Any] = {}
    path = deno_path()
    if path is not None:
        params["js_runtimes"] = {"deno": {"path": path}}
    if options.cookies_file:
        params["cookiefile"] = options.cookies_file
    return params
