"""The pieces a smart cut joins its parts with: one track writer whose decode times run
across the joints, one encoder run per re-encoded part, and the decode-order arithmetic that
says what can be copied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.errors import SmartCutFailed
from clipmaker.media.cut.splicing import SpliceCodec

__all__ = ["EncoderRun", "SpliceWriter", "closed_prefix", "display_lag"]


def display_lag(pts_in_decode_order: Sequence[int]) -> int:
    """How many places a packet comes earlier in decode order than in display order, at most."""
    rank = {pts: i for i, pts in enumerate(sorted(pts_in_decode_order))}
    return max((i - rank[pts] for i, pts in enumerate(pts_in_decode_order)), default=0)


class SpliceWriter:
    """Muxes a track's packets with pts on the clip's clock and dts recomputed for all parts.

    ``show`` announces each frame's pts in display order (a segment's frames before its
    packets); ``write`` takes packets in decode order. dts of the n-th packet is the pts of the
    (n - R)-th frame shown, extrapolated before the first one.
    """

    def __init__(
        self, out: OutputContainer, stream: av.VideoStream, time_base: Fraction, ticks: int
    ) -> None:
        self._out = out
        self._stream = stream
        self._time_base = time_base
        self._ticks = ticks
        self._shown: list[int] = []
        self._written = 0
        self.reorder: int | None = None  # R, fixed by the first write

    def show(self, pts: int) -> None:
        if self._shown and pts <= self._shown[-1]:
            raise SmartCutFailed("smart cut met frames out of order at a joint; re-encoded")
        self._shown.append(pts)

    def write(self, payload: bytes, pts: int, keyframe: bool, duration: int) -> None:
        assert self.reorder is not None, "reorder depth must be set before the first write"
        n = self._written - self.reorder
        if n >= len(self._shown):
            raise SmartCutFailed("smart cut lost track of frame order; re-encoded")
        dts = self._shown[n] if n >= 0 else self._shown[0] + n * self._ticks
        if dts > pts:
            raise SmartCutFailed(
                "the source reorders frames deeper than its header says; re-encoded"
            )
        packet = av.Packet(payload)
        packet.pts, packet.dts = pts, dts
        packet.duration = max(1, duration)
        packet.time_base = self._time_base
        packet.is_keyframe = keyframe
        packet.stream = self._stream
        self._out.mux(packet)
        self._written += 1


class EncoderRun:
    """One encoder run: frames in display order in, packets as the track stores them out
    (``SpliceCodec.encoded``).

    Holds one frame back, so each frame's duration (until the next one) is known when it is
    encoded and the last one can last until the clip's end.
    """

    def __init__(
        self,
        ctx: av.VideoCodecContext,
        writer: SpliceWriter,
        zero: int,
        time_base: Fraction,
        ticks: int,
        codec: SpliceCodec,
    ) -> None:
        self._ctx = ctx
        self._codec = codec
        self._writer = writer
        self._zero = zero
        self._time_base = time_base
        self._ticks = ticks
        self._held: av.VideoFrame | None = None
        self._last: int | None = None
        self._durations: dict[int, int] = {}
        self.count = 0

    def add(self, frame: av.VideoFrame) -> None:
        assert frame.pts is not None
        if self._held is not None:
            if frame.pts <= self._held.pts:
                return  # a duplicate timestamp: the encoder needs increasing pts
            self._encode(self._held, frame.pts - self._held.pts)
        self._held = frame

    def finish(self, end_pts: int) -> None:
        if self._held is not None:
            self._encode(self._held, max(1, end_pts - self._held.pts))
            self._held = None
        self._write(self._ctx.encode(None))

    def _encode(self, frame: av.VideoFrame, duration: int) -> None:
        assert frame.pts is not None
        pts = frame.pts - self._zero
        self._writer.show(pts)
        self._durations[pts] = duration
        if (frame.width, frame.height) != (self._ctx.width, self._ctx.height):
            raise SmartCutFailed("the source changes its frame size; re-encoded")
        if frame.format.name != self._ctx.pix_fmt:
            frame = frame.reformat(format=self._ctx.pix_fmt)
        frame.pts = pts
        frame.time_base = self._time_base
        frame.pict_type = av.video.frame.PictureType.NONE  # else libx264 copies source types
        self.count += 1
        try:
            packets = self._ctx.encode(frame)
        except av.error.FFmpegError as exc:
            name = self._codec.name
            raise SmartCutFailed(
                f"the {name} encoder failed on a frame ({exc}); re-encoded"
            ) from exc
        self._write(packets)

    def _write(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            assert packet.pts is not None
            self._writer.write(
                self._codec.encoded(packet),
                packet.pts,
                packet.is_keyframe,
                self._durations.pop(packet.pts, self._ticks),
            )


def closed_prefix(pts_in_decode_order: Sequence[int], end: int) -> int:
    """Length of the longest decode-order prefix, all before ``end``, shown before the rest.

    Those packets can be copied: they decode without anything after them, and every frame of
    the clip not among them is shown later, so it can be re-encoded as a new, separate GOP.
    """
    n = len(pts_in_decode_order)
    later = [math.inf] * (n + 1)  # smallest clip pts from i on
    for i in range(n - 1, -1, -1):
        pts = pts_in_decode_order[i]
        later[i] = min(later[i + 1], pts if pts < end else math.inf)
    best, shown = 0, -math.inf
    for i, pts in enumerate(pts_in_decode_order):
        if pts >= end:
            break
        shown = max(shown, pts)
        if shown < later[i + 1]:
            best = i + 1
    return best
