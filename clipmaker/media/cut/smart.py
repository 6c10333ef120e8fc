"""Smart cut: re-encode only the partial GOPs at the edges, copy every whole GOP bit for bit.

The clip is three segments on one timeline, each closed in display order:

    head (re-encoded)      | copied GOPs (source packets, bit for bit) | tail (re-encoded)
    [first frame, C0)      | [C0, X)                                   | [X, end)

- C0 is the first *clean entry point* at or after the first frame: a keyframe that decoding
  can start at (an IDR) and that no frame of its GOP is shown before (an open GOP's I picture
  is not one: the frames shown before it reference the previous GOP). The head is decoded from
  the keyframe before the start, frames before the start dropped, and encoded by an encoder
  matched to the source (``SpliceCodec``: one per codec, e.g. ``h264_splice.H264Splice``).
- GOPs wholly inside the range are copied packet for packet. In the last one, the longest
  prefix (in decode order) whose frames are all shown before the rest is copied too; the
  frames after it (B-frames that need a picture past the end, usually a few) are decoded and
  re-encoded as a tail. When the range ends on a GOP boundary nothing is re-encoded there.
- Timestamps: pts are the source's minus the first frame's; dts are recomputed for the whole
  track as "the pts shown R frames earlier" (R = the deepest frame reordering of any part), so
  they increase strictly across the joints and never pass a pts (``splice.SpliceWriter``).

Anything this cannot splice safely raises ``SmartCutUnsupported`` (before any work: another
codec, interlacing, an unusual pixel format) or ``SmartCutFailed`` (found while cutting); the
caller then re-encodes the whole clip and says why.
"""

from __future__ import annotations

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.errors import SmartCutFailed, SmartCutUnsupported
from clipmaker.media.cut.h264_splice import H264Splice
from clipmaker.media.cut.hevc_splice import HevcSplice
from clipmaker.media.cut.keyframe_splice import KeyframeSplice
from clipmaker.media.cut.plan import Timeline
from clipmaker.media.cut.splice import EncoderRun, SpliceWriter, closed_prefix, display_lag
from clipmaker.media.cut.splicing import SpliceCodec
from clipmaker.media.cut.track import VideoTrack

__all__ = ["SmartVideo", "splice_codec"]


def splice_codec(source: av.VideoStream, clock: Timeline) -> SpliceCodec:
    """The codec side of a smart cut of ``source``; ``SmartCutUnsupported`` if there is none."""
    name = source.codec_context.codec.canonical_name
    if name == "h264":
        return H264Splice(source, clock)
    if name == "hevc":
        return HevcSplice(source, clock)
    if name in ("vp9", "av1"):
        return KeyframeSplice(source, clock)
    raise SmartCutUnsupported(f"smart cut supports H.264, HEVC, VP9 and AV1; {name} was re-encoded")


class SmartVideo(VideoTrack):
    """The video track of a frame-accurate cut that copies whole GOPs.

    Fed demuxed packets in decode order, starting at a keyframe at or before the start.
    Buffers one GOP at a time (decode order, keyframe first): a GOP is only judged once its
    last packet is in.
    """

    mode = "smart"

    def __init__(
        self,
        out: OutputContainer,
        source: av.VideoStream,
        clock: Timeline,
        start_pts: int,
        end_pts: int,
    ) -> None:
        super().__init__()
        self._source = source
        self._clock = clock
        self._start = start_pts
        self._end = end_pts
        self._time_base = clock.time_base
        self._ticks = max(1, round(clock.frame_s / clock.time_base))
        self._codec = splice_codec(source, clock)
        self._observed = 0
        self._stream = self._codec.add_stream(out, source)  # ValueError if MP4 can't hold it
        extradata = self._codec.track_extradata()
        if extradata is not None:
            self._stream.codec_context.extradata = extradata
        self._writer = SpliceWriter(out, self._stream, self._time_base, self._ticks)
        self._decoder = source.codec_context
        if not self._decoder.is_open:
            self._decoder.thread_type = "AUTO"
        self._head: EncoderRun | None = None
        self._pending: av.VideoFrame | None = None  # latest decoded frame at or before start
        self._copying = False
        self._gop: list[av.Packet] = []
        self._previous: list[av.Packet] = []  # the last GOP copied (an open GOP may need it)
        self._after_end: int | None = None  # smallest pts seen at or past the end
        self._last_shown: int | None = None  # source pts of the latest frame in the clip
        self._last_duration = self._ticks
        self._position: int | None = None
        self._unclean_keyframes = 0  # open-GOP keyframes inside the range, not copied from

    # -- the track protocol ------------------------------------------------------------------

    def position(self) -> float | None:
        return None if self._position is None else self._clock.seconds(self._position)

    def feed(self, packet: av.Packet) -> None:
        if self.done or packet.size == 0:
            return
        if packet.pts is None:
            raise SmartCutFailed("a video packet has no timestamp; re-encoded")
        dts = packet.dts
        past = (
            dts >= self._end if dts is not None else packet.is_keyframe and packet.pts >= self._end
        )
        if past and self._gop:
            # decode times only grow and a frame is never shown before it is decoded:
            # nothing from here on is in the clip
            self._saw_after_end(packet.pts)
            self._finish()
            return
        if packet.is_keyframe and self._gop:
            gop, self._gop = self._gop, []
            self._close(gop, final=False)
            if self.done:
                return
        if not self._gop and not packet.is_keyframe:
            return
        self._gop.append(packet)
        self._position = packet.pts if dts is None else dts

    def flush(self) -> None:
        self._finish()

    # -- GOPs --------------------------------------------------------------------------------

    def _close(self, gop: list[av.Packet], *, final: bool) -> None:
        self._observed = max(self._observed, display_lag([p.pts for p in gop]))
        if not self._copying and self._clean_entry(gop):
            self._end_head(gop[0].pts)
            self._copying = True
        elif not self._copying and self._start < gop[0].pts < self._end:
            self._unclean_keyframes += 1
        if self._copying:
            self._copy(gop, final=final)
        else:
            self._decode_head(gop)
            if final:
                self._finish_head()

    def _finish(self) -> None:
        if self.done:
            return
        gop, self._gop = self._gop, []
        if gop:
            self._close(gop, final=True)
        elif self._copying:
            self._finish_copy()
        else:
            self._finish_head()
        self.done = True

    def _clean_entry(self, gop: list[av.Packet]) -> bool:
        """Whether copying can start at this GOP's keyframe (and the head end before it)."""
        key = gop[0].pts
        if not self._codec.is_entry(gop[0]) or any(p.pts < key for p in gop):
            return False  # an open GOP: frames shown before the keyframe need the last GOP
        if key > self._start:
            return True
        # the keyframe is shown at or before start: only if no later frame of it is, too
        return not any(key < p.pts <= self._start for p in gop)

    # -- head --------------------------------------------------------------------------------

    def _decode_head(self, gop: list[av.Packet]) -> None:
        for packet in gop:
            try:
                frames = self._decoder.decode(packet)
            except av.error.InvalidDataError:
                continue  # a damaged packet before the clip; what matters shows up below
            for frame in frames:
                self._head_frame(frame)

    def _drain_decoder(self) -> list[av.VideoFrame]:
        try:
            frames = self._decoder.decode(None)
        except av.error.EOFError:
            frames = []
        depth = self._decoder.reorder_depth
        self._decoder.flush_buffers()
        self._decoder.reorder_depth = depth  # else FFmpeg relearns it and may drop B-frames
        return frames

    def _head_frame(self, frame: av.VideoFrame) -> None:
        pts = frame.pts
        if pts is None:
            if self._last_shown is None:
                return
            pts = frame.pts = self._last_shown + self._ticks
        if pts >= self._end:
            self._saw_after_end(pts)
            return
        if pts <= self._start:
            self._pending = frame  # shown at start unless a later frame is too
            return
        if self._pending is not None:
            self._emit_head(self._pending)
            self._pending = None
        self._emit_head(frame)

    def _emit_head(self, frame: av.VideoFrame) -> None:
        assert frame.pts is not None
        if self._last_shown is not None and frame.pts <= self._last_shown:
            return
        if self.first_pts is None:
            self.first_pts = frame.pts
        if self._head is None:
            self._fix_reorder()
            self._head = self._encode_with(self._codec.open_encoder())
        self._head.add(frame)
        self._last_shown = frame.pts

    def _end_head(self, key: int) -> None:
        """Copying starts at ``key``: encode what is left of the head, up to it."""
        for frame in self._drain_decoder():
            if frame.pts is None or frame.pts < key:
                self._head_frame(frame)
        if self.first_pts is None:
            if self._pending is not None and key > self._start:
                self._emit_head(self._pending)  # the frame shown at start, alone in the head
            else:
                self.first_pts = key
        self._pending = None
        if self._head is not None:
            self._head.finish(key)
            self.frames_reencoded += self._head.count
        if self._unclean_keyframes:
            self.note = (
                f"open GOPs: {self._unclean_keyframes} keyframe(s) after the start are not clean "
                "entry points (not IDR), so the clip was re-encoded up to the first IDR"
            )
        else:
            self._fix_reorder()

    def _finish_head(self) -> None:
        """The clip ends before any clean keyframe: all of it was re-encoded."""
        for frame in self._drain_decoder():
            self._head_frame(frame)
        if self._pending is not None:
            self._emit_head(self._pending)
            self._pending = None
        if self._head is None or self._last_shown is None:
            return
        self.end_pts = self._clip_end()
        self._head.finish(self.end_pts)
        self.frames_reencoded += self._head.count
        count = self._head.count
        if self._unclean_keyframes:
            self.note = (
                f"open GOPs: the {self._unclean_keyframes} keyframe(s) inside the range are not "
                f"clean entry points (not IDR), so all {count} frames were re-encoded"
            )
        else:
            self.note = f"no keyframe inside the range to copy from: all {count} frames re-encoded"

    def _encode_with(self, ctx: av.VideoCodecContext) -> EncoderRun:
        """An encoder run that writes into this splice (the head, or the tail)."""
        assert self.first_pts is not None
        return EncoderRun(
            ctx,
            self._writer,
            self.first_pts,
            self._time_base,
            self._ticks,
            self._codec,
        )

    def _fix_reorder(self) -> None:
        if self._writer.reorder is None:
            codec = self._codec
            self._writer.reorder = max(codec.encoder_reorder, codec.source_reorder, self._observed)

    # -- copy and tail -----------------------------------------------------------------------

    def _copy(self, gop: list[av.Packet], *, final: bool) -> None:
        inside = [p for p in gop if p.pts < self._end]
        if not final and len(inside) == len(gop):
            self._write_copied(gop, None)
            self._previous = gop
            return
        # the last GOP of the clip
        for packet in gop:
            if packet.pts >= self._end:
                self._saw_after_end(packet.pts)
        count = closed_prefix([p.pts for p in gop], self._end)
        copied, rest = gop[:count], [p for p in gop[count:] if p.pts < self._end]
        if rest:
            self._write_copied(copied, min(p.pts for p in rest))
            self._reencode_tail(gop, rest)
        else:
            if copied:
                last = max(copied, key=lambda p: p.pts)
                self._last_shown, self._last_duration = last.pts, last.duration or self._ticks
            self.end_pts = self._clip_end()
            self._write_copied(copied, self.end_pts)
        self.done = True

    def _finish_copy(self) -> None:
        if self._last_shown is not None:
            self.end_pts = self._clip_end()

    def _write_copied(self, packets: list[av.Packet], segment_end: int | None) -> None:
        if not packets:
            return
        self._fix_reorder()
        assert self.first_pts is not None
        zero = self.first_pts
        shown = sorted(p.pts for p in packets)
        following = dict(zip(shown, shown[1:] + [segment_end], strict=True))
        if shown[0] < zero:
            raise SmartCutFailed("the copied GOP starts before the clip; re-encoded")
        for pts in shown:
            self._writer.show(pts - zero)
        for packet in packets:
            payload = self._codec.copied(bytes(packet))
            after = following[packet.pts]
            duration = (
                (after - packet.pts) if after is not None else (packet.duration or self._ticks)
            )
            self._writer.write(payload, packet.pts - zero, packet.is_keyframe, duration)
        self.frames_copied += len(packets)
        self._last_shown = shown[-1]
        last = max(packets, key=lambda p: p.pts)
        self._last_duration = (
            segment_end - last.pts if segment_end is not None else last.duration or self._ticks
        )

    def _reencode_tail(self, gop: list[av.Packet], rest: list[av.Packet]) -> None:
        """Decode the last GOP and re-encode its frames from the first one not copied."""
        begin = min(p.pts for p in rest)
        packets = list(gop)
        if any(p.pts < gop[0].pts for p in rest) or not self._codec.is_entry(gop[0]):
            packets = self._previous + packets  # leading frames of an open GOP need the last
        keep: list[av.VideoFrame] = []  # only the tail's frames: a GOP of 4K frames is big
        try:
            for packet in packets:
                keep.extend(self._tail_frames(self._decoder.decode(packet), begin))
        except av.error.InvalidDataError as exc:
            raise SmartCutFailed("the last GOP did not decode cleanly; re-encoded") from exc
        keep.extend(self._tail_frames(self._drain_decoder(), begin))
        keep.sort(key=lambda f: f.pts)
        if [f.pts for f in keep] != sorted(p.pts for p in rest):
            raise SmartCutFailed("the frames before the end did not decode cleanly; re-encoded")
        self._fix_reorder()
        ctx = self._codec.open_encoder()
        self._codec.check_encoder(ctx)
        assert self.first_pts is not None
        tail = self._encode_with(ctx)
        for frame in keep:
            tail.add(frame)
        self._last_shown = keep[-1].pts
        self._last_duration = self._ticks
        self.end_pts = self._clip_end()
        tail.finish(self.end_pts)
        self.frames_reencoded += tail.count

    def _tail_frames(self, frames: list[av.VideoFrame], begin: int) -> list[av.VideoFrame]:
        return [f for f in frames if f.pts is not None and begin <= f.pts < self._end]

    # -- bookkeeping -------------------------------------------------------------------------

    def _saw_after_end(self, pts: int) -> None:
        if self._after_end is None or pts < self._after_end:
            self._after_end = pts

    def _clip_end(self) -> int:
        """Source pts where the clip's last frame stops being shown (at most ``end``)."""
        if self._after_end is not None:
            end = self._after_end
        else:
            assert self._last_shown is not None
            end = self._last_shown + self._last_duration
        # the clip ends at end: its last frame is shown until then, not until the next one
        return min(end, self._end)
