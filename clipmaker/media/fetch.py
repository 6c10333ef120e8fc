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
  ``SegmentBase``, as YouTube's are): read with bounded Range requests (``http_io``);
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
``youtube.extraction_error``). yt-dlp's messages are rewritten into plain words; network
failures get fixed messages that echo nothing a server said (reason phrases, ports).

yt-dlp runs as ``clipmaker.net.ytdlp.PolicedYoutubeDL``: every request it makes (pages,
APIs, manifests, embeds, redirects) goes through the pinned client and the policy. Which
extractors run can be limited (``extractors``, yt-dlp's ``allowed_extractors``), and plugins
load only from the folders given (``plugin_dirs``, default none).
"""

from __future__ import annotations

import math
import re
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import yt_dlp
from yt_dlp.networking.exceptions import HTTPError as YtdlpHTTPError
from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError
from yt_dlp.utils import urljoin as ytdlp_urljoin

from clipmaker.errors import INVALID_SOURCE_URL, NOT_MEDIA, SOURCE_UNREACHABLE, ClipError
from clipmaker.media import youtube
from clipmaker.media.http_io import describe_location, hls_data_url
from clipmaker.media.youtube import YoutubeOptions
from clipmaker.net import AddressPolicy
from clipmaker.net.bounds import TransferGuard
from clipmaker.net.ytdlp import PolicedYoutubeDL, configure_plugins, stop_cause

__all__ = [
    "DEFAULT_MAX_HEIGHT",
    "ResolvedSource",
    "dash_fragments_playlist",
    "format_spec",
    "resolve",
    "resolved_from_info",
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
    """What to read for a user's URL. ``media_url`` is the video input (with audio, unless
    ``audio_url`` is set): an http(s) URL of a file or an HLS playlist, or a ``data:`` URL of
    an HLS playlist built from a DASH fragment list. ``http_headers`` go with every request
    for it (``audio_http_headers`` for the audio input). Open either with
    ``http_io.SourceOpener`` (or ``probe``/``open_input``)."""

    url: str  # what the user gave
    media_url: str  # the video input FFmpeg should open (see above)
    http_headers: dict[str, str] = field(default_factory=dict)  # send these with every request
    title: str | None = None
    duration: float | None = None  # seconds, when the site says; None for direct links
    extractor: str = "generic"  # yt-dlp's extractor name, e.g. "youtube", "generic"
    format_id: str | None = None  # yt-dlp's id of the chosen (video) format, for logs
    audio_url: str | None = None  # a separate audio-only input, when the site splits them
    audio_http_headers: dict[str, str] = field(default_factory=dict)
    is_live: bool = False  # a live stream: nothing to range-read (refuse or record it)
    protocol: str = "https"  # yt-dlp's protocol of the video format: "https", "m3u8_native",
    #                          "http_dash_segments", ...
    audio_format_id: str | None = None
    height: int | None = None  # of the chosen video format, when known
    note: str | None = None  # why a less preferred path was taken (YouTube fallbacks)
    player_client: str | None = None  # the YouTube player client whose formats these are
    expires_at: float | None = None  # Unix time the media URLs stop working, when they say
    adaptive_formats: int = 0  # video-only formats with a URL the site offered (0: SABR-only
    #                            on YouTube, where high resolutions exist only that way)


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


def _classify(
    exc: BaseException, url: str, timeout_s: float, statuses: Sequence[int] = ()
) -> ClipError:
    """A ``ClipError`` for what yt-dlp raised. Why a site won't give the video (private,
    removed, rate limited...) gets its own code (``youtube.extraction_error``). Network
    failures get fixed messages (the status code, never the reason phrase or the socket's
    words, which would tell an internal port's protocol)."""
    mapped = youtube.extraction_error(exc, statuses)
    if mapped is not None:
        return mapped
    chain = _causes(exc)
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


@dataclass(frozen=True)
class _Input:
    url: str
    headers: dict[str, str]
    protocol: str
    format_id: str | None


def _headers(ydl: yt_dlp.YoutubeDL, fmt: dict[str, Any], url: str) -> dict[str, str]:
    headers = {str(k): str(v) for k, v in (fmt.get("http_headers") or {}).items()}
    # Sites that need cookies for the media request keep them in yt-dlp's jar, not in
    # http_headers.
    cookie = ydl.cookiejar.get_cookie_header(url)
    if cookie and "Cookie" not in headers:
        headers["Cookie"] = cookie
    return headers


def _fragment_url(fmt: dict[str, Any], fragment: dict[str, Any]) -> str | None:
    return fragment.get("url") or ytdlp_urljoin(fmt.get("fragment_base_url"), fragment.get("path"))


def _playlist_uri(url: str) -> str:
    """A URL as a playlist line: no line breaks, no quotes (they end an attribute)."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def dash_fragments_playlist(
    fmt: dict[str, Any], *, duration: float | None = None, source: str | None = None
) -> str:
    """An HLS media playlist (fMP4) for a DASH format given as a list of fragments.

    yt-dlp puts the initialization segment first, without a duration; media fragments carry
    theirs (from the SegmentTimeline or the template's duration). Missing durations are
    estimated from the total; a last fragment that would run past the total is shortened.
    """
    fragments = [f for f in fmt.get("fragments") or [] if _fragment_url(fmt, f)]
    init = None
    if fragments and fragments[0].get("duration") is None and len(fragments) > 1:
        init, fragments = fragments[0], fragments[1:]
    if not fragments:
        raise ClipError(NOT_MEDIA, f"the DASH format {fmt.get('format_id')} lists no fragments")
    known = [float(f["duration"]) for f in fragments if f.get("duration")]
    guess = duration / len(fragments) if duration else (sum(known) / len(known) if known else 2.0)
    durations = [float(f.get("duration") or guess) for f in fragments]
    if duration and len(durations) > 1 and sum(durations) > duration:
        durations[-1] = max(0.001, duration - sum(durations[:-1]))
    lines = ["#EXTM3U", "#EXT-X-VERSION:7"]
    if source:
        lines.append(f"# clipmaker-source: {source}")
    lines += [
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(max(durations)))}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if init is not None:
        lines.append(f'#EXT-X-MAP:URI="{_playlist_uri(_fragment_url(fmt, init) or "")}"')
    for fragment, seconds in zip(fragments, durations, strict=True):
        lines.append(f"#EXTINF:{seconds:.6f},")
        lines.append(_playlist_uri(_fragment_url(fmt, fragment) or ""))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _input(ydl: yt_dlp.YoutubeDL, fmt: dict[str, Any], url: str, duration: float | None) -> _Input:
    protocol = str(fmt.get("protocol") or "https")
    media_url = fmt.get("url")
    if protocol == "http_dash_segments" and fmt.get("fragments"):
        manifest = fmt.get("manifest_url") or media_url or url
        source = f"DASH format {fmt.get('format_id')} of {describe_location(str(manifest))}"
        media_url = hls_data_url(dash_fragments_playlist(fmt, duration=duration, source=source))
        headers = _headers(ydl, fmt, str(fmt.get("fragment_base_url") or manifest))
    else:
        if not media_url:
            raise ClipError(NOT_MEDIA, f"no video found at {url}")
        headers = _headers(ydl, fmt, media_url)
    return _Input(str(media_url), headers, protocol, fmt.get("format_id"))


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
    args = youtube.extractor_args(options, player_client)
    if args:
        params["extractor_args"] = args
    params.update(youtube.params_for(options))
    return params


def resolved_from_info(ydl: yt_dlp.YoutubeDL, info: dict[str, Any], url: str) -> ResolvedSource:
    """The ``ResolvedSource`` for what yt-dlp extracted (and selected formats in) ``info``."""
    duration = info.get("duration")
    duration = float(duration) if isinstance(duration, int | float) else None
    chosen = info.get("requested_formats") or [info]
    video_fmt = chosen[0]
    audio_fmt = chosen[1] if len(chosen) > 1 else None
    if audio_fmt is not None and video_fmt.get("acodec") not in (None, "none"):
        audio_fmt = None  # a progressive format won: its own audio will do
    video = _input(ydl, video_fmt, url, duration)
    audio = _input(ydl, audio_fmt, url, duration) if audio_fmt is not None else None
    height = video_fmt.get("height")
    return ResolvedSource(
        url=url,
        media_url=video.url,
        http_headers=video.headers,
        title=info.get("title"),
        duration=duration,
        extractor=str(info.get("extractor") or info.get("extractor_key") or "generic").lower(),
        format_id=video.format_id,
        audio_url=audio.url if audio else None,
        audio_http_headers=audio.headers if audio else {},
        is_live=bool(info.get("is_live")) or info.get("live_status") == "is_live",
        protocol=video.protocol,
        audio_format_id=audio.format_id if audio else None,
        height=int(height) if isinstance(height, int | float) else None,
        adaptive_formats=sum(
            1
            for f in info.get("formats") or []
            if f.get("url") and f.get("vcodec") not in (None, "none") and f.get("acodec") == "none"
        ),
        expires_at=min(
            filter(None, [youtube.url_expiry(video.url), youtube.url_expiry(audio and audio.url)]),
            default=None,
        ),
    )


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
    read (``youtube.choose``); ``note`` then says why.

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
    if not youtube.is_youtube(first.extractor) or first.is_live:
        return first

    def probe(media_url: str, headers: dict[str, str]) -> int:
        return youtube.probe_status(
            media_url,
            headers,
            policy=policy,
            guard=guard,
            timeout_s=timeout_s,
            proxy=options.proxy,
        )

    return youtube.choose(first, clients, once, probe)


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
            youtube.private_cookies(params) as params,
            PolicedYoutubeDL(
                params, policy=policy, guard=guard, proxy=proxy, trusted_urls=trusted_urls
            ) as ydl,
        ):
            try:
                info = _pick_entry(ydl.extract_info(url, download=False) or {}, url)
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
        raise _classify(exc, url, timeout_s, statuses) from exc
