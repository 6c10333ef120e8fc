"""Video strategies that don't splice: a full re-encode, and a plain stream copy.

- ``VideoReencode`` decodes from the keyframe before the start, keeps the frames shown in
  ``[start, end)`` and encodes them with ``encoders.H264``: exact, and what every source
  falls back to.
- ``VideoCopy`` muxes the source's packets untouched from the keyframe at or before the start
  (``accuracy="keyframe"``): fast and lossless, up to one GOP early.

The smart cut, which does both within one track, is ``smart.SmartVideo``.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.encoders import H264, h264_options, keyint, match_source
from clipmaker.media.cut.plan import Timeline, frame_rate
from clipmaker.media.cut.track import VideoTrack

__all__ = ["VideoCopy", "VideoReencode"]


class VideoReencode(VideoTrack):
    """Decode from the keyframe before start, keep frames in [start, end), encode H.264."""

    mode = "reencode"

    def __init__(
        self,
        out: OutputContainer,
        source: av.VideoStream,
        timeline: Timeline,
        start_pts: int,
        end_pts: int,
    ) -> None:
        super().__init__()
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
        if not source.codec_context.is_open:  # (it is, on a second attempt)
            source.codec_context.thread_type = "AUTO"
        rate = frame_rate(source) or Fraction(25)
        ctx = source.codec_context
        self._stream = out.add_stream(H264.codec, rate=rate, options=h264_options(source))
        self._stream.width = ctx.width - ctx.width % 2  # 4:2:0 needs even sizes
        self._stream.height = ctx.height - ctx.height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = source.time_base
        self._stream.codec_context.gop_size = keyint(source)
        match_source(self._stream.codec_context, source)

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


class VideoCopy(VideoTrack):
    """Mux the source's packets untouched from the keyframe at or before start to end."""

    mode = "copy"

    def __init__(
        self,
        out: OutputContainer,
        source: av.VideoStream,
        timeline: Timeline,
        start_pts: int,
        end_pts: int,
    ) -> None:
        super().__init__()
        self._out = out
        self._timeline = timeline
        self._stop_pts = end_pts
        self._stream = out.add_stream_from_template(source)  # ValueError if MP4 can't hold it
        self._held: list[av.Packet] = []  # frames past end that earlier frames may need
        self._last_pts: int | None = None
        self._max_pts: int | None = None
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
