"""``SpliceCodec``: what a smart cut needs to know of one codec's bitstream.

``smart.SmartVideo`` does the cutting (which GOPs to copy, what to decode and re-encode, the
timestamps across the joints) the same way for every codec. What differs per codec is behind
this interface: which keyframes a copy may start at, how to set up an encoder whose output can
share a track with the source's packets, how a copied or encoded packet is stored in the
output track, and what the track's sample entry carries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import av
from av.container import OutputContainer

__all__ = ["SpliceCodec"]


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
