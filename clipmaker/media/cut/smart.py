"""Smart cut for H.264: re-encode only the partial GOPs at the edges, copy every whole GOP.

The clip is three segments on one timeline, each closed in display order:

    head (re-encoded)      | copied GOPs (source packets, bit for bit) | tail (re-encoded)
    [first frame, C0)      | [C0, X)                                   | [X, end)

- C0 is the first *clean entry point* at or after the first frame: an IDR picture that no frame
  of its GOP is shown before (an open GOP's I picture is not one: the frames shown before it
  reference the previous GOP). The head is decoded from the keyframe before the start, frames
  before the start dropped, and encoded with libx264 set up like the source (profile, level,
  reference and reordering depth, pixel format, size, colour, time base, frame rate; quality
  bounded by the source's bitrate).
- GOPs wholly inside the range are copied packet for packet. In the last one, the longest
  prefix (in decode order) whose frames are all shown before the rest is copied too; the
  frames after it (B-frames that need a picture past the end, usually a few) are decoded and
  re-encoded as a tail. When the range ends on a GOP boundary nothing is re-encoded there.
- Parameter sets: our encoders write SPS/PPS with an id the source does not use (the next one
  after the source's), and the track's single ``avcC`` sample entry (``avc1``) carries both the
  source's sets and ours, by ascending id, so every slice, re-encoded or copied, finds its own.
  Ours are also repeated in-band before each of our IDR pictures (identical to the avcC's), for
  decoders that only take an avcC's first set. Copied packets are left untouched. Each segment
  starts with an IDR, where H.264 allows the active SPS to change.
- Timestamps: pts are the source's minus the first frame's; dts are recomputed for the whole
  track as "the pts shown R frames earlier" (R = the deepest frame reordering of any part), so
  they increase strictly across the joints and never pass a pts.

Anything this cannot splice safely raises ``SmartCutUnsupported`` (before any work: another
codec, interlacing, an unusual pixel format) or ``SmartCutFailed`` (found while cutting); the
caller then re-encodes the whole clip and says why.
"""

from __future__ import annotations

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.encoders import (
    H264,
    h264_options,
    h264_pixel_format,
    h264_profile,
    h264_source_parameters,
    keyint,
    match_source,
)
from clipmaker.media.cut.errors import SmartCutFailed, SmartCutUnsupported
from clipmaker.media.cut.h264 import (
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    AvcConfig,
    BitstreamError,
    Sps,
    join_avcc,
    nal_type,
    parse_pps_ids,
    parse_sps,
)
from clipmaker.media.cut.plan import Timeline, frame_rate
from clipmaker.media.cut.splice import EncoderRun, SpliceWriter, closed_prefix, display_lag
from clipmaker.media.cut.track import VideoTrack

__all__ = ["SmartVideo"]


class SmartVideo(VideoTrack):
    """The video track of a frame-accurate cut that copies whole GOPs (H.264 sources).

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
        self._config, params = h264_source_parameters(source)
        self._annexb = self._config.annexb
        self._length_size = self._config.length_size
        self._pix_fmt = h264_pixel_format(source, params[0])
        first = params[0]
        if first.chroma_format_idc in (1, 2) and (first.width % 2 or first.height % 2):
            raise SmartCutUnsupported(
                f"smart cut needs an even frame size, not {first.width}x{first.height}; re-encoded"
            )
        self._width, self._height = first.width, first.height
        used = self._config.ids()
        free = [i for i in range(32) if i not in used]
        if not free:
            raise SmartCutUnsupported("the source uses every parameter set id; re-encoded")
        # after the source's ids if we can: the avcC lists sets by ascending id, theirs first
        self._our_id = max(used) + 1 if max(used) < 31 else free[0]
        # Reordering: what the source declares (or FFmpeg measured), and what we may use.
        declared = first.max_num_reorder_frames
        if declared is None:
            declared = (
                0
                if first.poc_type == 2
                else max(2 * source.codec_context.has_b_frames, source.codec_context.reorder_depth)
            )
        self._source_reorder = min(declared, 16)
        self._bframes = 0 if self._source_reorder == 0 else (1 if self._source_reorder == 1 else 3)
        self._encoder_reorder = min(self._bframes, 2)
        self._observed = 0
        self._options = self._encoder_options(first, source)
        self._head_ctx = self._open_encoder()
        ours = AvcConfig.from_extradata(self._head_ctx.extradata)
        self._our_params = (ours.sps, ours.pps)
        self._headers = ours.sps + ours.pps
        combined = AvcConfig(
            profile=max(self._config.profile, ours.profile),
            compatibility=self._config.compatibility & ours.compatibility,
            level=max(self._config.level, ours.level),
            length_size=self._length_size,
            sps=sorted(self._config.sps + ours.sps, key=lambda nal: parse_sps(nal).id),
            pps=sorted(self._config.pps + ours.pps, key=lambda nal: parse_pps_ids(nal)[0]),
            tail=self._config.tail or self._config.high_tail(),
        )
        self._stream = out.add_stream_from_template(source)  # ValueError if MP4 can't hold it
        self._stream.codec_context.extradata = combined.to_bytes()
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

    # -- setup -------------------------------------------------------------------------------

    def _encoder_options(self, sps: Sps, source: av.VideoStream) -> dict[str, str]:
        params = [
            f"sps-id={self._our_id}",
            f"level={sps.level_idc}",
            f"ref={min(max(sps.max_num_ref_frames, 1), 16)}",
            f"bframes={self._bframes}",
            f"b-pyramid={'normal' if self._bframes > 1 else 'none'}",
            f"keyint={keyint(source)}",
            "open-gop=0",
            "log=-1",
        ]
        return h264_options(source, profile=h264_profile(sps), x264_params=params)

    def _open_encoder(self) -> av.VideoCodecContext:
        source = self._source
        ctx = av.CodecContext.create(H264.codec, "w")
        assert isinstance(ctx, av.VideoCodecContext)
        ctx.width, ctx.height = self._width, self._height
        ctx.pix_fmt = self._pix_fmt
        ctx.time_base = self._time_base
        rate = frame_rate(source)
        if rate:
            ctx.framerate = rate
        match_source(ctx, source)
        ctx.flags |= av.codec.context.Flags.global_header  # SPS/PPS once, for the avcC
        ctx.options = dict(self._options)
        try:
            ctx.open()
        except av.error.FFmpegError as exc:
            raise SmartCutUnsupported(
                f"libx264 can't match this H.264 source ({exc}); re-encoded"
            ) from exc
        return ctx

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

    def _is_idr(self, packet: av.Packet) -> bool:
        try:
            return any(nal_type(n) == NAL_IDR for n in self._config.split(bytes(packet)))
        except BitstreamError:
            return False

    def _clean_entry(self, gop: list[av.Packet]) -> bool:
        """Whether copying can start at this GOP's keyframe (and the head end before it)."""
        key = gop[0].pts
        if not self._is_idr(gop[0]) or any(p.pts < key for p in gop):
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
            self._head = self._encode_with(self._head_ctx)
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
            self._length_size,
            self._ticks,
            self._headers,
        )

    def _fix_reorder(self) -> None:
        if self._writer.reorder is None:
            self._writer.reorder = max(self._encoder_reorder, self._source_reorder, self._observed)

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
            payload = self._copyable(bytes(packet))
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

    def _copyable(self, payload: bytes) -> bytes:
        """A source sample as our track stores it (AVCC: as is), checked for clashing ids."""
        try:
            nals = self._config.split(payload)
        except BitstreamError:
            return payload  # damaged (a truncated file?): copied as is, like a stream copy
        for nal in nals:
            kind = nal_type(nal)
            if kind not in (NAL_SPS, NAL_PPS):
                continue
            try:
                ids = {parse_sps(nal).id} if kind == NAL_SPS else set(parse_pps_ids(nal))
            except BitstreamError:
                continue
            if self._our_id in ids:
                raise SmartCutFailed("the source reuses our parameter set id; re-encoded")
        return join_avcc(nals, self._length_size) if self._annexb else payload

    def _reencode_tail(self, gop: list[av.Packet], rest: list[av.Packet]) -> None:
        """Decode the last GOP and re-encode its frames from the first one not copied."""
        begin = min(p.pts for p in rest)
        packets = list(gop)
        if any(p.pts < gop[0].pts for p in rest) or not self._is_idr(gop[0]):
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
        ctx = self._open_encoder()
        again = AvcConfig.from_extradata(ctx.extradata)
        if (again.sps, again.pps) != self._our_params:
            raise SmartCutFailed("the tail encoder's parameter sets differ; re-encoded")
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
