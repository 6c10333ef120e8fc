"""What a source location is, and how messages name it.

A location is a local path, an http(s) URL, or a ``data:`` URL holding an HLS playlist (what
``resolve`` builds for DASH formats that are lists of fragments). Messages name locations with
``describe_location``: a URL without its query string, since signed URLs carry secrets.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

from clipmaker.errors import INVALID_SOURCE_URL, ClipError

__all__ = [
    "HLS_PLAYLIST_MIME",
    "check_location",
    "decode_data_url",
    "describe_location",
    "hls_data_url",
    "is_playlist_data",
    "is_remote",
    "is_url",
]

HLS_PLAYLIST_MIME = "application/vnd.apple.mpegurl"


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
        text = decode_data_url(str(location)).decode("utf-8", "replace")
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


def decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if header.lower().endswith(";base64"):
        return base64.b64decode(payload)
    return unquote_to_bytes(payload)


def is_remote(location: str | Path) -> bool:
    """True for what is read over the network (URLs and playlists of URLs)."""
    return is_url(location) or is_playlist_data(location)


def check_location(location: str | Path) -> str:
    """``location`` as a name FFmpeg can open; refuses URLs that are not http(s)."""
    if isinstance(location, Path):
        return str(location)
    if is_playlist_data(location):
        return location
    if "://" in location.split("?", 1)[0] and not is_url(location):
        scheme = location.split("://", 1)[0]
        raise ClipError(
            INVALID_SOURCE_URL, f"only http(s) URLs and local files can be read, not {scheme}://"
        )
    if is_url(location) and not urlsplit(location).hostname:
        raise ClipError(INVALID_SOURCE_URL, f"{location!r} is not a valid URL (no host)")
    return location
