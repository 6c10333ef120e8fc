"""The one interface every way of getting a stream into the clip implements.

A cut demuxes the source once and feeds each packet to a video track and an audio track; the
strategy behind each (copied, smart-cut, re-encoded) is chosen by ``strategy.tracks``. The base
classes hold what the cut reads back from any strategy: how far it got, whether it is done,
what it did (``mode``, frame counts, ``note``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import av

__all__ = ["AudioTrack", "VideoTrack"]


class VideoTrack(ABC):
    """The clip's video: fed demuxed packets in decode order from a keyframe at or before
    the start, until ``done``; then ``flush``ed."""

    mode: str  # "copy", "smart" or "reencode": what CutResult.mode reports

    def __init__(self) -> None:
        self.done = False
        self.frames_reencoded = 0  # video frames encoded by us
        self.frames_copied = 0  # video frames whose packets were copied from the source
        self.note: str | None = None  # why a slower or less exact way was taken, if it was
        self.first_pts: int | None = None  # source pts of the clip's first frame, once known
        self.end_pts: int | None = None  # source pts where the clip's video ends, once done

    @abstractmethod
    def feed(self, packet: av.Packet) -> None:
        """Take the next demuxed packet (decode order)."""

    @abstractmethod
    def flush(self) -> None:
        """The input ended (or the track is done): write out what is held."""

    @abstractmethod
    def position(self) -> float | None:
        """Source seconds reached so far, for progress (None before the first frame)."""


class AudioTrack(ABC):
    """The clip's audio, placed on the video's clock: its zero is the first frame's time."""

    def __init__(self) -> None:
        self.done = False

    @abstractmethod
    def set_zero(self, seconds: float) -> None:
        """The absolute source time that becomes 0 in the clip; once, later calls ignored."""

    @abstractmethod
    def feed(self, packet: av.Packet) -> None:
        """Take the next demuxed audio packet."""

    @abstractmethod
    def finish(self, clip_seconds: float) -> None:
        """Make the audio exactly ``clip_seconds`` long (the video's length) and flush."""
