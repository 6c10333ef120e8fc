"""From the URL a user pasted to the media URLs we read, with the headers their host expects.

Users paste page URLs (YouTube, Vimeo, ...) or direct links to files and manifests. yt-dlp knows
how to turn either into media URLs plus the HTTP headers the host expects; we ask it only for
that (no download) and choose formats:

- the best video-only format plus the best audio-only format, when the site offers separate
  streams (DASH/adaptive, as YouTube does: high resolutions exist only that way);
- else the best format that has both (progressive, or an HLS variant with audio);
- else the best video with whatever audio it has;

each no taller than ``max_height`` (the smallest above it when nothing fits), preferring H.264
and AAC at equal height (what every cutter and browser handles). Formats we can read:

- ``http``/``https``: one file (progressive, or a DASH representation given by ``BaseURL`` +
  ``SegmentBase``, as YouTube's are): read with bounded Range requests (``media.http``);
- ``m3u8``/``m3u8_native``: the variant's media playlist URL, read by FFmpeg's hls demuxer
  through our counted ``io_open``;
- ``http_dash_segments`` (a DASH representation that is a list of fragments, from a
  ``SegmentTemplate`` or ``SegmentList``): PyAV's FFmpeg has no dash demuxer (its wheels are
  built without libxml2), and FFmpeg's would open every representation of the manifest
  anyway, with no way to say which one we chose. So we write the fragment list yt-dlp parsed
  as an HLS media playlist (``EXT-X-MAP`` for the init segment, one ``EXTINF`` per fragment)
  and hand it on as a ``data:`` URL (about 100 bytes per fragment); the hls demuxer reads and
  seeks it (fMP4 segments), one segment at a time, counted.

YouTube (``clipmaker.media.youtube``): a resolution is checked before it is returned (each
URL asked for one byte); formats refused without a PO token or SABR-only make it try the next
player client, then the progressive format, and ``ResolvedSource.note`` says why.

Every failure becomes a ``ClipError`` a user can act on: a URL we won't fetch
(``invalid_source_url``), an address the ``AddressPolicy`` forbids (``source_forbidden``), a
host we can't reach (``source_unreachable``), a page without a video (``not_media``), a video
the site won't give (``source_private``, ``source_removed``, ``source_rate_limited``... see
``extraction_error``). yt-dlp's messages are rewritten into plain words; network
failures get fixed messages that echo nothing a server said (reason phrases, ports).

yt-dlp runs as ``clipmaker.net.ytdlp.PolicedYoutubeDL``: every request it makes (pages,
APIs, manifests, embeds, redirects) goes through the pinned client and the policy. Which
extractors run can be limited (``extractors``, yt-dlp's ``allowed_extractors``), and plugins
load only from the folders given (``plugin_dirs``, default none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import yt_dlp

from clipmaker.errors import INVALID_SOURCE_URL, ClipError
from clipmaker.media.resolved import ResolvedSource, pick_entry, resolved_from_info
from clipmaker.media.youtube import (
    YoutubeOptions,
    choose,
    extractor_args,
    is_youtube,
    params_for,
    private_cookies,
    probe_status,
)
from clipmaker.media.ytdlp_errors import classify
from clipmaker.net import AddressPolicy
from clipmaker.net.bounds import TransferGuard
from clipmaker.net.ytdlp import PolicedYoutubeDL, configure_plugins, stop_cause

__all__ = [
    "DEFAULT_MAX_HEIGHT",
    "format_spec",
    "progressive_format_spec",
    "resolve",
    "ytdlp_params",
]

DEFAULT_MAX_HEIGHT = 1080
# What we can read: one file over http(s), an HLS playlist, or a DASH fragment list (which we
# turn into an HLS playlist). Not RTMP, HDS (f4m), Smooth Streaming (ism), websockets...
_READABLE = "[protocol~='^(https?|m3u8(_native)?|http_dash_segments)$']"


def progressive_format_spec(max_height: int) -> str:
    """Only formats that carry both video and audio in one file (YouTube's itag 18): the
    fallback when adaptive formats are SABR-only or refused."""
    both = f"b[vcodec!=none][acodec!=none]{_READABLE}"
    return f"{both}[height<=?{int(max_height)}]/{both}"


def format_spec(max_height: int) -> str:
    """yt-dlp's format selection: the best format with video (video-only or not) plus the best
    audio-only format; else the best with both; else video alone. No taller than
    ``max_height`` first, then anything (``format_sort`` puts the smallest above the cap
    first). ``resolve`` drops the separate audio when the chosen video carries audio."""
    cap = f"[height<=?{int(max_height)}]"
    video, audio, both = f"bv*{_READABLE}", f"ba{_READABLE}", f"b{_READABLE}"
    return "/".join(
        [f"{video}{cap}+{audio}", f"{both}{cap}", f"{video}{cap}", f"{video}+{audio}", both, video]
    )


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


def ytdlp_params(
    max_height: int,
    timeout_s: float,
    extractors: Sequence[str] | None = None,
    *,
    youtube_options: YoutubeOptions | None = None,
    player_client: str | None = None,
    progressive: bool = False,
) -> dict[str, Any]:
    """The options ``resolve`` gives yt-dlp: quiet, no download, our format choice, and the
    extractors allowed (yt-dlp's ``allowed_extractors`` regexes; None: all of them). YouTube's
    player client, PO-token provider and account come from ``youtube_options``;
    ``progressive`` asks for formats with both video and audio only."""
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
        "skip_download": True,
        "noplaylist": True,
        "socket_timeout": timeout_s,
        "format": progressive_format_spec(max_height) if progressive else format_spec(max_height),
        # under the cap the tallest, else the smallest above it; then H.264 (every cutter and
        # browser handles it), one-file http(s) over HLS over DASH fragments, then AAC
        "format_sort": [f"res:{int(max_height)}", "vcodec:h264", "proto", "acodec:aac"],
        "cachedir": False,
    }
    if extractors:
        params["allowed_extractors"] = list(extractors)
    options = youtube_options or YoutubeOptions()
    args = extractor_args(options, player_client)
    if args:
        params["extractor_args"] = args
    params.update(params_for(options))
    return params


def resolve(
    url: str,
    *,
    max_height: int = DEFAULT_MAX_HEIGHT,
    timeout_s: float = 30.0,
    policy: AddressPolicy | None = None,
    guard: TransferGuard | None = None,
    extractors: Sequence[str] | None = None,
    plugin_dirs: Sequence[str] = (),
    youtube_options: YoutubeOptions | None = None,
) -> ResolvedSource:
    """Ask yt-dlp which media ``url`` stands for, without downloading it.

    Works for any page yt-dlp has an extractor for and for direct links to media files, HLS
    playlists and DASH manifests (its "generic" extractor). Picks formats no taller than
    ``max_height`` (see the module doc). A direct link to something that is not media (a text
    file) can still resolve: ``probe``/``cut`` then say ``not_media``.

    A YouTube video is checked before it is returned, and re-resolved with the next player
    client of ``youtube_options`` or for its progressive format when its formats can't be
    read (``choose``); ``note`` then says why.

    Every request yt-dlp makes obeys ``policy`` (default ``AddressPolicy.from_env()``) and
    ``guard``; a refusal is ``source_forbidden`` even when an extractor swallowed it and
    failed otherwise. ``extractors`` and ``plugin_dirs``: see the module doc.
    """
    url = _check_url(url)
    if int(max_height) <= 0:
        raise ClipError(INVALID_SOURCE_URL, f"max_height must be positive, not {max_height}")
    policy = policy if policy is not None else AddressPolicy.from_env()
    policy.check_url(url)
    configure_plugins(plugin_dirs)
    options = youtube_options or YoutubeOptions()
    clients: list[str | None] = list(options.player_clients) or [None]

    def once(client: str | None, progressive: bool) -> ResolvedSource:
        params = ytdlp_params(
            max_height,
            timeout_s,
            extractors,
            youtube_options=options,
            player_client=client,
            progressive=progressive,
        )
        trusted = (options.pot_provider_url,) if options.pot_provider_url else ()
        return _extract(url, params, policy, guard, timeout_s, options.proxy, trusted)

    first = once(clients[0], False)
    if not is_youtube(first.extractor) or first.is_live:
        return first

    def probe(media_url: str, headers: dict[str, str]) -> int:
        return probe_status(
            media_url,
            headers,
            policy=policy,
            guard=guard,
            timeout_s=timeout_s,
            proxy=options.proxy,
        )

    return choose(first, clients, once, probe)


def _extract(
    url: str,
    params: dict[str, Any],
    policy: AddressPolicy,
    guard: TransferGuard | None,
    timeout_s: float,
    proxy: str | None = None,
    trusted_urls: Sequence[str] = (),
) -> ResolvedSource:
    """One extraction with yt-dlp, its failures as ``ClipError``s. ``trusted_urls``: the
    deployment's own services (the PO-token provider), exempt from the address policy."""
    statuses: list[int] = []  # read before the YoutubeDL closes its request handler
    try:
        with (
            private_cookies(params) as params,
            PolicedYoutubeDL(
                params, policy=policy, guard=guard, proxy=proxy, trusted_urls=trusted_urls
            ) as ydl,
        ):
            try:
                info = pick_entry(ydl.extract_info(url, download=False) or {}, url)
                return resolved_from_info(ydl, info, url)
            except BaseException as exc:
                statuses.extend(ydl.http_statuses)
                stopped = ydl.stopped or stop_cause(exc)
                if stopped is not None and stopped is not exc:
                    raise stopped from None
                raise
    except ClipError:
        raise
    except (yt_dlp.utils.YoutubeDLError, OSError) as exc:
        stopped = stop_cause(exc) or (guard.error if guard is not None else None)
        if stopped is not None:
            raise stopped from None
        raise classify(exc, url, timeout_s, statuses) from exc
