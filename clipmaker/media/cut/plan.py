"""Planning a cut: check the request, put the source on one clock, check the range against it.

``Timeline`` is the source's clock as the cut sees it: seconds from the first video frame, and
the video stream's pts. A request is checked before any packet is read (``check_arguments``,
``check_range``), and the result after (``check_not_truncated``): a stream that ends well
before what its header promises was cut short, and a shorter clip would be a silent lie.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
from av.container import InputContainer

from clipmaker.errors import CORRUPT_MEDIA, INVALID_REQUEST, RANGE_OUT_OF_BOUNDS, ClipError

__all__ = [
    "Accuracy",
    "Progress",
    "ProgressCallback",
    "Timeline",
    "check_arguments",
    "check_not_truncated",
    "check_range",
    "frame_rate",
    "source_timeline",
]

Accuracy = Literal["frame", "keyframe"]
ProgressCallback = Callable[[float], None]
PROGRESS_EVERY_S = 0.5  # of media time, between progress callbacks


@dataclass(frozen=True)
class Timeline:
    """Source times in seconds from the first video frame, and the video stream's pts."""

    time_base: Fraction
    origin: int  # video pts of source time 0
    duration: float | None  # seconds from origin to the end of the source, if known
    frame_s: float  # nominal frame duration

    def pts(self, seconds: float) -> int:
        return self.origin + round(seconds / self.time_base)

    def seconds(self, pts: int) -> float:
        return float((pts - self.origin) * self.time_base)

    def absolute(self, pts: int) -> float:
        """Seconds on the container's clock (what other streams' timestamps are on)."""
        return float(pts * self.time_base)


class Progress:
    """Calls ``callback`` with 0..1, at most every PROGRESS_EVERY_S of media."""

    def __init__(self, callback: ProgressCallback | None, span_s: float) -> None:
        self._callback = callback
        self._span = max(span_s, 1e-6)
        self._last = -math.inf

    def media_time(self, seconds_done: float) -> None:
        """Report that the clip is done up to ``seconds_done`` (negative: still before it)."""
        if self._callback is None or seconds_done - self._last < PROGRESS_EVERY_S:
            return
        if seconds_done < 0 and self._last > -math.inf:
            return  # one 0.0 while decoding up to start is enough
        self._last = max(seconds_done, 0.0)
        self._callback(min(max(seconds_done / self._span, 0.0), 0.99))


def frame_rate(stream: av.VideoStream) -> Fraction | None:
    """The stream's nominal frame rate, if it has a sensible one."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return rate if rate and rate > 0 else None


def check_arguments(start: float, end: float, accuracy: str) -> None:
    if accuracy not in ("frame", "keyframe"):
        raise ClipError(
            INVALID_REQUEST, f"accuracy must be 'frame' or 'keyframe', not {accuracy!r}"
        )
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ClipError(INVALID_REQUEST, f"{name} must be a finite number of seconds >= 0")
    if end <= start:
        raise ClipError(INVALID_REQUEST, f"end ({end:g} s) must be after start ({start:g} s)")


def source_timeline(container: InputContainer, video: av.VideoStream) -> Timeline:
    time_base = video.time_base or Fraction(1, 90000)
    if video.start_time is not None:
        origin = video.start_time
    else:
        origin = round((container.start_time or 0) / av.time_base / time_base)
    duration: float | None = None
    if container.duration:
        end_s = ((container.start_time or 0) + container.duration) / av.time_base
        duration = end_s - float(origin * time_base)
    elif video.duration:
        duration = float(video.duration * time_base)
    rate = frame_rate(video)
    frame_s = 1 / float(rate) if rate else 0.04
    return Timeline(time_base=time_base, origin=origin, duration=duration, frame_s=frame_s)


def check_range(start: float, end: float, timeline: Timeline) -> float:
    """Validate against the source's length; returns ``end`` clamped to it."""
    duration = timeline.duration
    if duration is None:
        return end
    if start >= duration:
        raise ClipError(
            RANGE_OUT_OF_BOUNDS,
            f"the clip {start:g}-{end:g} s starts after the source ends ({duration:.3f} s)",
        )
    if end > duration + timeline.frame_s:
        raise ClipError(
            RANGE_OUT_OF_BOUNDS,
            f"the clip {start:g}-{end:g} s ends after the source ends ({duration:.3f} s)",
        )
    return min(end, duration)


def check_not_truncated(
    where: str, video: av.VideoStream, timeline: Timeline, reached: int | None, wanted: int
) -> None:
    """Raise ``corrupt_media`` if the video stopped short of what its header promises.

    ``reached``: the pts where the video we found ends (None: no frame from ``wanted`` on).
    A stream that ends well before both the requested point and its own declared end was
    cut short on disk or in transit; a shorter clip would be a silent lie.
    """
    if video.duration is None:
        return
    declared_end = (video.start_time or 0) + video.duration
    slack = 2 * round(timeline.frame_s / timeline.time_base)
    if reached is None:
        short = wanted < declared_end - slack
        found = f"no video from {timeline.seconds(wanted):.2f} s on"
    else:
        short = reached < min(wanted, declared_end) - slack
        found = f"video only up to {timeline.seconds(reached):.2f} s"
    if short:
        raise ClipError(
            CORRUPT_MEDIA,
            f"{where} has {found} although it claims {timeline.seconds(declared_end):.2f} s: "
            "the file looks truncated",
        )
