"""What a media source is, and whether we can use it, before any real work starts.

``probe`` answers "is this a video we can cut, how long is it, what is in it" for a local path or
an http(s) media URL, and turns every way that can fail into a ``ClipError`` with a code a
program can branch on: the URL is unreachable, the bytes are not media at all, or they are media
that is damaged (a header with no decodable stream, a truncated file).

The same opening and error mapping is used by ``cut`` (``open_input``, ``media_error``), so a
source fails the same way whichever step meets it first. Network reads go through our own HTTP
reader (``http_io``): bounded Range requests, every byte counted (pass a ``ByteCounter``), and a
full download into a temporary directory when the server does not support Range.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import av
import av.error
from av.container import InputContainer

from clipmaker.errors import (
    CORRUPT_MEDIA,
    INVALID_SOURCE_URL,
    NOT_MEDIA,
    SOURCE_UNREACHABLE,
    ClipError,
)
from clipmaker.media.http_io import (
    ByteCounter,
    SourceOpener,
    describe_location,
    is_playlist_data,
    is_url,
)

__all__ = [
    "AudioInfo",
    "check_container",
    "check_location",
    "codec_name",
    "MediaInfo",
    "Opener",
    "VideoInfo",
    "describe_location",
    "is_url",
    "main_streams",
    "media_error",
    "open_input",
    "probe",
]

NETWORK_TIMEOUT_S = 30.0
# Opens a source its own way (``http_io.SourceOpener``); the container closes on exit.
Opener = Callable[[], AbstractContextManager[InputContainer]]
# Demuxers FFmpeg picks for things that are not videos (text art, pictures, subtitles);
# "not media" is the honest answer for those.
_NOT_VIDEO_FORMATS = frozenset(
    {"tty", "bin", "xbin", "adf", "idf", "image2", "lrc", "srt", "webvtt", "ass", "sup"}
)
# Magic numbers of containers: a file that starts like media but can't be read is damaged.
_MEDIA_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),  # MP4 / MOV / 3GP
    (4, b"moov"),
    (4, b"mdat"),
    (4, b"free"),
    (4, b"wide"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),  # AVI / WAV
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    pix_fmt: str | None


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class MediaInfo:
    duration: float  # seconds, the container's span
    start_time: float  # seconds, the container's first timestamp (usually 0)
    format_name: str  # FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    video: VideoInfo | None
    audio: AudioInfo | None


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


def _remote(location: str | Path) -> bool:
    return is_url(location) or is_playlist_data(location)


def _looks_like_media(location: str | Path) -> bool:
    """Whether a local file starts with a known container signature."""
    if _remote(location):
        return False
    try:
        with open(location, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return False
    return any(head[at : at + len(magic)] == magic for at, magic in _MEDIA_MAGIC)


def media_error(exc: BaseException, location: str | Path, *, opening: bool = False) -> ClipError:
    """The ``ClipError`` for an FFmpeg (or OS) error met while opening or reading ``location``.

    ``opening``: the error came from opening the container, where "invalid data" means the
    bytes are not a format FFmpeg knows (``not_media``) unless they start like a known
    container; while reading, it means damage (``corrupt_media``).
    """
    if isinstance(exc, ClipError):
        return exc
    where = describe_location(location)
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, av.error.HTTPError | av.error.HTTPClientError):
        return ClipError(SOURCE_UNREACHABLE, f"the server refused {where}: {reason}")
    if isinstance(exc, TimeoutError | av.error.ExitError):
        return ClipError(SOURCE_UNREACHABLE, f"timed out reading {where}")
    if isinstance(exc, ConnectionError):
        return ClipError(SOURCE_UNREACHABLE, f"could not connect to {where}: {reason}")
    if isinstance(exc, PermissionError) and _remote(location):
        # The server answered; FFmpeg refused what the bytes asked it to open (a damaged
        # index pointing at a file or protocol outside the allowed list).
        return ClipError(CORRUPT_MEDIA, f"{where} is damaged and cannot be read ({reason})")
    if isinstance(exc, PermissionError) and os.access(location, os.R_OK):
        # We may read the file; FFmpeg refused a file it names (a concat list, a playlist).
        return ClipError(NOT_MEDIA, f"{where} refers to other files; it is not a media file")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return ClipError(SOURCE_UNREACHABLE, f"cannot read {where}: {reason}")
    if isinstance(exc, av.error.InvalidDataError):
        if opening and not _looks_like_media(location):
            return ClipError(
                NOT_MEDIA, f"{where} is not a video or audio file FFmpeg can read ({reason})"
            )
        return ClipError(CORRUPT_MEDIA, f"{where} is damaged and cannot be read ({reason})")
    if isinstance(exc, EOFError):
        return ClipError(CORRUPT_MEDIA, f"{where} ends early: the file looks truncated")
    if isinstance(exc, OSError) and _remote(location):
        # EIO from the network stack covers DNS failures and dropped connections.
        return ClipError(SOURCE_UNREACHABLE, f"could not read {where}: {reason}")
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == errno.EIO:
        return ClipError(SOURCE_UNREACHABLE, f"could not read {where}: {reason}")
    return ClipError(CORRUPT_MEDIA, f"{where} could not be read: {reason}")


def check_container(container: InputContainer, location: str | Path) -> None:
    """Refuse what opened but is not audio or video (text art, pictures, subtitles)."""
    if container.format.name in _NOT_VIDEO_FORMATS or container.format.name.endswith("_pipe"):
        raise ClipError(
            NOT_MEDIA,
            f"{describe_location(location)} is not a video or audio file "
            f"(it reads as {container.format.long_name or container.format.name})",
        )


@contextmanager
def open_input(
    location: str | Path,
    *,
    http_headers: Mapping[str, str] | None = None,
    timeout_s: float = NETWORK_TIMEOUT_S,
    counter: ByteCounter | None = None,
) -> Iterator[InputContainer]:
    """Open a local file or http(s) media URL with PyAV, mapping failures to ``ClipError``.

    URLs are read with bounded Range requests through ``http_io`` (bytes received are added
    to ``counter`` when given); a server without Range support is downloaded whole into a
    temporary directory, removed on exit. HLS playlists open with the hls demuxer. Local files
    are read with FFmpeg's file protocol only.

    The container is closed on exit. Errors raised inside the ``with`` body are the caller's
    to map (``media_error``), since only the caller knows what it was doing.
    """
    check_location(location)
    opener = SourceOpener(
        location,
        headers=http_headers,
        counter=counter if counter is not None else ByteCounter(),
        timeout_s=timeout_s,
    )
    with opener, opener() as container:
        yield container


_StreamT = TypeVar("_StreamT", av.VideoStream, av.AudioStream)


def _pick(streams: Sequence[_StreamT]) -> _StreamT | None:
    usable = [s for s in streams if not s.disposition & av.stream.Disposition.attached_pic]
    default = [s for s in usable if s.disposition & av.stream.Disposition.default]
    return (default or usable or [None])[0]


def main_streams(
    container: InputContainer,
) -> tuple[av.VideoStream | None, av.AudioStream | None]:
    """The video and audio streams a player would pick.

    Cover art in a music file is a one-picture "video" stream (attached_pic): not a video.
    Among several streams, the one marked default wins, else the first.
    """
    return _pick(container.streams.video), _pick(container.streams.audio)


def codec_name(stream: av.VideoStream | av.AudioStream) -> str:
    """The format's name for the codec ("mp3"), not the decoder's ("mp3float")."""
    return stream.codec_context.codec.canonical_name


def _video_info(stream: av.VideoStream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    ctx = stream.codec_context
    return VideoInfo(
        codec=codec_name(stream),
        width=ctx.width,
        height=ctx.height,
        fps=float(rate) if rate else 0.0,
        pix_fmt=ctx.pix_fmt,
    )


def _audio_info(stream: av.AudioStream) -> AudioInfo:
    ctx = stream.codec_context
    return AudioInfo(codec=codec_name(stream), sample_rate=ctx.sample_rate, channels=ctx.channels)


def _first_frame(container: InputContainer, stream: av.VideoStream | av.AudioStream) -> bool:
    """Whether ``stream`` yields a decoded frame within its first packets."""
    for count, packet in enumerate(container.demux(stream)):
        if packet.size == 0 and packet.dts is None:
            break  # the demuxer's end-of-stream marker
        if packet.decode():
            return True
        if count > 300:  # a keyframe every 10 s at 30 fps would have shown by now
            return False
    try:
        return bool(stream.decode(None))  # drain the decoder (codecs with delay)
    except av.error.FFmpegError:
        return False


def _end_time(container: InputContainer, stream: av.VideoStream | av.AudioStream) -> float | None:
    """Seconds where the last packet of ``stream`` ends, read from the tail of the file."""
    if container.duration is not None:
        tail = container.start_time or 0
        tail += max(0, container.duration - 3 * av.time_base)
    else:
        tail = 1 << 62  # no duration in the header: seek to the end and look
    container.seek(tail, backward=True)
    end: float | None = None
    for packet in container.demux(stream):
        if packet.pts is None or packet.time_base is None:
            continue
        stop = packet.pts + (packet.duration or 0)
        seconds = float(stop * packet.time_base)
        end = seconds if end is None else max(end, seconds)
    return end


def _opened(
    source: str | Path | Opener,
    http_headers: Mapping[str, str] | None,
    timeout_s: float,
    counter: ByteCounter | None,
) -> AbstractContextManager[InputContainer]:
    if isinstance(source, str | Path):
        return open_input(source, http_headers=http_headers, timeout_s=timeout_s, counter=counter)
    return _from_opener(source)


@contextmanager
def _from_opener(opener: Opener) -> Iterator[InputContainer]:
    with ExitStack() as stack:
        try:
            container = stack.enter_context(opener())
        except ClipError:
            raise
        except Exception as exc:
            where = getattr(opener, "location", "the source")
            raise media_error(exc, where, opening=True) from exc
        yield container


def probe(
    location: str | Path | Opener,
    *,
    http_headers: Mapping[str, str] | None = None,
    timeout_s: float = NETWORK_TIMEOUT_S,
    counter: ByteCounter | None = None,
) -> MediaInfo:
    """Describe ``location``: a local path, an http(s) media URL, or an ``Opener``
    (``http_io.SourceOpener``; it has its own headers and counter, so ``http_headers`` and
    ``counter`` are not used). Probing through the opener the cut will use shares its cache:
    the header is fetched once.

    Proves the source is usable, not just labelled: the first frame of the main stream must
    decode, and the last seconds the header promises must be there (a truncated download
    opens fine but ends early). Raises ``ClipError``: ``not_media``, ``corrupt_media``,
    ``source_unreachable`` or ``invalid_source_url``.
    """
    name = location if isinstance(location, str | Path) else getattr(location, "location", "")
    with _opened(location, http_headers, timeout_s, counter) as container:
        where = describe_location(name or "the source")
        try:
            video_stream, audio_stream = main_streams(container)
            main = video_stream or audio_stream
            if main is None:
                raise ClipError(NOT_MEDIA, f"{where} has no video or audio stream")
            if not _first_frame(container, main):
                raise ClipError(CORRUPT_MEDIA, f"{where}: no {main.type} frame could be decoded")
            start = (container.start_time or 0) / av.time_base
            duration = (container.duration or 0) / av.time_base
            end = _end_time(container, main)
            if end is None:
                raise ClipError(CORRUPT_MEDIA, f"{where} ends early: the file looks truncated")
            if duration <= 0:
                duration = max(0.0, end - start)
            elif end < start + duration - 5.0:
                raise ClipError(
                    CORRUPT_MEDIA,
                    f"{where} ends at {end - start:.1f} s but claims {duration:.1f} s: "
                    "the file looks truncated",
                )
            return MediaInfo(
                duration=duration,
                start_time=start,
                format_name=container.format.name,
                video=_video_info(video_stream) if video_stream else None,
                audio=_audio_info(audio_stream) if audio_stream else None,
            )
        except ClipError:
            raise
        except Exception as exc:
            raise media_error(exc, name or "the source") from exc
