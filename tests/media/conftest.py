"""Media made once per test session, and a loopback HTTP server that serves it.

Sources are synthetic (see ``clipmaker.testing.sample``): every frame carries its index and
the audio carries beeps at known times, so a test can check which source frame a clip starts on
and whether sound stayed in sync. Generating them costs a few seconds, so they are shared.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from clipmaker.testing.sample import make_video
from tests.support.http_server import MediaServer, serve_directory

FPS = 25
GOP_S = 2.0
BEEPS = (3.0, 7.5, 12.34)
# The media layer fetches public addresses only unless told more; the test servers listen on
# 127.0.0.1, so these tests admit exactly that address (127.0.0.2, ::1... stay forbidden).
ALLOWED_NETWORKS = "127.0.0.1/32"


@pytest.fixture(scope="package", autouse=True)
def _allow_test_servers() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CLIPMAKER_ALLOWED_SOURCE_NETWORKS", ALLOWED_NETWORKS)
        yield


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def source_20s(media_dir: Path) -> Path:
    """20 s, 320x240, 25 fps H.264 with B-frames, keyframe every 2 s, AAC with beeps."""
    return make_video(
        media_dir / "source20.mp4",
        duration_s=20,
        fps=FPS,
        gop_s=GOP_S,
        speech=[(1.0, "one two three")],
        beeps=BEEPS,
    )


@pytest.fixture(scope="session")
def source_60s(media_dir: Path) -> Path:
    """60 s of the same kind (about 11 MB), for checking what a short clip reads."""
    return make_video(media_dir / "source60.mp4", duration_s=60, fps=FPS, gop_s=GOP_S)


@pytest.fixture(scope="session")
def source_webm(media_dir: Path) -> Path:
    """8 s VP9 + Opus in WebM: a codec pair that must be re-encoded for frame accuracy."""
    return make_video(
        media_dir / "source8.webm",
        duration_s=8,
        video_codec="libvpx-vp9",
        audio_codec="libopus",
        beeps=(3.0,),
    )


@pytest.fixture(scope="session")
def audio_only(media_dir: Path, source_20s: Path) -> Path:
    """The 20 s source's audio track alone (an .m4a: media, but nothing to cut a clip from)."""
    path = media_dir / "audio-only.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source_20s),
            "-vn",
            "-c",
            "copy",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def junk(media_dir: Path, source_20s: Path) -> dict[str, Path]:
    """Files that are not usable media, by kind."""
    data = source_20s.read_bytes()
    files = {
        "text": ("notes.txt", b"just some text, not a video\n" * 20),
        "html": (
            "page.html",
            b"<!doctype html><html><head><title>No video</title></head>"
            b"<body><p>Nothing to see here.</p></body></html>",
        ),
        "garbage": ("garbage.mp4", bytes(range(256)) * 400),
        # moov is at the front (faststart): the header promises 20 s, the data stops at ~10 s
        "truncated": ("truncated.mp4", data[: len(data) // 2]),
        "empty": ("empty.mp4", b""),
    }
    paths: dict[str, Path] = {}
    for kind, (name, content) in files.items():
        path = media_dir / name
        path.write_bytes(content)
        paths[kind] = path
    return paths


@pytest.fixture(scope="session")
def media_server(media_dir: Path) -> Iterator[MediaServer]:
    with serve_directory(media_dir) as server:
        yield server


@pytest.fixture
def server(media_server: MediaServer) -> MediaServer:
    """The shared server with its counters reset for this test."""
    media_server.reset_counts()
    return media_server


@pytest.fixture(scope="session")
def source_ts(media_dir: Path) -> Path:
    """10 s H.264/AAC in MPEG-TS: timestamps start at 1.4 s, and its seeks land late (the
    demuxer bisects by bytes), so a cut must check where it landed and seek again."""
    return make_video(media_dir / "source10.ts", duration_s=10, beeps=(7.5,))


@pytest.fixture(scope="session")
def audio_with_cover(media_dir: Path, audio_only: Path) -> Path:
    """A music file: AAC plus cover art, which FFmpeg lists as a one-picture video stream."""
    cover = media_dir / "cover.png"
    path = media_dir / "song.m4a"
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-y"]
    subprocess.run(
        [*ffmpeg, "-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover)],
        check=True,
    )
    subprocess.run(
        [
            *ffmpeg,
            "-i",
            str(audio_only),
            "-i",
            str(cover),
            "-map",
            "0",
            "-map",
            "1",
            "-c",
            "copy",
            "-disposition:v",
            "attached_pic",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def source_pcm_mov(media_dir: Path, source_20s: Path) -> Path:
    """The 20 s source's video with its audio as 16-bit PCM in a MOV (no browser plays that)."""
    path = media_dir / "source20-pcm.mov"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source_20s),
            "-c:v",
            "copy",
            "-c:a",
            "pcm_s16le",
            str(path),
        ],
        check=True,
    )
    return path


@pytest.fixture(scope="session")
def source_no_duration(media_dir: Path, source_webm: Path) -> Path:
    """The WebM remuxed as a live stream: no duration and no seek index in the header, like
    the files browsers' MediaRecorder makes (a common kind of upload)."""
    path = media_dir / "recorded.webm"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source_webm),
            "-c",
            "copy",
            "-live",
            "1",
            "-f",
            "webm",
            str(path),
        ],
        check=True,
    )
    return path


# Sources for the smart cut: each an awkward kind of H.264 (or another codec), 12 s or less,
# with beeps at known times so sync can be checked after a cut.
SMART_BEEPS = (3.0, 7.5)


@pytest.fixture(scope="session")
def source_open_gop(media_dir: Path) -> Path:
    """12 s H.264 with open GOPs (x264 open-gop: keyframes every 2 s are non-IDR I-frames whose
    leading B-frames reference the previous GOP) and a single IDR, at 6 s (frame 150)."""
    return make_video(
        media_dir / "open-gop.mp4",
        duration_s=12,
        fps=FPS,
        gop_s=GOP_S,
        open_gop=True,
        idr_frames=(150,),
        beeps=SMART_BEEPS,
    )


@pytest.fixture(scope="session")
def source_hevc(media_dir: Path) -> Path:
    """10 s HEVC (x265) with B-frames and AAC in MP4."""
    return make_video(
        media_dir / "hevc.mp4", duration_s=10, fps=FPS, video_codec="libx265", beeps=SMART_BEEPS
    )


@pytest.fixture(scope="session")
def source_vp8(media_dir: Path) -> Path:
    """8 s VP8 + Opus in WebM: a codec with no smart cut, re-encoded in full."""
    return make_video(
        media_dir / "vp8.webm",
        duration_s=8,
        fps=FPS,
        video_codec="libvpx",
        audio_codec="libopus",
        beeps=SMART_BEEPS,
    )


@pytest.fixture(scope="session")
def source_moov_at_end(media_dir: Path) -> Path:
    """12 s H.264/AAC MP4 with its index (moov) after the media data, as cameras write it."""
    return make_video(
        media_dir / "moov-at-end.mp4", duration_s=12, fps=FPS, faststart=False, beeps=SMART_BEEPS
    )


@pytest.fixture(scope="session")
def source_offset(media_dir: Path) -> Path:
    """12 s H.264/AAC MP4 whose clock starts at 10 s (a piece of a live recording)."""
    return make_video(
        media_dir / "offset.mp4", duration_s=12, fps=FPS, start_s=10.0, beeps=SMART_BEEPS
    )


@pytest.fixture(scope="session")
def source_vfr(media_dir: Path) -> Path:
    """12 s H.264/AAC with a variable frame rate (frames last 20, 40 or 60 ms)."""
    return make_video(media_dir / "vfr.mp4", duration_s=12, fps=FPS, vfr=True, beeps=SMART_BEEPS)


@pytest.fixture(scope="session")
def dash_pair(media_dir: Path, source_20s: Path) -> tuple[Path, Path]:
    """The 20 s source split DASH-style: a video-only MP4 and an audio-only M4A."""
    video, audio = media_dir / "dash-video.mp4", media_dir / "dash-audio.m4a"
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source_20s), "-c", "copy"]
    subprocess.run([*ffmpeg, "-an", str(video)], check=True)
    subprocess.run([*ffmpeg, "-vn", str(audio)], check=True)
    return video, audio


_GOP_FRAMES = round(GOP_S * FPS)


def _ten_bit(source: Path, dest: Path, codec: str) -> Path:
    """``source`` re-encoded to 10-bit 4:2:0 with the same keyframes (ffmpeg CLI)."""
    if dest.exists():
        return dest
    if codec == "libvpx-vp9":
        video = ["-c:v", "libvpx-vp9", "-profile:v", "2", "-deadline", "realtime"]
        video += ["-cpu-used", "8", "-crf", "30", "-b:v", "0", "-row-mt", "1"]
    elif codec == "libx265":
        params = f"keyint={_GOP_FRAMES}:min-keyint={_GOP_FRAMES}:scenecut=0:bframes=3:open-gop=0"
        video = ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "23", "-x265-params"]
        video += [params + ":log-level=error"]
    else:
        video = ["-c:v", "libsvtav1", "-preset", "8", "-crf", "30"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), *video, "-pix_fmt", "yuv420p10le"]
        + ["-g", str(_GOP_FRAMES), "-keyint_min", str(_GOP_FRAMES), "-c:a", "copy", str(dest)],
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
