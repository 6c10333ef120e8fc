"""Just enough of the H.264 bitstream to splice a re-encoded head onto copied GOPs.

A smart cut joins pictures from two encoders in one MP4 track. What has to line up is small and
lives in a few places this module reads and writes:

- NAL units, framed two ways: length-prefixed ("AVCC", MP4/Matroska samples, 1/2/4-byte
  lengths given by the sample entry) or with start codes ("Annex B", MPEG-TS and encoders).
- Parameter sets: every slice names a PPS by id, every PPS an SPS. Ours get ids the source does
  not use, so one ``avcC`` sample entry can carry both sets and each picture finds its own.
- The ``avcC`` record (ISO/IEC 14496-15 5.3.3.1): profile/level bytes, the NAL length size, the
  SPS and PPS lists and, for the High profiles, chroma format and bit depths.
- Which access units are clean entry points: an IDR picture (NAL type 5). A non-IDR I picture
  (open GOP, recovery-point SEI) is flagged a keyframe by demuxers but frames around it may
  reference the previous GOP.

Only the SPS fields a splice depends on are parsed (ids, profile/level, chroma format, bit
depth, reference and reordering depth, interlacing); nothing here touches slice data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "NAL_IDR",
    "NAL_PPS",
    "NAL_SPS",
    "AvcConfig",
    "BitstreamError",
    "Sps",
    "join_avcc",
    "nal_type",
    "parse_pps_ids",
    "parse_sps",
    "split_annexb",
    "split_avcc",
]

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
# profile_idc values whose SPS carries chroma format, bit depths and scaling matrices
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


class BitstreamError(ValueError):
    """The bytes are not the H.264 structure they should be."""


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F if nal else -1


def split_avcc(data: bytes, length_size: int) -> list[bytes]:
    """The NAL units of one length-prefixed sample."""
    nals: list[bytes] = []
    at = 0
    while at < len(data):
        if at + length_size > len(data):
            raise BitstreamError("NAL length runs past the end of the sample")
        size = int.from_bytes(data[at : at + length_size], "big")
        at += length_size
        if size == 0 or at + size > len(data):
            raise BitstreamError("NAL unit runs past the end of the sample")
        nals.append(data[at : at + size])
        at += size
    return nals


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (3- or 4-byte start codes)."""
    nals: list[bytes] = []
    starts: list[int] = []
    at = data.find(b"\x00\x00\x01")
    while at >= 0:
        starts.append(at + 3)
        at = data.find(b"\x00\x00\x01", at + 3)
    for k, begin in enumerate(starts):
        stop = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
        nal = data[begin:stop]
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # trailing zero bytes belong to the next start code
        if nal:
            nals.append(nal)
    return nals


def join_avcc(nals: Iterable[bytes], length_size: int) -> bytes:
    out = bytearray()
    limit = 1 << (8 * length_size)
    for nal in nals:
        if len(nal) >= limit:
            raise BitstreamError(
                f"a {len(nal)}-byte NAL unit does not fit {length_size}-byte lengths"
            )
        out += len(nal).to_bytes(length_size, "big")
        out += nal
    return bytes(out)


class _Bits:
    """An RBSP reader (emulation-prevention bytes removed first)."""

    def __init__(self, nal: bytes) -> None:
        raw = nal[1:]
        out = bytearray()
        zeros = 0
        for byte in raw:
            if zeros >= 2 and byte == 3:
                zeros = 0
                continue
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        self._data = bytes(out)
        self._pos = 0

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise BitstreamError("parameter set ends early")
            value = (value << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def ue(self) -> int:
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BitstreamError("bad exp-Golomb code")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


@dataclass(frozen=True)
class Sps:
    id: int
    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth: int  # luma
    bit_depth_chroma: int
    max_num_ref_frames: int
    poc_type: int
    frame_mbs_only: bool  # False: interlaced (fields or MBAFF)
    width: int  # cropped, in luma samples
    height: int
    max_num_reorder_frames: int | None  # from the VUI, when the encoder wrote it
    max_dec_frame_buffering: int | None


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    last, following = 8, 8
    for _ in range(size):
        if following:
            following = (last + bits.se() + 256) % 256
        last = following or last


def _skip_hrd(bits: _Bits) -> None:
    count = bits.ue() + 1
    bits.u(8)  # bit_rate_scale, cpb_size_scale
    for _ in range(count):
        bits.ue()
        bits.ue()
        bits.u(1)
    bits.u(20)  # four 5-bit lengths


def parse_sps(nal: bytes) -> Sps:
    if nal_type(nal) != NAL_SPS:
        raise BitstreamError("not an SPS")
    bits = _Bits(nal)
    profile, constraints, level = bits.u(8), bits.u(8), bits.u(8)
    sps_id = bits.ue()
    chroma, depth, depth_chroma = 1, 8, 8
    if profile in _HIGH_PROFILES:
        chroma = bits.ue()
        if chroma == 3:
            bits.u(1)  # separate_colour_plane_flag
        depth = bits.ue() + 8
        depth_chroma = bits.ue() + 8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    refs = bits.ue()
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bool(bits.u(1))
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if bits.u(1):
        crop = (bits.ue(), bits.ue(), bits.ue(), bits.ue())
    sub_w = 2 if chroma in (1, 2) else 1
    sub_h = 2 if chroma == 1 else 1
    unit_x = 1 if chroma == 0 else sub_w
    unit_y = (1 if chroma == 0 else sub_h) * (2 - int(frame_mbs_only))
    width = width_mbs * 16 - unit_x * (crop[0] + crop[1])
    height = height_units * 16 * (2 - int(frame_mbs_only)) - unit_y * (crop[2] + crop[3])
    reorder: int | None = None
    dpb: int | None = None
    try:
        if bits.u(1):  # vui_parameters_present_flag
            reorder, dpb = _vui_reorder(bits)
    except BitstreamError:
        pass  # a truncated VUI: the fields a splice needs are read above
    return Sps(
        id=sps_id,
        profile_idc=profile,
        constraint_flags=constraints,
        level_idc=level,
        chroma_format_idc=chroma,
        bit_depth=depth,
        bit_depth_chroma=depth_chroma,
        max_num_ref_frames=refs,
        poc_type=poc_type,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
        max_num_reorder_frames=reorder,
        max_dec_frame_buffering=dpb,
    )


def _vui_reorder(bits: _Bits) -> tuple[int | None, int | None]:
    if bits.u(1) and bits.u(8) == 255:  # aspect_ratio_info_present_flag, Extended_SAR
        bits.u(32)
    if bits.u(1):  # overscan_info_present_flag
        bits.u(1)
    if bits.u(1):  # video_signal_type_present_flag
        bits.u(4)
        if bits.u(1):
            bits.u(24)
    if bits.u(1):  # chroma_loc_info_present_flag
        bits.ue()
        bits.ue()
    if bits.u(1):  # timing_info_present_flag
        bits.u(32)
        bits.u(32)
        bits.u(1)
    nal_hrd = bits.u(1)
    if nal_hrd:
        _skip_hrd(bits)
    vcl_hrd = bits.u(1)
    if vcl_hrd:
        _skip_hrd(bits)
    if nal_hrd or vcl_hrd:
        bits.u(1)  # low_delay_hrd_flag
    bits.u(1)  # pic_struct_present_flag
    if not bits.u(1):  # bitstream_restriction_flag
        return None, None
    bits.u(1)
    for _ in range(4):
        bits.ue()
    return bits.ue(), bits.ue()


def parse_pps_ids(nal: bytes) -> tuple[int, int]:
    """(pps id, sps id) of a PPS."""
    if nal_type(nal) != NAL_PPS:
        raise BitstreamError("not a PPS")
    bits = _Bits(nal)
    return bits.ue(), bits.ue()


@dataclass
class AvcConfig:
    """An ``avcC`` record: how a track's samples are framed and its parameter sets."""

    profile: int
    compatibility: int
    level: int
    length_size: int
    sps: list[bytes] = field(default_factory=list)
    pps: list[bytes] = field(default_factory=list)
    tail: bytes = b""  # the High-profile extension (chroma format, bit depths, SPS ext)
    annexb: bool = False  # the source's samples use start codes, not lengths

    @classmethod
    def from_extradata(cls, extradata: bytes | None) -> AvcConfig:
        """From a stream's extradata: an ``avcC`` record, or Annex B parameter sets (TS)."""
        if not extradata:
            raise BitstreamError("no parameter sets in the stream header")
        if extradata[0] == 1:
            return cls._from_avcc(extradata)
        nals = split_annexb(extradata)
        sps = [n for n in nals if nal_type(n) == NAL_SPS]
        pps = [n for n in nals if nal_type(n) == NAL_PPS]
        if not sps or not pps:
            raise BitstreamError("no SPS/PPS in the stream header")
        first = sps[0]
        config = cls(first[1], first[2], first[3], 4, sps, pps, annexb=True)
        config.tail = config.high_tail()
        return config

    @classmethod
    def _from_avcc(cls, data: bytes) -> AvcConfig:
        try:
            profile, compat, level = data[1], data[2], data[3]
            length_size = (data[4] & 3) + 1
            at = 6
            sps: list[bytes] = []
            for _ in range(data[5] & 0x1F):
                size = int.from_bytes(data[at : at + 2], "big")
                sps.append(data[at + 2 : at + 2 + size])
                at += 2 + size
            pps: list[bytes] = []
            count = data[at]
            at += 1
            for _ in range(count):
                size = int.from_bytes(data[at : at + 2], "big")
                pps.append(data[at + 2 : at + 2 + size])
                at += 2 + size
        except IndexError as exc:
            raise BitstreamError("truncated avcC record") from exc
        if at > len(data) or not sps or not pps or length_size == 3:
            raise BitstreamError("malformed avcC record")
        return cls(profile, compat, level, length_size, sps, pps, tail=data[at:])

    def high_tail(self) -> bytes:
        """The avcC extension High profiles carry, built from the first SPS."""
        if self.profile not in (100, 110, 122, 144, 244):
            return b""
        sps = parse_sps(self.sps[0])
        return bytes(
            [
                0xFC | sps.chroma_format_idc,
                0xF8 | (sps.bit_depth - 8),
                0xF8 | (sps.bit_depth_chroma - 8),
                0,
            ]
        )

    def ids(self) -> set[int]:
        """Every SPS and PPS id in use (x264 gives its PPS the id of its SPS)."""
        used = {parse_sps(s).id for s in self.sps}
        for pps in self.pps:
            used.update(parse_pps_ids(pps))
        return used

    def to_bytes(self) -> bytes:
        if len(self.sps) > 31 or len(self.pps) > 255:
            raise BitstreamError("too many parameter sets for one avcC record")
        out = bytearray(
            [1, self.profile, self.compatibility, self.level, 0xFC | (self.length_size - 1)]
        )
        out.append(0xE0 | len(self.sps))
        for nal in self.sps:
            out += len(nal).to_bytes(2, "big") + nal
        out.append(len(self.pps))
        for nal in self.pps:
            out += len(nal).to_bytes(2, "big") + nal
        return bytes(out + self.tail)

    def split(self, sample: bytes) -> list[bytes]:
        return split_annexb(sample) if self.annexb else split_avcc(sample, self.length_size)
