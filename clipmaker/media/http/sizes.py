"""How much the HTTP layer asks for at once, keeps, and retries: the knobs in one place."""

from __future__ import annotations

__all__ = [
    "BLOCK_SIZE",
    "CACHE_BYTES",
    "DEFAULT_MAX_FULL_FETCH",
    "FIRST_REQUEST",
    "GROWTH",
    "MAX_REQUEST",
    "PYAV_BUFFER",
    "RETRIES",
    "RETRY_DELAYS_S",
    "SEEK_REQUEST",
    "SEGMENT_REQUEST",
]

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
DEFAULT_MAX_FULL_FETCH = 8 * 1024**3  # a full download beyond this is refused (8 GiB)
