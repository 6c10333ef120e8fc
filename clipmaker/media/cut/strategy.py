"""Choosing how each stream gets into the clip: copied, smart-cut or re-encoded.

Video: ``accuracy="keyframe"`` copies (re-encoding only what MP4 can't carry); ``"frame"``
smart-cuts where the source allows and re-encodes in full where it does not, with a note
saying why. Audio: copied when browsers play it from an MP4 and it spans the clip, else
re-encoded to AAC.
"""

from __future__ import annotations

import contextlib

import av
from av.container import OutputContainer

from clipmaker.media.cut.audio import AudioCopy, AudioReencode, audio_covers
from clipmaker.media.cut.errors import SmartCutUnsupported
from clipmaker.media.cut.plan import Accuracy, Timeline
from clipmaker.media.cut.smart import SmartVideo
from clipmaker.media.cut.track import AudioTrack, VideoTrack
from clipmaker.media.cut.video import VideoCopy, VideoReencode
from clipmaker.media.probe import codec_name

__all__ = ["tracks"]

# Audio a stream copy keeps as is: what browsers play from an MP4. Anything else (PCM, AC-3,
# Vorbis...) is re-encoded to AAC even in keyframe mode; video is never touched there.
_COPYABLE_AUDIO = frozenset({"aac", "mp3", "opus"})
# Audio a frame-accurate clip copies too: AAC, placed to the sample by the MP4 edit list.
_EXACT_COPY_AUDIO = frozenset({"aac"})


def tracks(
    out: OutputContainer,
    video: av.VideoStream,
    audio: av.AudioStream | None,
    accuracy: Accuracy,
    timeline: Timeline,
    start_pts: int,
    end_pts: int,
    *,
    smart: bool,
) -> tuple[VideoTrack, AudioTrack | None]:
    """Choose how each stream gets into the clip (copied, smart-cut or re-encoded)."""
    video_track: VideoTrack
    note: str | None = None
    if accuracy == "keyframe":
        try:
            video_track = VideoCopy(out, video, timeline, start_pts, end_pts)
        except ValueError:  # a codec MP4 can't carry: an exact re-encode beats failing
            video_track = VideoReencode(out, video, timeline, start_pts, end_pts)
            note = f"MP4 can't carry {codec_name(video)} as is: re-encoded to H.264"
    else:
        try:
            if not smart:
                raise SmartCutUnsupported("")
            video_track = SmartVideo(out, video, timeline, start_pts, end_pts)
        except (SmartCutUnsupported, ValueError) as exc:
            video_track = VideoReencode(out, video, timeline, start_pts, end_pts)
            if isinstance(exc, SmartCutUnsupported):
                note = exc.note or None
            else:
                note = f"smart cut can't copy {codec_name(video)} into MP4; re-encoded"
    if note is not None:
        video_track.note = note
    if audio is None:
        return video_track, None
    end_abs = timeline.absolute(end_pts)
    with contextlib.suppress(ValueError):  # MP4 can't hold it as is: re-encoded below
        if video_track.mode == "copy" and codec_name(audio) in _COPYABLE_AUDIO:
            return video_track, AudioCopy(out, audio, end_abs)
        # the clip's first frame is shown at start or up to a frame before (not before origin)
        start_abs = max(
            timeline.absolute(start_pts) - timeline.frame_s, timeline.absolute(timeline.origin)
        )
        if (
            video_track.mode != "copy"
            and codec_name(audio) in _EXACT_COPY_AUDIO
            and audio_covers(audio, start_abs, end_abs)
        ):
            copy = AudioCopy(out, audio, end_abs, exact=True, margin_s=timeline.frame_s)
            return video_track, copy
    return video_track, AudioReencode(out, audio, end_abs, timeline.frame_s)
