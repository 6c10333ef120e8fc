"""``ResolvedSource``: what yt-dlp's answer becomes, the inputs a cut reads.

A chosen format becomes an input FFmpeg can open: its URL (an http(s) file or HLS playlist),
or, for a DASH format that is a list of fragments, an HLS media playlist of those fragments as
a ``data:`` URL (PyAV's FFmpeg has no dash demuxer); with the headers (and cookies) its host
expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import yt_dlp
from yt_dlp.utils import urljoin as ytdlp_urljoin

from clipmaker.errors import INVALID_SOURCE_URL, NOT_MEDIA, ClipError
from clipmaker.media.locations import describe_location, hls_data_url

__all__ = [
    "ResolvedSource",
    "dash_fragments_playlist",
    "pick_entry",
    "resolved_from_info",
    "url_expiry",
]


@dataclass(frozen=True)
class ResolvedSource:
    """What to read for a user's URL. ``media_url`` is the video input (with audio, unless
    ``audio_url`` is set): an http(s) URL of a file or an HLS playlist, or a ``data:`` URL of
    an HLS playlist built from a DASH fragment list. ``http_headers`` go with every request
    for it (``audio_http_headers`` for the audio input). Open either with
    ``media.source.SourceOpener`` (or ``probe``/``open_input``)."""

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


def pick_entry(info: dict[str, Any], url: str) -> dict[str, Any]:
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
            filter(None, [url_expiry(video.url), url_expiry(audio and audio.url)]),
            default=None,
        ),
    )


def url_expiry(url: str | None) -> float | None:
    """The Unix time a googlevideo URL stops working (its ``expire`` parameter), if it says."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("expire")
    try:
        return float(values[0]) if values else None
    except ValueError:
        return None
