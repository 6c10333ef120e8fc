"""Cut ``[start, end)`` out of a video into an MP4 that browsers play at once.

Two accuracies, because users want two different things:

- ``"frame"``: the clip's first frame is exactly the source frame shown at ``start`` and its
  last the one before ``end``. For H.264 this is a *smart cut* (``smartcut.py``): only the partial
  GOPs at the edges are decoded and re-encoded, with settings matched to the source, and every
  whole GOP in between is copied bit for bit (``CutResult.mode == "smart"``). Other codecs, and
  H.264 that can't be spliced safely, are decoded from the keyframe before ``start`` and wholly
  re-encoded to H.264 (``"reencode"``; ``CutResult.note`` says why). The clip's zero is its
  first frame's time, for sound as for picture. AAC audio that spans the clip is copied packet
  for packet from one packet before the zero (pre-roll) to the video's end; the MP4 edit list
  starts playback at the zero and ends it with the picture, to the sample, as it does for
  encoder priming (a player that ignores edit lists is off by less than one AAC frame at each
  end, 21 ms at 48 kHz). Other audio (or AAC that starts late or ends early)
  is decoded, trimmed to the sample at the zero, padded where missing and re-encoded to AAC.
  Either way audio is one continuous stream: no gap at the video's joints.
- ``"keyframe"``: a pure stream copy (no decoding, bit-identical packets) from the keyframe at or
  before ``start``: fast and lossless, but the clip may begin up to one GOP early.

Audio can come from a separate input (``audio=``: DASH-style video-only and audio-only streams,
as YouTube serves them); it is read over the same range, on the same clock, and the video
source's own audio is then ignored. Each input is a path, an http(s) URL, or an ``Opener``: a
callable returning a context manager that yields an opened PyAV input container (for callers
that read through their own byte source).

The source is opened with PyAV (FFmpeg), locally or over http(s). We seek before reading, so over
the network FFmpeg's http protocol fetches only the byte ranges around the clip, never the whole
file. The output is written to a temporary file next to ``dest`` and renamed into place only when
complete: on any failure, including a ``progress`` callback that raises to cancel, nothing is left
at ``dest``.

The video path is a strategy object fed demuxed packets: ``SmartVideo`` (smartcut.py),
``_VideoReencode`` or ``_VideoCopy``. A smart cut that finds mid-way that it can't splice safely
raises ``SmartCutFailed``; the cut then starts again as a full re-encode and says so.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Literal, Protocol

import av
import av.error
import numpy as np
from av.container import InputContainer, OutputContainer

from clipmaker.errors import (
    CORRUPT_MEDIA,
    INVALID_REQUEST,
    NO_VIDEO_STREAM,
    NOT_MEDIA,
    RANGE_OUT_OF_BOUNDS,
    ClipError,
)
from clipmaker.media.probe import (
    NETWORK_TIMEOUT_S,
    Opener,
    codec_name,
    describe_location,
    main_streams,
    media_error,
    open_input,
)
from clipmaker.media.smartcut import SmartCutFailed, SmartCutUnsupported, SmartVideo

__all__ = ["Accuracy", "CutResult", "Opener", "ProgressCallback", "cut"]

Accuracy = Literal["frame", "keyframe"]
ProgressCallback = Callable[[float], None]

VIDEO_CODEC = "libx264"
VIDEO_PRESET = "veryfast"
VIDEO_CRF = 20
GOP_SECONDS = 2.0
AUDIO_CODEC = "aac"
AUDIO_BITRATE_PER_CHANNEL = 64_000
PROGRESS_EVERY_S = 0.5  # of media time, between progress callbacks
_AAC_RATES = frozenset(
    {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
)
_SEEK_RETRIES = 6
# Audio a stream copy keeps as is: what browsers play from an MP4. Anything else (PCM, AC-3,
# Vorbis...) is re-encoded to AAC even in keyframe mode; video is never touched there.
_COPYABLE_AUDIO = frozenset({"aac", "mp3", "opus"})
# Audio a frame-accurate clip copies too: AAC, placed to the sample by the MP4 edit list.
_EXACT_COPY_AUDIO = frozenset({"aac"})
AUDIO_PREROLL_S = 1.0  # a separate audio input is read from this long before the video


@dataclass(frozen=True)
class CutResult:
    path: Path
    duration: float  # seconds, measured from the written file
    first_frame_time: float  # presentation time of the clip's first frame (0 when all is well)
    bytes: int
    video_codec: str
    audio_codec: str | None
    # "smart": partial GOPs re-encoded, whole GOPs copied; "reencode": every frame encoded by
    # us; "copy": a stream copy from a keyframe (accuracy="keyframe")
    mode: str
    source_start: float  # source time (s) of the clip's first frame; <= start
    frames_reencoded: int = 0  # video frames encoded by us
    frames_copied: int = 0  # video frames whose packets were copied from the source
    note: str | None = None  # why the cut fell back to a slower or less exact way, if it did


@dataclass(frozen=True)
class _Timeline:
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


class _Progress:
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


class _VideoTrack(Protocol):
    mode: str
    done: bool
    frames_reencoded: int
    frames_copied: int
    note: str | None
    first_pts: int | None  # source pts of the clip's first frame, once known
    end_pts: int | None  # source pts where the clip's video ends, once done

    def feed(self, packet: av.Packet) -> None: ...
    def flush(self) -> None: ...
    def position(self) -> float | None: ...


class _AudioTrack(Protocol):
    done: bool

    def set_zero(self, seconds: float) -> None: ...  # once; later calls are ignored
    def feed(self, packet: av.Packet) -> None: ...
    def finish(self, clip_seconds: float) -> None: ...


def _frame_rate(stream: av.VideoStream) -> Fraction | None:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return rate if rate and rate > 0 else None


class _VideoReencode:
    """Decode from the keyframe before start, keep frames in [start, end), encode H.264."""

    mode = "reencode"

    def __init__(
        self,
        out: OutputContainer,
        source: av.VideoStream,
        timeline: _Timeline,
        start_pts: int,
        end_pts: int,
    ) -> None:
        self._out = out
        self._source = source
        self._timeline = timeline
        self._start_pts = start_pts
        self._stop_pts = end_pts
        self._pending: av.VideoFrame | None = None  # latest frame at or before start
        self._held: av.VideoFrame | None = None  # emitted, not yet encoded (pts on clip clock)
        self._durations: dict[int, int] = {}  # clip pts -> how long that frame is shown
        self._last_pts: int | None = None
        self._last_out: int = -1
        self.first_pts: int | None = None
        self.end_pts: int | None = None
        self.done = False
        self.frames_reencoded = 0
        self.frames_copied = 0
        self.note: str | None = None
        if not source.codec_context.is_open:  # (it is, on a second attempt)
            source.codec_context.thread_type = "AUTO"
        rate = _frame_rate(source) or Fraction(25)
        ctx = source.codec_context
        self._stream = out.add_stream(
            VIDEO_CODEC,
            rate=rate,
            options={"preset": VIDEO_PRESET, "crf": str(VIDEO_CRF)},
        )
        self._stream.width = ctx.width - ctx.width % 2  # 4:2:0 needs even sizes
        self._stream.height = ctx.height - ctx.height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = source.time_base
        self._stream.codec_context.gop_size = max(1, round(GOP_SECONDS * float(rate)))
        if source.sample_aspect_ratio:
            self._stream.codec_context.sample_aspect_ratio = source.sample_aspect_ratio
        for attr in ("color_range", "color_primaries", "color_trc", "colorspace"):
            with contextlib.suppress(AttributeError, ValueError, TypeError):
                setattr(self._stream.codec_context, attr, getattr(ctx, attr))

    def position(self) -> float | None:
        return None if self._last_pts is None else self._timeline.seconds(self._last_pts)

    def feed(self, packet: av.Packet) -> None:
        for frame in packet.decode():
            self._frame(frame)

    def flush(self) -> None:
        if not self.done:
            with contextlib.suppress(av.error.EOFError):  # already drained at end of input
                for frame in self._source.decode(None):
                    self._frame(frame)
        if self._pending is not None and self.first_pts is None:
            self._emit(self._pending)  # the source ends right after start
            self._pending = None
        if self.end_pts is None and self._last_pts is not None:
            self.end_pts = self._last_pts + round(self._timeline.frame_s / self._timeline.time_base)
        if self.end_pts is not None:
            # the clip ends at end: its last frame is shown until then, not until the next one
            self.end_pts = min(self.end_pts, self._stop_pts)
        if self._held is not None and self.end_pts is not None and self.first_pts is not None:
            held_end = self.end_pts - self.first_pts
            self._encode(self._held, max(1, held_end - (self._held.pts or 0)))
            self._held = None
        self._mux(self._stream.encode(None))
        self.done = True

    def _frame(self, frame: av.VideoFrame) -> None:
        if self.done:
            return
        pts = frame.pts
        if pts is None:  # no timestamp: assume the nominal rate after the last one
            if self._last_pts is None:
                return
            pts = self._last_pts + round(self._timeline.frame_s / self._timeline.time_base)
            frame.pts = pts
        if pts <= self._start_pts:
            self._pending = frame  # shown at start unless a later frame is too
            self._last_pts = pts
            return
        if self._pending is not None:
            self._emit(self._pending)
            self._pending = None
        if pts >= self._stop_pts:
            self.end_pts = pts
            self.done = True
            return
        self._emit(frame)

    def _emit(self, frame: av.VideoFrame) -> None:
        pts = frame.pts
        assert pts is not None
        if self.first_pts is None:
            self.first_pts = pts
            if frame.rotation:
                # keep phone videos upright: the source's display matrix, as a rotation
                self._stream.set_display_rotation(frame.rotation)
        out_pts = pts - self.first_pts
        self._last_pts = pts
        if out_pts <= self._last_out:
            return  # duplicate timestamp: the encoder needs strictly increasing pts
        self._last_out = out_pts
        # held back one frame: its duration (until the next one, or the clip's end) is known
        if self._held is not None:
            self._encode(self._held, out_pts - (self._held.pts or 0))
        frame.pts = out_pts
        self._held = frame

    def _encode(self, frame: av.VideoFrame, duration: int) -> None:
        self.frames_reencoded += 1
        assert frame.pts is not None
        self._durations[frame.pts] = duration
        frame.time_base = self._source.time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # else libx264 copies source types
        self._mux(self._stream.encode(frame))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None and packet.pts in self._durations:
                packet.duration = self._durations.pop(packet.pts)
            self._out.mux(packet)


class _VideoCopy:
    """Mux the source's packets untouched from the keyframe at or before start to end."""

    mode = "copy"

    def __init__(
        self,
        out: OutputContainer,
        source: av.VideoStream,
        timeline: _Timeline,
        start_pts: int,
        end_pts: int,
    ) -> None:
        self._out = out
        self._timeline = timeline
        self._stop_pts = end_pts
        self._stream = out.add_stream_from_template(source)  # ValueError if MP4 can't hold it
        self._held: list[av.Packet] = []  # frames past end that earlier frames may need
        self._last_pts: int | None = None
        self._max_pts: int | None = None
        self.first_pts: int | None = None
        self.end_pts: int | None = None
        self.done = False
        self.frames_reencoded = 0
        self.frames_copied = 0
        self.note: str | None = None
        del start_pts  # the keyframe found by the seek decides where a copy starts

    def position(self) -> float | None:
        return None if self._last_pts is None else self._timeline.seconds(self._last_pts)

    def feed(self, packet: av.Packet) -> None:
        if self.done or packet.pts is None or packet.size == 0:
            return
        if self.first_pts is None:
            if not packet.is_keyframe:
                return  # can't start a copy on a frame that needs earlier ones
            self.first_pts = packet.pts
        if packet.pts < self.first_pts:
            return  # leading frames of an open GOP: they reference the previous GOP
        dts = packet.dts if packet.dts is not None else packet.pts
        if dts >= self._stop_pts or (
            packet.is_keyframe and packet.pts >= self._stop_pts and packet.pts != self.first_pts
        ):
            self._finish()
            return
        if packet.pts >= self._stop_pts:
            self._held.append(packet)  # past end: keep only if a later frame refers to it
            return
        for held in self._held:
            self._write(held)
        self._held.clear()
        self._write(packet)

    def flush(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if self.done:
            return
        self._held.clear()
        self.done = True
        if self.end_pts is None and self._max_pts is not None:
            self.end_pts = self._max_pts

    def _write(self, packet: av.Packet) -> None:
        assert self.first_pts is not None and packet.pts is not None
        pts = packet.pts
        end = pts + (packet.duration or round(self._timeline.frame_s / self._timeline.time_base))
        self._max_pts = end if self._max_pts is None else max(self._max_pts, end)
        self._last_pts = pts
        packet.pts = pts - self.first_pts
        if packet.dts is not None:
            packet.dts = packet.dts - self.first_pts
        packet.stream = self._stream
        self._out.mux(packet)
        self.frames_copied += 1


class _AudioReencode:
    """Decode, place samples on the video's clock (trim, fill gaps), encode AAC."""

    def __init__(
        self, out: OutputContainer, source: av.AudioStream, end_s: float, margin_s: float
    ) -> None:
        self._out = out
        self._source = source
        ctx = source.codec_context
        channels = ctx.channels or 2
        self._layout = "mono" if channels == 1 else "stereo"  # what every browser plays
        self._channels = 1 if channels == 1 else 2
        rate = ctx.sample_rate or 48000
        self._rate = rate if rate in _AAC_RATES else 48000
        self._stream = out.add_stream(AUDIO_CODEC, rate=self._rate)
        self._stream.layout = self._layout
        self._stream.bit_rate = AUDIO_BITRATE_PER_CHANNEL * self._channels
        self._stream.codec_context.time_base = Fraction(1, self._rate)
        self._resampler = av.AudioResampler(format="fltp", layout=self._layout, rate=self._rate)
        self._zero: float | None = None
        self._waiting: list[av.AudioFrame] = []
        self._buffer = np.zeros((self._channels, 0), dtype=np.float32)
        self._placed = 0  # samples placed on the clip's timeline so far
        self._encoded = 0  # samples handed to the encoder so far
        # Absolute until set_zero, then clip seconds. The video's end is at or after end_s
        # (the frame shown at end_s runs past it) but not by more than a frame: place samples
        # up to end + margin, encode eagerly only up to end - margin, finish() trims exactly.
        self._end_s = end_s
        self._margin_s = margin_s
        self._cap_s = end_s + margin_s
        self._tolerance = max(64, self._rate // 500)  # 2 ms: treat as contiguous
        self._frame_size = 1024
        self.done = False

    def set_zero(self, seconds: float) -> None:
        """The absolute source time that becomes 0 in the clip (the first video frame's)."""
        if self._zero is not None:
            return
        self._zero = seconds
        self._end_s -= seconds
        self._cap_s -= seconds
        self._frame_size = self._stream.codec_context.frame_size or 1024
        for frame in self._waiting:
            self._place(frame)
        self._waiting.clear()

    def feed(self, packet: av.Packet) -> None:
        if self.done:
            return
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            return  # one damaged audio packet: leave a gap, the next frame is placed by time
        for frame in frames:
            for converted in self._resampler.resample(frame):
                if converted.pts is None and frame.pts is not None:
                    converted.pts, converted.time_base = frame.pts, frame.time_base
                if self._zero is None:
                    self._waiting.append(converted)
                else:
                    self._place(converted)

    def _place(self, frame: av.AudioFrame) -> None:
        if self.done or self._zero is None:
            return
        data = frame.to_ndarray().astype(np.float32, copy=False)
        if data.ndim == 1:
            data = data.reshape(self._channels, -1)
        at = self._placed
        if frame.pts is not None and frame.time_base is not None:
            at = round((float(frame.pts * frame.time_base) - self._zero) * self._rate)
        if at < self._placed:
            data = data[:, self._placed - at :]  # before the zero, or overlapping
        elif at > self._placed + self._tolerance:
            self._append(np.zeros((self._channels, at - self._placed), dtype=np.float32))
        if data.shape[1]:
            self._append(data)
        cap = round(self._cap_s * self._rate)
        if self._placed >= cap:
            self.done = True
        safe = round((self._end_s - self._margin_s) * self._rate)
        while (
            self._buffer.shape[1] >= self._frame_size and self._encoded + self._frame_size <= safe
        ):
            self._encode(self._buffer[:, : self._frame_size])
            self._buffer = self._buffer[:, self._frame_size :]

    def _append(self, data: np.ndarray) -> None:
        cap = round(self._cap_s * self._rate) - self._placed
        data = data[:, : max(cap, 0)]
        self._buffer = np.concatenate([self._buffer, data], axis=1)
        self._placed += data.shape[1]

    def finish(self, clip_seconds: float) -> None:
        """Make the audio exactly ``clip_seconds`` long (the video's length) and flush."""
        if self._zero is None:
            return
        for converted in self._resampler.resample(None):
            self._place(converted)
        total = round(clip_seconds * self._rate)
        self._cap_s = max(self._cap_s, clip_seconds)
        if self._placed < total:
            self._append(np.zeros((self._channels, total - self._placed), dtype=np.float32))
        keep = max(0, total - self._encoded)
        self._buffer = self._buffer[:, :keep]
        while self._buffer.shape[1]:
            self._encode(self._buffer[:, : self._frame_size])
            self._buffer = self._buffer[:, self._frame_size :]
        for packet in self._stream.encode(None):
            self._out.mux(packet)
        self.done = True

    def _encode(self, data: np.ndarray) -> None:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(data), format="fltp", layout=self._layout
        )
        frame.sample_rate = self._rate
        frame.pts = self._encoded
        frame.time_base = Fraction(1, self._rate)
        self._encoded += data.shape[1]
        for packet in self._stream.encode(frame):
            self._out.mux(packet)


class _AudioCopy:
    """Mux the source's audio packets that overlap the clip, untouched.

    ``exact`` (frame-accurate clips): one packet before the clip's zero is kept as pre-roll (an
    AAC frame only decodes right after the one before it), so the first packets have negative
    times and the MP4 edit list tells players to start at 0, to the sample, as it does for an
    encoder's priming. At the end, packets are kept while they start before the video's real
    end (up to ``margin_s`` after ``end_s``), and the last one's duration is cut to that end, so
    the track (and its edit list) lasts exactly as long as the picture.
    """

    def __init__(
        self,
        out: OutputContainer,
        source: av.AudioStream,
        end_s: float,
        *,
        exact: bool = False,
        margin_s: float = 0.0,
    ) -> None:
        self._out = out
        self._stream = out.add_stream_from_template(source)  # ValueError if MP4 can't hold it
        self._end_abs = end_s  # absolute until set_zero
        self._exact = exact
        self._margin_s = margin_s if exact else 0.0
        self._zero_pts: int | None = None
        self._end_pts: int | None = None  # packets from here on are past the clip
        self._cut_pts: int | None = None  # packets from here on wait for the video's real end
        self._waiting: list[av.Packet] = []
        self._preroll: av.Packet | None = None
        self._held: list[av.Packet] = []
        self._last: av.Packet | None = None  # exact: written once the next one comes
        self._time_base = source.time_base or Fraction(1, source.codec_context.sample_rate or 1)
        self.done = False

    def set_zero(self, seconds: float) -> None:
        if self._zero_pts is not None:
            return
        self._zero_pts = round(seconds / self._time_base)
        self._cut_pts = round(self._end_abs / self._time_base)
        self._end_pts = round((self._end_abs + self._margin_s) / self._time_base)
        for packet in self._waiting:
            self.feed(packet)
        self._waiting.clear()

    def feed(self, packet: av.Packet) -> None:
        if self.done or packet.pts is None or packet.size == 0:
            return
        if self._zero_pts is None or self._end_pts is None or self._cut_pts is None:
            self._waiting.append(packet)
            return
        if packet.pts >= self._end_pts:
            self.done = True
            return
        if packet.pts + (packet.duration or 0) <= self._zero_pts:
            if self._exact:
                self._preroll = packet
            return  # wholly before the clip
        if self._preroll is not None:
            self._write(self._preroll)
            self._preroll = None
        if self._exact and packet.pts >= self._cut_pts:
            self._held.append(packet)
            return
        self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        if self._exact:  # hold the latest packet back: the clip's end may cut it short
            packet, self._last = self._last, packet
            if packet is None:
                return
        self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        assert packet.pts is not None and self._zero_pts is not None
        shift = self._zero_pts
        packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._stream
        self._out.mux(packet)

    def finish(self, clip_seconds: float) -> None:
        if self._zero_pts is not None:
            limit = self._zero_pts + round(clip_seconds / self._time_base)
            for packet in self._held:
                if packet.pts is not None and packet.pts < limit:
                    self._write(packet)
            last, self._last = self._last, None
            if last is not None and last.pts is not None:
                # the edit list ends the track here: sound stops with the picture, to the sample
                if last.duration:
                    last.duration = max(1, min(last.duration, limit - last.pts))
                self._mux(last)
        self._held.clear()
        self.done = True


def _check_arguments(start: float, end: float, accuracy: str) -> None:
    if accuracy not in ("frame", "keyframe"):
        raise ClipError(
            INVALID_REQUEST, f"accuracy must be 'frame' or 'keyframe', not {accuracy!r}"
        )
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ClipError(INVALID_REQUEST, f"{name} must be a finite number of seconds >= 0")
    if end <= start:
        raise ClipError(INVALID_REQUEST, f"end ({end:g} s) must be after start ({start:g} s)")


def _timeline(container: InputContainer, video: av.VideoStream) -> _Timeline:
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
    rate = _frame_rate(video)
    frame_s = 1 / float(rate) if rate else 0.04
    return _Timeline(time_base=time_base, origin=origin, duration=duration, frame_s=frame_s)


def _check_range(start: float, end: float, timeline: _Timeline) -> float:
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


def _packets_from_keyframe(
    container: InputContainer,
    streams: list[av.VideoStream | av.AudioStream],
    video: av.VideoStream,
    target: int,
    timeline: _Timeline,
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


def _check_not_truncated(
    where: str, video: av.VideoStream, timeline: _Timeline, reached: int | None, wanted: int
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


def _open_output(path: Path) -> OutputContainer:
    return av.open(str(path), "w", format="mp4", container_options={"movflags": "+faststart"})


def _describe_output(path: Path) -> tuple[float, float, str, str | None]:
    """(duration, first frame time, video codec, audio codec) read back from ``path``."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = (container.duration or 0) / av.time_base
        first_time = 0.0
        for frame in container.decode(video):
            first_time = float(frame.time) if frame.time is not None else 0.0
            break
        return duration, first_time, codec_name(video), codec_name(audio) if audio else None


def _part_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.part")


def _where(location: str | Path | Opener, default: str) -> str | Path:
    """What messages call an input: its path or URL, or an opener's ``location`` attribute."""
    if isinstance(location, str | Path):
        return location
    return str(getattr(location, "location", None) or default)


def _enter(
    stack: contextlib.ExitStack,
    location: str | Path | Opener,
    where: str | Path,
    http_headers: Mapping[str, str] | None,
    timeout_s: float,
) -> InputContainer:
    if isinstance(location, str | Path):
        return stack.enter_context(
            open_input(location, http_headers=http_headers, timeout_s=timeout_s)
        )
    if not callable(location):
        raise ClipError(INVALID_REQUEST, f"cannot open {type(location).__name__} as a source")
    try:
        return stack.enter_context(location())
    except ClipError:
        raise
    except (av.error.FFmpegError, OSError, EOFError) as exc:
        raise media_error(exc, where, opening=True) from exc


@dataclass(frozen=True)
class _Outcome:
    mode: str
    source_start: float
    frames_reencoded: int
    frames_copied: int
    note: str | None


def cut(
    source: str | Path | Opener,
    dest: Path,
    start: float,
    end: float,
    *,
    accuracy: Accuracy = "frame",
    http_headers: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = NETWORK_TIMEOUT_S,
    audio: str | Path | Opener | None = None,
) -> CutResult:
    """Write the part of ``source`` from ``start`` to ``end`` (seconds, end exclusive) to ``dest``.

    ``source`` is a local path, an http(s) media URL (``http_headers`` go with every request) or
    an ``Opener``. ``audio``, if given, is a separate audio input (same kinds) whose audio goes
    into the clip instead of the source's own, on the same clock. ``progress`` is called with
    0..1 as work proceeds; if it raises, the cut stops, nothing is left at ``dest`` and the
    exception propagates. Raises ``ClipError`` for bad input: ``invalid_request``,
    ``range_out_of_bounds``, ``no_video_stream``, ``not_media``, ``corrupt_media``,
    ``source_unreachable``, ``invalid_source_url``.
    """
    _check_arguments(start, end, accuracy)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    where = _where(source, "the source")
    audio_where = _where(audio, "the audio source") if audio is not None else None
    meter = _Progress(progress, end - start)
    try:
        with contextlib.ExitStack() as stack:
            container = _enter(stack, source, where, http_headers, timeout_s)
            audio_input = None
            if audio is not None:
                assert audio_where is not None
                audio_input = (
                    _enter(stack, audio, audio_where, http_headers, timeout_s),
                    audio_where,
                )
            smart_failed: str | None = None
            while True:
                try:
                    outcome = _run(
                        container,
                        audio_input,
                        where,
                        part,
                        start,
                        end,
                        accuracy,
                        meter,
                        smart=smart_failed is None,
                    )
                except SmartCutFailed as exc:
                    if smart_failed is not None:
                        raise AssertionError("a full re-encode raised SmartCutFailed") from exc
                    smart_failed = exc.note  # start again, re-encoding every frame
                    part.unlink(missing_ok=True)
                    _reset_decoders(container, audio_input)
                    continue
                except ClipError:
                    raise
                except (av.error.FFmpegError, OSError, EOFError) as exc:
                    raise media_error(exc, where) from exc
                break
            if smart_failed is not None:
                outcome = replace(outcome, note=smart_failed)
        duration, first_time, video_codec, audio_codec = _describe_output(part)
        size = part.stat().st_size
        if progress is not None:
            progress(1.0)  # last chance to cancel before the clip appears at dest
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return CutResult(
        path=dest,
        duration=duration,
        first_frame_time=first_time,
        bytes=size,
        video_codec=video_codec,
        audio_codec=audio_codec,
        mode=outcome.mode,
        source_start=outcome.source_start,
        frames_reencoded=outcome.frames_reencoded,
        frames_copied=outcome.frames_copied,
        note=outcome.note,
    )


def _reset_decoders(
    container: InputContainer, audio_input: tuple[InputContainer, str | Path] | None
) -> None:
    """Forget decoder state from an abandoned attempt (the next one seeks anew)."""
    containers = [container] + ([audio_input[0]] if audio_input is not None else [])
    for each in containers:
        for stream in (*each.streams.video, *each.streams.audio):
            if stream.codec_context is not None:
                with contextlib.suppress(av.error.FFmpegError):
                    stream.codec_context.flush_buffers()


def _run(
    container: InputContainer,
    audio_input: tuple[InputContainer, str | Path] | None,
    source: str | Path,
    part: Path,
    start: float,
    end: float,
    accuracy: Accuracy,
    meter: _Progress,
    *,
    smart: bool,
) -> _Outcome:
    """Cut into ``part``."""
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
    timeline = _timeline(container, video)
    requested_end = end
    end = _check_range(start, end, timeline)
    start_pts, end_pts = timeline.pts(start), timeline.pts(end)

    out = _open_output(part)
    try:
        video_track, audio_track = _tracks(
            out, video, audio, accuracy, timeline, start_pts, end_pts, smart=smart
        )
        tagged: Iterator[tuple[bool, av.Packet]]
        if audio_input is None:
            streams: list[av.VideoStream | av.AudioStream] = [video]
            if audio is not None:
                streams.append(audio)
            packets = _packets_from_keyframe(container, streams, video, start_pts, timeline)
            tagged = ((packet.stream.index == video.index, packet) for packet in packets)
        else:
            assert audio is not None
            packets = _packets_from_keyframe(container, [video], video, start_pts, timeline)
            audio_container, audio_where = audio_input
            tagged = _interleave(
                packets,
                lambda at: _audio_packets(audio_container, audio, at, audio_where),
            )
        reached_eof = _pump(tagged, video_track, audio_track, timeline, meter, start)
        video_track.flush()
        if reached_eof and timeline.duration is None and video_track.end_pts is not None:
            # no length in the header: now that we have seen the end, check the range
            measured = replace(timeline, duration=timeline.seconds(video_track.end_pts))
            _check_range(start, requested_end, measured)
        first_pts = video_track.first_pts
        if first_pts is None:
            _check_not_truncated(where, video, timeline, None, start_pts)
            raise ClipError(RANGE_OUT_OF_BOUNDS, f"{where} has no video frames from {start:g} s on")
        clip_end = video_track.end_pts if video_track.end_pts is not None else first_pts
        _check_not_truncated(where, video, timeline, clip_end, end_pts)
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
    return _Outcome(
        mode=mode,
        source_start=timeline.seconds(first_pts),
        frames_reencoded=video_track.frames_reencoded,
        frames_copied=video_track.frames_copied,
        note=note,
    )


def _tracks(
    out: OutputContainer,
    video: av.VideoStream,
    audio: av.AudioStream | None,
    accuracy: Accuracy,
    timeline: _Timeline,
    start_pts: int,
    end_pts: int,
    *,
    smart: bool,
) -> tuple[_VideoTrack, _AudioTrack | None]:
    """Choose how each stream gets into the clip (copied, smart-cut or re-encoded)."""
    video_track: _VideoTrack
    note: str | None = None
    if accuracy == "keyframe":
        try:
            video_track = _VideoCopy(out, video, timeline, start_pts, end_pts)
        except ValueError:  # a codec MP4 can't carry: an exact re-encode beats failing
            video_track = _VideoReencode(out, video, timeline, start_pts, end_pts)
            note = f"MP4 can't carry {codec_name(video)} as is: re-encoded to H.264"
    else:
        try:
            if not smart:
                raise SmartCutUnsupported("")
            video_track = SmartVideo(out, video, timeline, start_pts, end_pts)
        except (SmartCutUnsupported, ValueError) as exc:
            video_track = _VideoReencode(out, video, timeline, start_pts, end_pts)
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
            return video_track, _AudioCopy(out, audio, end_abs)
        # the clip's first frame is shown at start or up to a frame before (not before origin)
        start_abs = max(
            timeline.absolute(start_pts) - timeline.frame_s, timeline.absolute(timeline.origin)
        )
        if (
            video_track.mode != "copy"
            and codec_name(audio) in _EXACT_COPY_AUDIO
            and _audio_covers(audio, start_abs, end_abs)
        ):
            copy = _AudioCopy(out, audio, end_abs, exact=True, margin_s=timeline.frame_s)
            return video_track, copy
    return video_track, _AudioReencode(out, audio, end_abs, timeline.frame_s)


def _audio_covers(audio: av.AudioStream, start_s: float, end_s: float) -> bool:
    """Whether the audio stream's header says it spans ``[start_s, end_s)`` (container clock).

    Copied packets can't fill a gap; where the audio starts late or ends early (or its span
    is unknown) it is re-encoded, which pads with silence.
    """
    time_base = audio.time_base
    container = audio.container
    if time_base is None or audio.start_time is None:
        return False
    begin = float(audio.start_time * time_base)
    if audio.duration:
        finish = begin + float(audio.duration * time_base)
    elif container is not None and container.duration:
        finish = ((container.start_time or 0) + container.duration) / av.time_base
    else:
        return False
    frame_s = 1024 / (audio.sample_rate or 48000)  # an AAC frame: what a copy is exact to
    return begin <= start_s + frame_s and finish >= end_s - frame_s


def _packet_seconds(packet: av.Packet) -> float | None:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


def _audio_packets(
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


def _interleave(
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


def _pump(
    tagged: Iterator[tuple[bool, av.Packet]],
    video_track: _VideoTrack,
    audio_track: _AudioTrack | None,
    timeline: _Timeline,
    meter: _Progress,
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
