"""How we encode: ONE configuration per codec, shared by every strategy that encodes.

A full re-encode and a smart cut's re-encoded edges use the same H.264 settings (they had
drifted apart: CRF 20 in one, 18 in the other), and the same rules for matching the source:
its size, sample aspect ratio and colour description go into our stream unchanged, and our
bitrate is capped near the source's, so what we encode is never much heavier than what we
copy. A smart cut further matches the source's profile, level, reference and reordering depth
and pixel format, so its edges can share a track with the source's packets.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av

from clipmaker.media.cut.plan import frame_rate

__all__ = [
    "AAC",
    "AV1",
    "H264",
    "HEVC",
    "VP9",
    "AudioEncoder",
    "VideoEncoder",
    "h264_options",
    "keyint",
    "match_source",
]


@dataclass(frozen=True)
class VideoEncoder:
    codec: str  # FFmpeg encoder name
    crf: int  # quality: at least that of typical web video...
    options: Mapping[str, str]  # everything else fixed: speed, threads, what it may emit
    max_rate_factor: float = 2.0  # ...but never far above the source's own bitrate
    keyint_s: float = 2.0  # GOP length, in seconds, of what we encode

    def base_options(self) -> dict[str, str]:
        return {**self.options, "crf": str(self.crf)}


@dataclass(frozen=True)
class AudioEncoder:
    codec: str
    bitrate_per_channel: int
    rates: frozenset[int]  # sample rates it takes; anything else is resampled to 48 kHz


H264 = VideoEncoder(codec="libx264", crf=18, options={"preset": "veryfast"})
HEVC = VideoEncoder(codec="libx265", crf=18, options={"preset": "veryfast"})
# VP9 and AV1 edges of a smart cut: no hidden look-ahead (lag-in-frames=0, low-delay
# prediction), so every packet is one shown frame, in order, as the copied packets are.
VP9 = VideoEncoder(
    codec="libvpx-vp9",
    crf=30,
    options={
        "b": "0",
        "deadline": "realtime",
        "cpu-used": "8",
        "row-mt": "1",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
    },
)
# SVT-AV1: preset 8, not faster (preset 10 smeared single frames of noisy sources), and no
# temporal filtering (it blends neighbouring frames into what it shows)
AV1 = VideoEncoder(
    codec="libsvtav1",
    crf=22,
    options={"preset": "8", "svtav1-params": "pred-struct=1:enable-tf=0"},
)
AAC = AudioEncoder(
    codec="aac",
    bitrate_per_channel=64_000,
    rates=frozenset(
        {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
    ),
)


def keyint(source: av.VideoStream) -> int:
    """Frames per GOP of what we encode."""
    return max(1, round(H264.keyint_s * float(frame_rate(source) or Fraction(25))))


def h264_options(
    source: av.VideoStream, *, profile: str | None = None, x264_params: Sequence[str] = ()
) -> dict[str, str]:
    """libx264's options for ``source``: preset and quality; for a smart cut (``profile``
    given: the source is H.264 too) also the ``x264-params`` that match the source's stream
    and a bitrate cap near the source's, so the re-encoded edges weigh what the copied middle
    does. (A full re-encode of another codec is not capped: an efficient codec's bitrate
    would starve H.264.)"""
    options = H264.base_options()
    if profile is None:
        return options
    options["profile"] = profile
    if x264_params:
        options["x264-params"] = ":".join(x264_params)
    bitrate = source.bit_rate or (source.container.bit_rate if source.container else 0) or 0
    if bitrate > 0:
        # quality like the source's, capped near its bitrate: never much heavier than it
        options["maxrate"] = str(round(H264.max_rate_factor * bitrate))
        options["bufsize"] = str(round(2 * H264.max_rate_factor * bitrate))
    return options


def match_source(ctx: av.VideoCodecContext, source: av.VideoStream) -> None:
    """Give our encoder the source's sample aspect ratio and colour description."""
    if source.sample_aspect_ratio:
        ctx.sample_aspect_ratio = source.sample_aspect_ratio
    for attr in ("color_range", "color_primaries", "color_trc", "colorspace"):
        with contextlib.suppress(AttributeError, ValueError, TypeError):
            setattr(ctx, attr, getattr(source.codec_context, attr))
