"""Reading packets for a cut: seek to the keyframe before the start, merge a separate audio
input by time, and pump packets into the tracks until both are done."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from itertools import chain
from pathlib import Path

import av
import av.error
from av.container import InputContainer

from clipmaker.media.cut.plan import Progress, Timeline
from clipmaker.media.cut.track import AudioTrack, VideoTrack
from clipmaker.media.failures import media_error

__all__ = ["audio_packets", "interleave", "packets_from_keyframe", "pump"]

_SEEK_RETRIES = 6
AUDIO_PREROLL_S = 1.0  # a separate audio input is read from this long before the video


def packets_from_keyframe(
    container: InputContainer,
    streams: list[av.VideoStream | av.AudioStream],
    video: av.VideoStream,
    target: int,
    timeline: Timeline,
) -> Iterator[av.Packet]:
    """Demux from the last video keyframe whose pts is <= ``target``.

    Demuxers seek by decode time, and a keyframe's pts can be later than its dts (B-frames),
    so the first seek can land one GOP too late: check, and seek earlier if so.
    """
    attempt = target
    step = round(1.0 / timeline.time_base)
    for retry in range(_SEEK_RETRIES):
        at_origin = attempt <= timeline.origin
        # At the origin, aim a second before it: an MPEG-TS seek to the first timestamp
        # itself lands on the second keyframe, one before it lands at the start.
        container.seek(
            timeline.origin - step if at_origin else attempt, stream=video, backward=True
        )
        packets = container.demux(*streams)
        buffered: list[av.Packet] = []
        keyframe: av.Packet | None = None
        for packet in packets:
            if packet.stream.index == video.index:
                if packet.pts is None or not packet.is_keyframe:
                    continue  # undecodable without earlier frames: drop
                keyframe = packet
            buffered.append(packet)
            if keyframe is not None:
                break
        if keyframe is None or keyframe.pts <= target or at_origin or retry == _SEEK_RETRIES - 1:
            return chain(buffered, packets)
        attempt = min(attempt, keyframe.pts) - step * (2**retry)
    raise AssertionError("unreachable")


def _packet_seconds(packet: av.Packet) -> float | None:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


def audio_packets(
    container: InputContainer, stream: av.AudioStream, at: float, where: str | Path
) -> Iterator[av.Packet]:
    """A separate audio input's packets from about ``at`` (seconds on its clock) on."""
    try:
        time_base = stream.time_base or Fraction(1, stream.codec_context.sample_rate or 1)
        first = stream.start_time or 0
        target = round(at / time_base)
        if target > first:
            container.seek(target, stream=stream, backward=True)
        for packet in container.demux(stream):
            if packet.size or packet.dts is not None:
                yield packet
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        raise media_error(exc, where) from exc


def interleave(
    video_packets: Iterator[av.Packet], open_audio: Callable[[float], Iterator[av.Packet]]
) -> Iterator[tuple[bool, av.Packet]]:
    """Video packets and a separate input's audio packets, merged by time (True: video).

    The audio input is opened at the first video packet's time (less a margin): the keyframe
    the video starts decoding at, so audio is there from the clip's first frame on.
    """
    audio: Iterator[av.Packet] | None = None
    waiting: av.Packet | None = None
    for packet in video_packets:
        at = _packet_seconds(packet)
        if audio is None and at is not None:
            audio = open_audio(at - AUDIO_PREROLL_S)
        while audio is not None:
            if waiting is None:
                waiting = next(audio, None)
                if waiting is None:
                    audio = iter(())  # exhausted: don't open again
                    break
            audio_at = _packet_seconds(waiting)
            if at is not None and audio_at is not None and audio_at > at:
                break
            yield False, waiting
            waiting = None
        yield True, packet
    if waiting is not None:
        yield False, waiting
    if audio is not None:
        for packet in audio:
            yield False, packet


def pump(
    tagged: Iterator[tuple[bool, av.Packet]],
    video_track: VideoTrack,
    audio_track: AudioTrack | None,
    timeline: Timeline,
    meter: Progress,
    start: float,
) -> bool:
    """Feed demuxed packets (True: video) to the tracks until both are done; True if the input
    ran out."""
    for is_video, packet in tagged:
        if is_video:
            video_track.feed(packet)
            if audio_track is not None and video_track.first_pts is not None:
                # the clip's zero is the first frame's time, for sound as for picture
                audio_track.set_zero(timeline.absolute(video_track.first_pts))
            position = video_track.position()
            if position is not None:
                meter.media_time(position - start)
        elif audio_track is not None:
            audio_track.feed(packet)
        if video_track.done and (audio_track is None or audio_track.done):
            return False
    return True
