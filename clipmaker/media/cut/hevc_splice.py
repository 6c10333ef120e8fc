"""HEVC (8- and 10-bit) for a smart cut: libx265 matched to the source, parameter sets in-band.

x265 numbers its VPS/SPS/PPS 0, as most sources do, and has no option to pick other ids, so
the two kinds of parts can't share one ``hvcC`` as H.264's share an ``avcC``. Instead the
track is ``hev1`` (parameter sets may come in-band) with the source's ``hvcC``; our encoder
repeats its sets before each of its IDR pictures (``repeat-headers``), and the source's sets
are sent again in-band before the first copied IDR after one of ours. HEVC activates an SPS
only at an IRAP picture, and every part starts with an IDR: each part decodes with its own
sets, whichever came before. Copied slices are untouched (Annex-B sources are stored with
lengths). Only IDR keyframes are entry points: a CRA's leading pictures need the GOP before.
"""

from __future__ import annotations

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.encoders import HEVC, keyint
from clipmaker.media.cut.errors import SmartCutUnsupported
from clipmaker.media.cut.h264 import BitstreamError, join_avcc, split_annexb, split_avcc
from clipmaker.media.cut.plan import Timeline
from clipmaker.media.cut.splicing import SpliceCodec, open_matched_encoder

__all__ = ["HevcSplice", "hevc_nal_type"]

_VPS, _SPS, _PPS, _AUD = 32, 33, 34, 35
_PARAMETER_SETS = (_VPS, _SPS, _PPS)
_IDR = (19, 20)  # IDR_W_RADL, IDR_N_LP
_PROFILES = {"yuv420p": "main", "yuvj420p": "main", "yuv420p10le": "main10"}


def hevc_nal_type(nal: bytes) -> int:
    return (nal[0] >> 1) & 0x3F if nal else -1


def _parse_config(extradata: bytes | None) -> tuple[int, list[bytes], bool]:
    """(length size, parameter-set NAL units, Annex-B samples) from an hvcC or Annex-B
    extradata."""
    if not extradata:
        raise SmartCutUnsupported("the HEVC stream has no parameter sets in its header; re-encoded")
    if extradata[:3] == b"\x00\x00\x01" or extradata[:4] == b"\x00\x00\x00\x01":
        nals = [n for n in split_annexb(extradata) if hevc_nal_type(n) in _PARAMETER_SETS]
        return 4, nals, True
    if len(extradata) < 23:
        raise SmartCutUnsupported("the HEVC header (hvcC) is too short; re-encoded")
    length_size = (extradata[21] & 3) + 1
    nals: list[bytes] = []
    at = 23
    for _ in range(extradata[22]):
        count = int.from_bytes(extradata[at + 1 : at + 3], "big")
        at += 3
        for _ in range(count):
            size = int.from_bytes(extradata[at : at + 2], "big")
            nal = extradata[at + 2 : at + 2 + size]
            if hevc_nal_type(nal) in _PARAMETER_SETS:  # not the SEI x265 puts there too
                nals.append(nal)
            at += 2 + size
    if at > len(extradata) or not nals:
        raise SmartCutUnsupported("the HEVC header (hvcC) is damaged; re-encoded")
    return length_size, nals, False


class HevcSplice(SpliceCodec):
    name = "HEVC"

    def __init__(self, source: av.VideoStream, clock: Timeline) -> None:
        self._source = source
        self._time_base = clock.time_base
        ctx = source.codec_context
        self._length_size, self._source_sets, self._annexb = _parse_config(ctx.extradata)
        self._pix_fmt = ctx.pix_fmt
        if self._pix_fmt not in _PROFILES:
            raise SmartCutUnsupported(f"smart cut can't re-encode {self._pix_fmt} HEVC; re-encoded")
        if ctx.width % 2 or ctx.height % 2:
            raise SmartCutUnsupported(
                f"smart cut needs an even frame size, not {ctx.width}x{ctx.height}; re-encoded"
            )
        self._width, self._height = ctx.width, ctx.height
        self.source_reorder = min(max(2 * ctx.has_b_frames, ctx.reorder_depth), 16)
        bframes = 0 if self.source_reorder == 0 else 3
        self.encoder_reorder = bframes
        params = [
            f"keyint={keyint(source)}",
            f"min-keyint={keyint(source)}",
            f"bframes={bframes}",
            "open-gop=0",
            "repeat-headers=1",
            "aud=0",
            "log-level=error",
        ]
        self._options = {
            **HEVC.base_options(),
            "profile": _PROFILES[self._pix_fmt],
            "x265-params": ":".join(params),
        }
        self._ours_last = False  # the last packet written was one of our encoder's
        self.open_encoder()  # fail now, before any work, if it can't be matched

    def open_encoder(self) -> av.VideoCodecContext:
        return open_matched_encoder(
            HEVC.codec,
            self._source,
            size=(self._width, self._height),
            pix_fmt=self._pix_fmt,
            time_base=self._time_base,
            options=self._options,
            what="HEVC",
        )

    def add_stream(self, out: OutputContainer, source: av.VideoStream) -> av.VideoStream:
        stream = out.add_stream_from_template(source)
        stream.codec_tag = "hev1"  # parameter sets may change in-band, at our IDRs
        return stream

    def _split(self, payload: bytes) -> list[bytes]:
        if self._annexb:
            return split_annexb(payload)
        return split_avcc(payload, self._length_size)

    def is_entry(self, packet: av.Packet) -> bool:
        try:
            return any(hevc_nal_type(n) in _IDR for n in self._split(bytes(packet)))
        except BitstreamError:
            return False

    def copied(self, payload: bytes) -> bytes:
        try:
            nals = self._split(payload)
        except BitstreamError:
            return payload  # damaged (a truncated file?): copied as is, like a stream copy
        if self._ours_last and any(hevc_nal_type(n) in _IDR for n in nals):
            nals = self._source_sets + nals  # back to the source's sets, before its IDR
        elif not self._annexb:
            self._ours_last = False
            return payload
        self._ours_last = False
        return join_avcc(nals, self._length_size)

    def encoded(self, packet: av.Packet) -> bytes:
        self._ours_last = True
        nals = [n for n in split_annexb(bytes(packet)) if hevc_nal_type(n) != _AUD]
        return join_avcc(nals, self._length_size)
