"""One attempt at a cut: open the output, choose the tracks, pump the packets, check the
result against the source's length. ``clip.cut`` calls it again, re-encoding in full, when a
smart cut fails mid-way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.error
from av.container import InputContainer

from clipmaker.errors import NO_VIDEO_STREAM, NOT_MEDIA, RANGE_OUT_OF_BOUNDS, ClipError
from clipmaker.media.cut.byteplan import Planner, audio_ranges, clip_ranges
from clipmaker.media.cut.demux import audio_packets, interleave, packets_from_keyframe, pump
from clipmaker.media.cut.mux import open_output
from clipmaker.media.cut.plan import (
    Accuracy,
    Progress,
    Timeline,
    check_not_truncated,
    check_range,
    source_timeline,
)
from clipmaker.media.cut.strategy import tracks
from clipmaker.media.locations import describe_location
from clipmaker.media.probe import main_streams

__all__ = ["Outcome", "reset_decoders", "run"]


@dataclass(frozen=True)
class Outcome:
    mode: str
    source_start: float
    frames_reencoded: int
    frames_copied: int
    note: str | None


def reset_decoders(
    container: InputContainer, audio_input: tuple[InputContainer, str | Path] | None
) -> None:
    """Forget decoder state from an abandoned attempt (the next one seeks anew)."""
    containers = [container] + ([audio_input[0]] if audio_input is not None else [])
    for each in containers:
        for stream in (*each.streams.video, *each.streams.audio):
            if stream.codec_context is not None:
                with contextlib.suppress(av.error.FFmpegError):
                    stream.codec_context.flush_buffers()


def run(
    container: InputContainer,
    audio_input: tuple[InputContainer, str | Path] | None,
    source: str | Path,
    part: Path,
    start: float,
    end: float,
    accuracy: Accuracy,
    meter: Progress,
    *,
    smart: bool,
    planners: tuple[Planner | None, Planner | None] = (None, None),
) -> Outcome:
    """Cut into ``part``. ``planners``: where to say which bytes the cut needs, for the
    source and for the separate audio input (``SourceOpener.plan``)."""
    where = describe_location(source)
    video, audio = main_streams(container)
    if video is None:
        raise ClipError(NO_VIDEO_STREAM, f"{where} has no video stream to cut")
    if audio_input is not None:
        audio = main_streams(audio_input[0])[1]
        if audio is None:
            raise ClipError(
                NOT_MEDIA, f"{describe_location(audio_input[1])} has no audio stream to use"
            )
    timeline = source_timeline(container, video)
    requested_end = end
    end = check_range(start, end, timeline)
    start_pts, end_pts = timeline.pts(start), timeline.pts(end)
    _plan(container, video, audio, audio_input, timeline, start_pts, end_pts, planners)

    out = open_output(part)
    try:
        video_track, audio_track = tracks(
            out, video, audio, accuracy, timeline, start_pts, end_pts, smart=smart
        )
        tagged: Iterator[tuple[bool, av.Packet]]
        if audio_input is None:
            streams: list[av.VideoStream | av.AudioStream] = [video]
            if audio is not None:
                streams.append(audio)
            packets = packets_from_keyframe(container, streams, video, start_pts, timeline)
            tagged = ((packet.stream.index == video.index, packet) for packet in packets)
        else:
            assert audio is not None
            packets = packets_from_keyframe(container, [video], video, start_pts, timeline)
            audio_container, audio_where = audio_input
            tagged = interleave(
                packets,
                lambda at: audio_packets(audio_container, audio, at, audio_where),
            )
        reached_eof = pump(tagged, video_track, audio_track, timeline, meter, start)
        video_track.flush()
        if reached_eof and timeline.duration is None and video_track.end_pts is not None:
            # no length in the header: now that we have seen the end, check the range
            measured = replace(timeline, duration=timeline.seconds(video_track.end_pts))
            check_range(start, requested_end, measured)
        first_pts = video_track.first_pts
        if first_pts is None:
            check_not_truncated(where, video, timeline, None, start_pts)
            raise ClipError(RANGE_OUT_OF_BOUNDS, f"{where} has no video frames from {start:g} s on")
        clip_end = video_track.end_pts if video_track.end_pts is not None else first_pts
        check_not_truncated(where, video, timeline, clip_end, end_pts)
        if audio_track is not None:
            audio_track.set_zero(timeline.absolute(first_pts))  # no-op if already set
            audio_track.finish(float((clip_end - first_pts) * timeline.time_base))
        out.close()
    except BaseException:
        with contextlib.suppress(Exception):
            out.close()
        raise
    mode = video_track.mode
    note = video_track.note
    if mode == "smart" and video_track.frames_copied == 0:
        mode = "reencode"  # nothing could be copied (the clip lies within one GOP, or no IDR)
    return Outcome(
        mode=mode,
        source_start=timeline.seconds(first_pts),
        frames_reencoded=video_track.frames_reencoded,
        frames_copied=video_track.frames_copied,
        note=note,
    )


def _plan(
    container: InputContainer,
    video: av.VideoStream,
    audio: av.AudioStream | None,
    audio_input: tuple[InputContainer, str | Path] | None,
    timeline: Timeline,
    start_pts: int,
    end_pts: int,
    planners: tuple[Planner | None, Planner | None],
) -> None:
    """Tell the inputs which bytes the cut needs, where their index says (``byteplan``)."""
    plan, audio_plan = planners
    own_audio = audio if audio_input is None else None
    ranges, from_s = clip_ranges(container, video, own_audio, timeline, start_pts, end_pts)
    if plan is not None and ranges is not None:
        plan(ranges)
    if audio_plan is not None and audio_input is not None and audio is not None:
        more = audio_ranges(audio_input[0], audio, from_s, timeline.absolute(end_pts))
        if more is not None:
            audio_plan(more)
