"""What a media source is, and whether we can use it, before any real work starts.

``probe`` answers "is this a video we can cut, how long is it, what is in it" for a local path or
an http(s) media URL, and turns every way that can fail into a ``ClipError`` with a code a
program can branch on: the URL is unreachable, the bytes are not media at all, or they are media
that is damaged (a header with no decodable stream, a truncated file).

Opening (``media.source``) and error mapping (``media.failures``) are shared with ``cut``, so a
source fails the same way whichever step meets it first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import av
import av.error
from av.container import InputContainer

from clipmaker.errors import CORRUPT_MEDIA, NOT_MEDIA, ClipError
from clipmaker.media.failures import media_error
from clipmaker.media.http.counter import ByteCounter
from clipmaker.media.locations import describe_location
from clipmaker.media.source import NETWORK_TIMEOUT_S, Opener, open_input

__all__ = [
    "AudioInfo",
    "MediaInfo",
    "VideoInfo",
    "codec_name",
    "main_streams",
    "probe",
]


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
    (``media.source.SourceOpener``; it has its own headers and counter, so ``http_headers`` and
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
