"""Smart cut beyond H.264: HEVC, VP9 and AV1, 8- and 10-bit, from MP4, WebM and Matroska.

Each source has a keyframe every 2 s and beeps at known times; every clip is checked as a
user would (``test_smartcut._verify``): the exact frames from the one shown at ``start``, the
first frame's pixels, the duration, ffmpeg decoding it without a complaint, the copied packets
bit for bit the source's, at most two GOPs re-encoded, and the beeps in sync.
"""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from clipmaker.media import cut
from tests.media.conftest import FPS, GOP_S
from tests.media.test_smartcut import _verify

GOP_FRAMES = round(GOP_S * FPS)


def _pix_fmt(path: Path) -> str:
    with av.open(str(path)) as container:
        return str(container.streams.video[0].codec_context.pix_fmt)


@pytest.mark.parametrize(
    "name",
    [
        "hevc-mp4",
        "hevc-mkv",
        "hevc-10bit-mp4",
        "vp9-webm",
        "vp9-mp4",
        "vp9-10bit-webm",
        "av1-mp4",
        "av1-webm",
        "av1-10bit-mp4",
    ],
)
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (2.3, 6.7),  # head 2.28-4, GOPs at 4 and 6 copied (the last one up to the end)
        (5.3, 5.9),  # within one GOP: nothing to copy, re-encoded, still exact
    ],
)
def test_vp9_and_av1_are_smart_cut(
    codec_sources: dict[str, Path], tmp_path: Path, name: str, start: float, end: float
) -> None:
    source = codec_sources[name]
    result = cut(source, tmp_path / "clip.mp4", start, end)
    codec = name.split("-")[0]
    if name == "vp9-10bit-webm":  # PyAV's libvpx has no high bit depth: can't splice, says so
        assert (result.mode, result.video_codec) == ("reencode", "h264")
        assert result.note is not None and "can't encode yuv420p10le" in result.note
        _verify(source, result, start, end)
        return
    # the codec's parameters are the source's: codec, profile, bit depth, chroma
    assert result.video_codec == codec
    assert _pix_fmt(result.path) == _pix_fmt(source)
    if end - start > GOP_S:
        assert (result.mode, result.note) == ("smart", None)
        assert result.frames_copied > 0
        assert result.frames_reencoded <= 2 * GOP_FRAMES
    else:  # no keyframe inside: all re-encoded, in the source's codec
        assert result.mode == "reencode" and result.frames_copied == 0
        assert result.note is not None and "no keyframe inside the range" in result.note
    _verify(source, result, start, end)
