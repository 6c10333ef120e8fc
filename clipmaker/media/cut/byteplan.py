"""Which bytes of the source a cut needs, from the container's own index.

A progressive MP4's sample tables (``moov``) say where every sample is and how big: after the
header is read, the clip's samples are known before any is fetched. The video from the
keyframe the cut decodes from to a few frames past the end, and the audio over the same span
(with a margin for the AAC pre-roll and the end), become byte ranges; the reader then fetches
exactly those, however the file interleaves its tracks (finely, in chunks, or all audio after
all video), instead of growing read-ahead that thrashes between distant regions. Containers
whose index doesn't list every sample (WebM's Cues, fragmented MP4, HLS) get no plan: the
reader's bounded read-ahead serves them.
"""

from __future__ import annotations

from collections.abc import Callable

import av
from av.container import InputContainer

from clipmaker.media.cut.plan import Timeline

__all__ = ["Planner", "audio_ranges", "clip_ranges"]

Planner = Callable[[list[tuple[int, int]]], None]
_INDEXED = frozenset({"mov", "mp4"})  # demuxers whose index lists every sample with its size
AUDIO_BEFORE_S = 0.5  # pre-roll and the audio placed before the first frame
AUDIO_AFTER_S = 0.5  # the last packet may run past the end; the demuxer reads one more
FRAMES_AFTER = 4  # frames decoded past the end (reordering) before the cut knows it is done


def _indexed(container: InputContainer, stream: av.VideoStream | av.AudioStream) -> bool:
    if not _INDEXED & set(container.format.name.split(",")):
        return False
    entries = stream.index_entries
    return len(entries) > 0 and all(e.size > 0 and e.pos >= 0 for e in entries)


def clip_ranges(
    container: InputContainer,
    video: av.VideoStream,
    audio: av.AudioStream | None,
    timeline: Timeline,
    start_pts: int,
    end_pts: int,
) -> tuple[list[tuple[int, int]] | None, float]:
    """The byte ranges of the video (and of ``audio``, in ``container`` too) that the cut
    from ``start_pts`` to ``end_pts`` reads, or None without a complete index; and the
    absolute time (s) the video is decoded from."""
    if not _indexed(container, video):
        return None, timeline.absolute(start_pts)
    entries = video.index_entries
    first = 0
    for i, entry in enumerate(entries):
        if entry.timestamp > start_pts:
            break
        if entry.is_keyframe:
            first = i
    ticks = max(1, round(timeline.frame_s / timeline.time_base))
    last = len(entries) - 1
    for i in range(first, len(entries)):
        if entries[i].timestamp >= end_pts + FRAMES_AFTER * ticks:
            last = i
            break
    ranges = [(e.pos, e.pos + e.size) for e in (entries[i] for i in range(first, last + 1))]
    from_s = timeline.absolute(entries[first].timestamp)
    if audio is not None:
        more = audio_ranges(container, audio, from_s, timeline.absolute(end_pts))
        if more is None:
            return None, from_s
        ranges += more
    return ranges, from_s


def audio_ranges(
    container: InputContainer, audio: av.AudioStream, from_s: float, to_s: float
) -> list[tuple[int, int]] | None:
    """The byte ranges of ``audio`` samples around ``[from_s, to_s]`` (container clock)."""
    if not _indexed(container, audio) or audio.time_base is None:
        return None
    lo, hi = from_s - AUDIO_BEFORE_S, to_s + AUDIO_AFTER_S
    base = audio.time_base
    return [(e.pos, e.pos + e.size) for e in audio.index_entries if lo <= e.timestamp * base <= hi]
