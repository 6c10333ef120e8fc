"""VP9 and AV1 for a smart cut: every keyframe is a fresh start, nothing to rename.

Neither codec reorders frames in the container: hidden reference frames (VP9's alt-ref, AV1's
frames shown later) travel inside the packet of a frame that is shown (a VP9 superframe, an AV1
temporal unit), so a track's packets are in display order and a keyframe resets every
reference. A copy may start at any keyframe; the partial GOP before it is re-encoded with the
same codec, profile, bit depth, chroma subsampling, size and colour, by an encoder that emits
one shown frame per packet (``encoders.VP9``, ``encoders.AV1``). Parameters travel in-band
(VP9 frame headers, AV1 sequence header OBUs at every keyframe), so the source's sample entry
(``vpcC``/``av1C``) serves the whole track; where ours differ (another AV1 level), decoders
take the in-band ones at our keyframe.
"""

from __future__ import annotations

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.encoders import AV1, VP9, VideoEncoder, keyint, match_source
from clipmaker.media.cut.errors import SmartCutUnsupported
from clipmaker.media.cut.plan import Timeline, frame_rate
from clipmaker.media.cut.splicing import SpliceCodec, open_matched_encoder

__all__ = ["KeyframeSplice"]

# pixel format -> VP9 profile (0: 8-bit 4:2:0; 1: 8-bit 4:2:2/4:4:4; 2 and 3: the same, 10-bit)
_VP9_PROFILES = {
    "yuv420p": 0,
    "yuv422p": 1,
    "yuv444p": 1,
    "yuv420p10le": 2,
    "yuv422p10le": 3,
    "yuv444p10le": 3,
}
# libsvtav1 encodes 4:2:0 only (AV1's main profile)
_AV1_FORMATS = frozenset({"yuv420p", "yuv420p10le"})
_ENCODERS: dict[str, tuple[str, VideoEncoder]] = {"vp9": ("VP9", VP9), "av1": ("AV1", AV1)}


class KeyframeSplice(SpliceCodec):
    source_reorder = 0
    encoder_reorder = 0

    def __init__(self, source: av.VideoStream, clock: Timeline) -> None:
        codec = source.codec_context.codec.canonical_name
        if codec not in _ENCODERS:
            raise SmartCutUnsupported(f"no keyframe splice for {codec}; re-encoded")
        self.name, self._encoder = _ENCODERS[codec]
        self._source = source
        self._time_base = clock.time_base
        ctx = source.codec_context
        self._pix_fmt = ctx.pix_fmt
        allowed = _VP9_PROFILES if codec == "vp9" else _AV1_FORMATS
        if self._pix_fmt not in allowed:
            raise SmartCutUnsupported(
                f"smart cut can't re-encode {self._pix_fmt} {self.name}; re-encoded"
            )
        formats = {f.name for f in av.Codec(self._encoder.codec, "w").video_formats or ()}
        if self._pix_fmt not in formats:  # PyAV's libvpx is built without high bit depth
            raise SmartCutUnsupported(
                f"this build's {self._encoder.codec} can't encode {self._pix_fmt}, so "
                f"{self.name} in {self._pix_fmt} can't be spliced; re-encoded"
            )
        if ctx.has_b_frames:
            raise SmartCutUnsupported(f"this {self.name} stream reorders frames; re-encoded")
        self._width, self._height = ctx.width, ctx.height
        self._options = self._encoder.base_options()
        if codec == "vp9":
            self._options["profile"] = str(_VP9_PROFILES[self._pix_fmt])
            self._options["g"] = str(keyint(source))
        else:
            self._options["g"] = str(keyint(source))
        self.open_encoder()  # fail now, before any work, if it can't be matched

    def open_encoder(self) -> av.VideoCodecContext:
        return open_matched_encoder(
            self._encoder.codec,
            self._source,
            size=(self._width, self._height),
            pix_fmt=self._pix_fmt,
            time_base=self._time_base,
            options=self._options,
            what=self.name,
        )

    def add_stream(self, out: OutputContainer, source: av.VideoStream) -> av.VideoStream:
        if self._decoder_is_encoder():
            return out.add_stream_from_template(source)
        # PyAV makes a template's stream with the decoder's name (libdav1d), which names no
        # encoder: describe the track through our encoder instead, with the source's config
        stream = out.add_stream(self._encoder.codec, rate=frame_rate(source))
        stream.width, stream.height = self._width, self._height
        stream.pix_fmt = self._pix_fmt
        stream.codec_context.time_base = self._time_base
        stream.codec_context.extradata = source.codec_context.extradata
        match_source(stream.codec_context, source)
        return stream

    def _decoder_is_encoder(self) -> bool:
        try:
            av.Codec(self._source.codec_context.codec.name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            return False
        return True

    def is_entry(self, packet: av.Packet) -> bool:
        return packet.is_keyframe

    def copied(self, payload: bytes) -> bytes:
        return payload

    def encoded(self, packet: av.Packet) -> bytes:
        return bytes(packet)
