"""H.264 for a smart cut: libx264 set up like the source, parameter sets that don't collide.

Our encoder writes SPS/PPS with an id the source does not use (the next one after the
source's), and the track's single ``avcC`` sample entry (``avc1``) carries both the source's
sets and ours, by ascending id, so every slice, re-encoded or copied, finds its own. Ours are
also repeated in-band before each of our IDR pictures (identical to the avcC's), for decoders
that only take an avcC's first set. Copied packets are left untouched (Annex-B sources are
stored as AVCC). Each part starts with an IDR, where H.264 allows the active SPS to change.
"""

from __future__ import annotations

import av
import av.error

from clipmaker.media.cut.encoders import H264, h264_options, keyint, match_source
from clipmaker.media.cut.errors import SmartCutFailed, SmartCutUnsupported
from clipmaker.media.cut.h264 import (
    NAL_AUD,
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
    split_annexb,
)
from clipmaker.media.cut.plan import Timeline, frame_rate
from clipmaker.media.cut.splicing import SpliceCodec

__all__ = ["H264Splice"]

_PROFILES = {66: "baseline", 77: "main", 100: "high", 110: "high10", 122: "high422", 244: "high444"}
_PIX_FMTS = frozenset(
    {
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuvj422p",
        "yuv444p",
        "yuvj444p",
        "yuv420p10le",
        "yuv422p10le",
        "yuv444p10le",
        "gray",
    }
)


class H264Splice(SpliceCodec):
    name = "H.264"

    def __init__(self, source: av.VideoStream, clock: Timeline) -> None:
        self._source = source
        self._time_base = clock.time_base
        self._config, params = _source_parameters(source)
        self._annexb = self._config.annexb
        self._length_size = self._config.length_size
        first = params[0]
        self._pix_fmt = _pixel_format(source, first)
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
        self.source_reorder = min(declared, 16)
        self._bframes = 0 if self.source_reorder == 0 else (1 if self.source_reorder == 1 else 3)
        self.encoder_reorder = min(self._bframes, 2)
        self._options = self._encoder_options(first, source)
        self._spare: av.VideoCodecContext | None = None
        self._spare = self.open_encoder()  # its parameter sets go into the avcC now
        ours = AvcConfig.from_extradata(self._spare.extradata)
        self._our_params = (ours.sps, ours.pps)
        self._headers = ours.sps + ours.pps
        self._combined = AvcConfig(
            profile=max(self._config.profile, ours.profile),
            compatibility=self._config.compatibility & ours.compatibility,
            level=max(self._config.level, ours.level),
            length_size=self._length_size,
            sps=sorted(self._config.sps + ours.sps, key=lambda nal: parse_sps(nal).id),
            pps=sorted(self._config.pps + ours.pps, key=lambda nal: parse_pps_ids(nal)[0]),
            tail=self._config.tail or self._config.high_tail(),
        )

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
        return h264_options(source, profile=_PROFILES[sps.profile_idc], x264_params=params)

    def open_encoder(self) -> av.VideoCodecContext:
        if self._spare is not None:
            ctx, self._spare = self._spare, None
            return ctx
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

    def is_entry(self, packet: av.Packet) -> bool:
        try:
            return any(nal_type(n) == NAL_IDR for n in self._config.split(bytes(packet)))
        except BitstreamError:
            return False

    def copied(self, payload: bytes) -> bytes:
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

    def encoded(self, packet: av.Packet) -> bytes:
        nals = [
            nal
            for nal in split_annexb(bytes(packet))
            if nal_type(nal) not in (NAL_SPS, NAL_PPS, NAL_AUD)
        ]
        if any(nal_type(nal) == NAL_IDR for nal in nals):
            nals = self._headers + nals
        return join_avcc(nals, self._length_size)

    def track_extradata(self) -> bytes | None:
        return self._combined.to_bytes()

    def check_encoder(self, ctx: av.VideoCodecContext) -> None:
        again = AvcConfig.from_extradata(ctx.extradata)
        if (again.sps, again.pps) != self._our_params:
            raise SmartCutFailed("the tail encoder's parameter sets differ; re-encoded")


def _source_parameters(source: av.VideoStream) -> tuple[AvcConfig, list[Sps]]:
    name = source.codec_context.codec.canonical_name
    if name != "h264":
        raise SmartCutUnsupported(f"smart cut supports H.264 only; {name} was re-encoded")
    try:
        config = AvcConfig.from_extradata(source.codec_context.extradata)
        params = [parse_sps(nal) for nal in config.sps]
    except BitstreamError as exc:
        raise SmartCutUnsupported(f"H.264 parameter sets unreadable ({exc}); re-encoded") from exc
    first = params[0]
    if not all(p.frame_mbs_only for p in params):
        raise SmartCutUnsupported("smart cut does not splice interlaced H.264; re-encoded")
    if first.profile_idc not in _PROFILES:
        raise SmartCutUnsupported(
            f"libx264 can't encode H.264 profile {first.profile_idc}; re-encoded"
        )
    return config, params


def _pixel_format(source: av.VideoStream, sps: Sps) -> str:
    pix_fmt = source.codec_context.pix_fmt
    if pix_fmt is None:
        chroma = {0: "gray", 1: "yuv420p", 2: "yuv422p", 3: "yuv444p"}[sps.chroma_format_idc]
        pix_fmt = chroma if sps.bit_depth == 8 else f"{chroma}10le"
    if pix_fmt not in _PIX_FMTS:
        raise SmartCutUnsupported(f"smart cut can't re-encode {pix_fmt} video; re-encoded")
    return pix_fmt
