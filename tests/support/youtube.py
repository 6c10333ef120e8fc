"""A loopback stand-in for YouTube: a player API and a googlevideo-like media host.

YouTube can't be reached from CI, and it changes under yt-dlp every few weeks. What clipmaker
must survive is a handful of behaviours documented by yt-dlp's maintainers (2025-2026); this
server plays each of them on demand, and the extractor plugin in
``tests/support/ytdlp_plugins`` (loaded through ``CLIPMAKER_YTDLP_PLUGIN_DIRS``) turns its
answers into formats the way yt-dlp's own YouTube extractor does:

- ``POST /youtubei/v1/player`` ``{"videoId", "client"}``: a player response
  (``playabilityStatus``, ``streamingData.formats`` / ``adaptiveFormats``, ``videoDetails``).
  Adaptive formats are video-only itag 137 and audio-only itag 140; itag 18 is progressive.
- ``GET /videoplayback?id=&itag=&client=&expire=[&pot=]``: the media, by Range.

Video ids (the 11 characters after ``watch?v=``) say what the video is:

- ``okvideo0001``: adaptive formats for every client, readable.
- ``needspot001``: the ``web`` client's adaptive URLs answer 403 without a ``pot`` (GVS PO
  token) parameter; other clients' are readable.
- ``potalways01``: every client's adaptive URLs answer 403 without a token; itag 18 is fine.
- ``sabronly001``: SABR-only: adaptive formats come without a URL (yt-dlp drops them), only
  itag 18 remains.
- ``expiring001``: readable until ``expire_urls()``; then every URL handed out before answers
  403 (as googlevideo does after ``expire``), and new player responses carry fresh URLs.
- ``shortlived1``: readable, but its URLs say (``expire=``) they expire in two minutes.
- ``private0001``, ``agegated001``, ``geoblocked1``, ``removed0001``, ``livenow0001``,
  ``upcoming001``, ``loginreq001``, ``botcheck001``, ``ratelimit01``: the error screens
  YouTube shows (``playabilityStatus`` reasons as YouTube words them), HTTP 429 for the last.
- ``rl2x`` + 7 more characters: HTTP 429 on the first two player requests for that id, then
  like ``okvideo0001``.

Every media request is throttled like googlevideo: a range larger than ``throttle_bytes``,
or an open-ended or missing Range on a file larger than that, answers 403. ``requests``
records what the server saw (path, client, itag, Range, status).
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["MediaRequest", "YoutubeStandIn", "serve_youtube"]

_CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")

# What YouTube's error screens say (playabilityStatus reason / subreason), per video id.
ERROR_SCREENS: dict[str, dict[str, object]] = {
    "private0001": {
        "status": "LOGIN_REQUIRED",
        "reason": "Private video",
        "subreason": "Sign in if you've been granted access to this video",
    },
    "agegated001": {
        "status": "LOGIN_REQUIRED",
        "reason": "Sign in to confirm your age",
        "subreason": "This video may be inappropriate for some users.",
    },
    "geoblocked1": {
        "status": "UNPLAYABLE",
        "reason": "Video unavailable",
        "subreason": "The uploader has not made this video available in your country",
    },
    "removed0001": {
        "status": "ERROR",
        "reason": "This video has been removed by the uploader",
    },
    "upcoming001": {
        "status": "LIVE_STREAM_OFFLINE",
        "reason": "This live event will begin in 3 hours.",
    },
    "loginreq001": {
        "status": "LOGIN_REQUIRED",
        "reason": "Join this channel to get access to members-only content like this video, "
        "and other exclusive perks.",
    },
    "botcheck001": {
        "status": "LOGIN_REQUIRED",
        "reason": "Sign in to confirm you\u2019re not a bot",
        "subreason": "This helps protect our community. Learn more",
    },
}
RATE_LIMITED = {"ratelimit01"}


@dataclass(frozen=True)
class MediaRequest:
    video_id: str
    itag: int
    client: str
    range: str | None
    status: int


@dataclass(frozen=True)
class _Media:
    path: Path
    mime: str
    width: int | None = None
    height: int | None = None


class YoutubeStandIn:
    """What a test holds: URLs, the request log and the switches (see the module doc)."""

    def __init__(self, media: dict[int, _Media], throttle_bytes: int) -> None:
        self.media = media
        self.throttle_bytes = throttle_bytes
        self._lock = threading.Lock()
        self._player_calls: list[tuple[str, str, int]] = []  # (video id, client, status)
        self._media_requests: list[MediaRequest] = []
        self._expired_before = 0.0  # URLs issued before this (server clock) answer 403
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def watch_url(self, video_id: str) -> str:
        return f"{self.base_url}/watch?v={video_id}"

    def expire_urls(self) -> None:
        """Every media URL handed out so far answers 403 from now on."""
        with self._lock:
            self._expired_before = time.time() + 1e-6

    @property
    def player_calls(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._player_calls)

    @property
    def media_requests(self) -> list[MediaRequest]:
        with self._lock:
            return list(self._media_requests)

    # -- the player API ----------------------------------------------------------------------

    def player_response(self, video_id: str, client: str) -> tuple[int, dict[str, object]]:
        if video_id in RATE_LIMITED or (
            video_id.startswith("rl2x")
            and sum(1 for v, _, _ in self.player_calls if v == video_id) < 2
        ):
            return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}
        details = {"videoId": video_id, "title": f"Stand-in {video_id}", "lengthSeconds": "20"}
        screen = ERROR_SCREENS.get(video_id)
        if screen is not None:
            status = {
                "status": screen["status"],
                "reason": screen["reason"],
                "errorScreen": {
                    "playerErrorMessageRenderer": {
                        "reason": {"simpleText": screen["reason"]},
                        **(
                            {"subreason": {"simpleText": screen["subreason"]}}
                            if "subreason" in screen
                            else {}
                        ),
                    }
                },
            }
            return 200, {"playabilityStatus": status, "videoDetails": details}
        if video_id == "livenow0001":
            details["isLive"] = True
            return 200, {
                "playabilityStatus": {"status": "OK"},
                "videoDetails": details,
                "streamingData": {"hlsManifestUrl": f"{self.base_url}/live/{video_id}.m3u8"},
            }
        issued = time.time()
        formats = [self._format(video_id, 18, client, issued)]
        adaptive = [self._format(video_id, itag, client, issued) for itag in (137, 140)]
        if video_id == "sabronly001":
            for fmt in adaptive:
                del fmt["url"]  # SABR: the format is listed, its URL is not
        return 200, {
            "playabilityStatus": {"status": "OK"},
            "videoDetails": details,
            "streamingData": {"formats": formats, "adaptiveFormats": adaptive},
        }

    def _format(self, video_id: str, itag: int, client: str, issued: float) -> dict[str, object]:
        media = self.media[itag]
        query = {
            "id": video_id,
            "itag": itag,
            "client": client,
            "issued": f"{issued:.6f}",
            # googlevideo URLs live about six hours; shortlived1's are nearly spent already
            "expire": int(issued) + (120 if video_id == "shortlived1" else 6 * 3600),
        }
        fmt: dict[str, object] = {
            "itag": itag,
            "url": f"{self.base_url}/videoplayback?{urlencode(query)}",
            "mimeType": media.mime,
            "contentLength": str(media.path.stat().st_size),
            "bitrate": 1_000_000 if itag != 140 else 128_000,
        }
        if media.height is not None:
            # the sizes YouTube lists for these itags (the files are smaller, which no one
            # reads before choosing: yt-dlp chooses on these numbers, as with YouTube)
            width, height = (1920, 1080) if itag == 137 else (640, 360)
            fmt.update(width=width, height=height, fps=25)
        if itag == 140:
            fmt.update(audioSampleRate="48000", audioChannels=2)
        return fmt

    # -- googlevideo ---------------------------------------------------------------------------

    def media_status(self, query: dict[str, str], range_header: str | None) -> int:
        """200/206, or why googlevideo would refuse: expired, no PO token, throttled."""
        video_id, itag, client = query.get("id", ""), int(query.get("itag", "0")), query["client"]
        if itag not in self.media:
            return 404
        if float(query.get("issued", "0")) < self._expired_before:
            return 403
        adaptive = itag in (137, 140)
        needs_pot = video_id == "potalways01" or (video_id == "needspot001" and client == "web")
        if adaptive and needs_pot and not query.get("pot"):
            return 403
        size = self.media[itag].path.stat().st_size
        match = _RANGE.match(range_header or "")
        if match is None or not match.group(2):  # no Range, or open-ended
            return 403 if size > self.throttle_bytes else (206 if match else 200)
        first, last = int(match.group(1)), int(match.group(2))
        return 403 if last - first + 1 > self.throttle_bytes else 206

    def _record_media(self, query: dict[str, str], range_header: str | None, status: int) -> None:
        with self._lock:
            self._media_requests.append(
                MediaRequest(
                    query.get("id", ""),
                    int(query.get("itag", "0")),
                    query.get("client", ""),
                    range_header,
                    status,
                )
            )

    def _record_player(self, video_id: str, client: str, status: int) -> None:
        with self._lock:
            self._player_calls.append((video_id, client, status))


def _handler(server: YoutubeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CHUNK)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if urlsplit(self.path).path != "/youtubei/v1/player":
                self._reply(404, b"not found", "text/plain")
                return
            video_id, client = str(body.get("videoId")), str(body.get("client") or "web")
            status, payload = server.player_response(video_id, client)
            server._record_player(video_id, client, status)
            self._reply(status, json.dumps(payload).encode(), "application/json")

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/videoplayback":
                self._reply(404, b"not found", "text/plain")
                return
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            range_header = self.headers.get("Range")
            status = server.media_status(query, range_header)
            server._record_media(query, range_header, status)
            if status >= 400:
                self._reply(status, b"", "text/plain")
                return
            media = server.media[int(query["itag"])]
            size = media.path.stat().st_size
            first, last = 0, size - 1
            if status == 206:
                match = _RANGE.match(range_header or "")
                assert match is not None
                first = int(match.group(1))
                last = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
                if first >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            self.send_response(status)
            self.send_header("Content-Type", media.mime.split(";")[0])
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            try:
                with media.path.open("rb") as fh:
                    fh.seek(first)
                    remaining = last - first + 1
                    while remaining > 0 and (chunk := fh.read(min(_CHUNK, remaining))):
                        self.wfile.write(chunk)
                        remaining -= len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up mid-body after a seek: normal


@contextmanager
def serve_youtube(
    progressive: Path, video_only: Path, audio_only: Path, *, throttle_bytes: int
) -> Iterator[YoutubeStandIn]:
    """Serve the stand-in on 127.0.0.1: ``progressive`` as itag 18, ``video_only`` as 137,
    ``audio_only`` as 140 (see the module doc)."""
    import av

    def video(path: Path, mime: str) -> _Media:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return _Media(path, mime, stream.codec_context.width, stream.codec_context.height)

    media = {
        18: video(progressive, 'video/mp4; codecs="avc1.42001E, mp4a.40.2"'),
        137: video(video_only, 'video/mp4; codecs="avc1.640028"'),
        140: _Media(audio_only, 'audio/mp4; codecs="mp4a.40.2"'),
    }
    server = YoutubeStandIn(media, throttle_bytes)
    httpd = _QuietServer(("127.0.0.1", 0), _handler(server))
    server._httpd = httpd
    thread = threading.Thread(target=httpd.serve_forever, name="youtube-standin", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
