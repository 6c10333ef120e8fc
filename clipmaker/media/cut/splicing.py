"""``SpliceCodec``: what a smart cut needs to know of one codec's bitstream.

``smart.SmartVideo`` does the cutting (which GOPs to copy, what to decode and re-encode, the
timestamps across the joints) the same way for every codec. What differs per codec is behind
this interface: which keyframes a copy may start at, how to set up an encoder whose output can
share a track with the source's packets, how a copied or encoded packet is stored in the
output track, and what the track's sample entry carries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from fractions import Fraction

import av
import av.error
from av.container import OutputContainer

from clipmaker.media.cut.encoders import match_source
from clipmaker.media.cut.errors import SmartCutUnsupported
from clipmaker.media.cut.plan import frame_rate

__all__ = ["SpliceCodec", "open_matched_encoder"]


def open_matched_encoder(
    codec: str,
    source: av.VideoStream,
    *,
    size: tuple[int, int],
    pix_fmt: str,
    time_base: Fraction,
    options: Mapping[str, str],
    what: str,
) -> av.VideoCodecContext:
    """An open ``codec`` encoder set to the source's size, pixel format, time base, frame
    rate, aspect ratio and colours, so its output can share a track with the source's packets.
    ``SmartCutUnsupported`` (its note naming ``what``) when the encoder refuses the match."""
    ctx = av.CodecContext.create(codec, "w")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width, ctx.height = size
    ctx.pix_fmt = pix_fmt
    ctx.time_base = time_base
    rate = frame_rate(source)
    if rate:
        ctx.framerate = rate
    match_source(ctx, source)
    ctx.options = dict(options)
    try:
        ctx.open()
    except av.error.FFmpegError as exc:
        note = f"{codec} can't match this {what} source ({exc}); re-encoded"
        raise SmartCutUnsupported(note) from exc
    return ctx


class SpliceCodec(ABC):
    """One source stream's codec, matched: ``open_encoder`` makes an encoder whose output
    decodes with the source's in one track. Raise ``SmartCutUnsupported`` from ``__init__``
    for a source that can't be spliced, ``SmartCutFailed`` for what is found later."""

    name: str  # for notes: "H.264", "VP9"...
    source_reorder: int  # how many frames the source may show later than it decodes them
    encoder_reorder: int  # the same, for our encoder

    @abstractmethod
    def open_encoder(self) -> av.VideoCodecContext:
        """A new, open encoder matched to the source (one per re-encoded part)."""

    @abstractmethod
    def is_entry(self, packet: av.Packet) -> bool:
        """Whether decoding can start at this keyframe with nothing before it (an IDR)."""

    @abstractmethod
    def copied(self, payload: bytes) -> bytes:
        """A source packet as the output track stores it."""

    @abstractmethod
    def encoded(self, packet: av.Packet) -> bytes:
        """One of our encoder's packets as the output track stores it."""

    def add_stream(self, out: OutputContainer, source: av.VideoStream) -> av.VideoStream:
        """The output track for copied and encoded packets; ``ValueError`` if the output
        can't hold this codec."""
        return out.add_stream_from_template(source)

    def track_extradata(self) -> bytes | None:
        """The output track's codec configuration (None: the source's, as it is)."""
        return None

    def check_encoder(self, ctx: av.VideoCodecContext) -> None:
        """Raise ``SmartCutFailed`` if a later encoder differs from the first one."""
        del ctx
