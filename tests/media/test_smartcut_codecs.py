"""Smart cut beyond H.264: HEVC, VP9 and AV1, 8- and 10-bit, from MP4, WebM and Matroska.

Each source has a keyframe every 2 s and beeps at known times; every clip is checked as a
user would (``test_smartcut._verify``): the exact frames from the one shown at ``start``, the
first frame's pixels, the duration, ffmpeg decoding it without a complaint, the copied packets
bit for bit the source's, at most two GOPs re-encoded, and the beeps in sync.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import pytest

from clipmaker.media import cut
from clipmaker.testing.sample import make_video
from tests.media.conftest import FPS, GOP_S, SMART_BEEPS
from tests.media.test_smartcut import _verify

GOP_FRAMES = round(GOP_S * FPS)


def _ten_bit(source: Path, dest: Path, codec: str) -> Path:
    """``source`` re-encoded to 10-bit 4:2:0 with the same keyframes (ffmpeg CLI)."""
    if dest.exists():
        return dest
    if codec == "libvpx-vp9":
        video = ["-c:v", "libvpx-vp9", "-profile:v", "2", "-deadline", "realtime"]
        video += ["-cpu-used", "8", "-crf", "30", "-b:v", "0", "-row-mt", "1"]
    elif codec == "libx265":
        params = f"keyint={GOP_FRAMES}:min-keyint={GOP_FRAMES}:scenecut=0:bframes=3:open-gop=0"
        video = ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "23", "-x265-params"]
        video += [params + ":log-level=error"]
    else:
        video = ["-c:v", "libsvtav1", "-preset", "8", "-crf", "30"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), *video, "-pix_fmt", "yuv420p10le"]
        + ["-g", str(GOP_FRAMES), "-keyint_min", str(GOP_FRAMES), "-c:a", "copy", str(dest)],
        check=True,
    )
    return dest


@pytest.fixture(scope="session")
def codec_sources(media_dir: Path) -> dict[str, Path]:
    """name -> a 10 s source: VP9 and AV1, in WebM (Opus) and MP4 (AAC), 8-bit and 10-bit."""
    made: dict[str, Path] = {}
    for name, codec, ext in (
        ("hevc-mp4", "libx265", "mp4"),
        ("hevc-mkv", "libx265", "mkv"),
        ("vp9-webm", "libvpx-vp9", "webm"),
        ("vp9-mp4", "libvpx-vp9", "mp4"),
        ("av1-mp4", "libsvtav1", "mp4"),
        ("av1-webm", "libsvtav1", "webm"),
    ):
        made[name] = make_video(
            media_dir / f"smart-{name}.{ext}",
            duration_s=10,
            fps=FPS,
            gop_s=GOP_S,
            video_codec=codec,
            audio_codec="libopus" if ext != "mp4" else "aac",
            beeps=SMART_BEEPS,
        )
    made["vp9-10bit-webm"] = _ten_bit(
        made["vp9-webm"], media_dir / "smart-vp9-10bit.webm", "libvpx-vp9"
    )
    made["hevc-10bit-mp4"] = _ten_bit(
        made["hevc-mp4"], media_dir / "smart-hevc-10bit.mp4", "libx265"
    )
    made["av1-10bit-mp4"] = _ten_bit(made["av1-mp4"], media_dir / "smart-av1-10bit.mp4", "av1")
    return made


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
