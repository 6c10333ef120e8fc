"""cut(): the clip a user gets, checked frame by frame and beep by beep."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import av
import pytest

from clipmaker.errors import ClipError
from clipmaker.media import CutResult, cut
from clipmaker.testing.sample import (
    beep_times,
    first_frame_index_and_time,
    frame_indices,
    make_video,
    video_frame_count,
)
from tests.media.conftest import FPS
from tests.support.http_server import MediaServer

FRAME_S = 1 / FPS
EPS = 1e-6


def _frame_at(seconds: float) -> int:
    """The source frame shown at ``seconds`` (pts <= t < next pts)."""
    return math.floor(seconds * FPS + EPS)


def _stream_durations(path: Path) -> tuple[float, float]:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.duration is not None and audio.duration is not None
        assert video.time_base is not None and audio.time_base is not None
        return float(video.duration * video.time_base), float(audio.duration * audio.time_base)


def _assert_only(directory: Path, names: set[str]) -> None:
    """No leftovers (partial or temporary files) beside the expected ones."""
    assert {p.name for p in directory.iterdir()} == names


def test_frame_accurate_cut_over_http(
    server: MediaServer, source_20s: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "clip.mp4"
    result = cut(server.url(source_20s.name), dest, 5.3, 8.3)

    assert isinstance(result, CutResult)
    assert result.path == dest and dest.is_file()
    assert (result.mode, result.video_codec, result.audio_codec) == ("smart", "h264", "aac")
    # 5.28-6.0 s re-encoded (head), the GOP at 6 s copied, the tail from the GOP at 8 s
    assert result.frames_reencoded + result.frames_copied == 76
    assert result.frames_copied >= 50 and result.note is None
    assert result.bytes == dest.stat().st_size
    # the first frame is the one a player shows at 5.3 s: frame 132 (5.28 s), at time 0
    assert first_frame_index_and_time(dest) == (132, 0.0)
    assert result.first_frame_time == 0.0
    assert result.source_start == pytest.approx(5.28)
    # end is exclusive: the last frame is the one before 8.3 s (frame 207, 8.28 s)
    indices = [index for index, _ in frame_indices(dest)]
    assert indices == list(range(132, 208))
    assert abs(result.duration - 3.0) <= FRAME_S + EPS
    video_s, audio_s = _stream_durations(dest)
    assert abs(video_s - 3.0) <= FRAME_S + EPS
    assert audio_s == pytest.approx(video_s, abs=1024 / 48000)  # AAC copied: to one frame
    # sound kept in sync with picture: the beep at 7.5 s in the source is at 7.5 - 5.28
    assert beep_times(dest) == [pytest.approx(7.5 - 5.28, abs=0.003)]
    _assert_only(tmp_path, {"clip.mp4"})


@pytest.mark.parametrize("start", [0.0, 3.95, 4.0, 4.01, 11.99, 17.0])
def test_first_frame_is_the_frame_shown_at_start(
    source_20s: Path, tmp_path: Path, start: float
) -> None:
    # 3.95: between the 4 s keyframe's decode time (3.92) and its display time (4.0);
    # a seek by decode time alone lands one GOP late there.
    result = cut(source_20s, tmp_path / "clip.mp4", start, start + 1.0)
    assert first_frame_index_and_time(result.path) == (_frame_at(start), 0.0)
    assert result.source_start == pytest.approx(_frame_at(start) * FRAME_S)
    assert video_frame_count(result.path) in (25, 26)


def test_a_short_clip_reads_a_small_part_of_a_long_file(
    server: MediaServer, source_60s: Path, tmp_path: Path
) -> None:
    size = source_60s.stat().st_size
    result = cut(server.url(source_60s.name), tmp_path / "clip.mp4", 30.3, 33.3)
    assert first_frame_index_and_time(result.path) == (_frame_at(30.3), 0.0)
    sent = server.bytes_sent
    # the clip is 5 % of the file; allow for the header and the buffers of two connections
    assert sent < 0.35 * size, f"read {sent} of {size} bytes"
    assert any(r.status == 206 and not r.range.startswith("bytes=0-") for r in server.requests)


def test_keyframe_cut_copies_packets_from_the_keyframe_before_start(
    source_20s: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "clip.mp4"
    result = cut(source_20s, dest, 5.3, 8.3, accuracy="keyframe")

    assert (result.mode, result.video_codec, result.audio_codec) == ("copy", "h264", "aac")
    assert result.source_start == pytest.approx(4.0)  # the keyframe at or before 5.3 s
    assert first_frame_index_and_time(dest) == (100, 0.0)
    assert result.first_frame_time == 0.0
    indices = [index for index, _ in frame_indices(dest)]
    assert indices[:108] == list(range(100, 208))  # up to the frame before end
    # bit-identical: the clip's video packets are the source's, from the keyframe on
    with av.open(str(source_20s)) as src:
        source_packets = []
        for packet in src.demux(video=0):
            if packet.pts is not None and packet.pts * packet.time_base >= 4.0 - EPS:
                source_packets.append(bytes(packet))
            if len(source_packets) == 20:
                break
    with av.open(str(dest)) as clip:
        clip_packets = [bytes(p) for p in clip.demux(video=0) if p.size][:20]
    assert clip_packets == source_packets
    # audio is copied with the same zero
    assert beep_times(dest) == [pytest.approx(7.5 - 4.0, abs=0.03)]


def test_keyframe_cut_re_encodes_audio_browsers_cannot_play(
    source_pcm_mov: Path, tmp_path: Path
) -> None:
    result = cut(source_pcm_mov, tmp_path / "clip.mp4", 5.3, 8.3, accuracy="keyframe")
    assert (result.mode, result.video_codec, result.audio_codec) == ("copy", "h264", "aac")
    assert first_frame_index_and_time(result.path) == (100, 0.0)
    assert beep_times(result.path) == [pytest.approx(7.5 - 4.0, abs=0.003)]


def test_keyframe_cut_starting_on_a_keyframe(source_20s: Path, tmp_path: Path) -> None:
    result = cut(source_20s, tmp_path / "clip.mp4", 4.0, 6.0, accuracy="keyframe")
    assert first_frame_index_and_time(result.path) == (100, 0.0)
    assert result.duration == pytest.approx(2.0, abs=FRAME_S + EPS)


def test_webm_vp9_source_is_smart_cut_into_mp4(source_webm: Path, tmp_path: Path) -> None:
    result = cut(source_webm, tmp_path / "clip.mp4", 2.5, 4.5)
    # VP9 stays VP9 (the GOP from 4 s copied), Opus becomes AAC (MP4 edit lists place it)
    assert (result.mode, result.video_codec, result.audio_codec) == ("smart", "vp9", "aac")
    assert first_frame_index_and_time(result.path) == (_frame_at(2.5), 0.0)
    assert beep_times(result.path) == [pytest.approx(3.0 - 2.48, abs=0.003)]


def test_source_without_duration_in_its_header(source_no_duration: Path, tmp_path: Path) -> None:
    result = cut(source_no_duration, tmp_path / "clip.mp4", 2.5, 4.5)
    assert first_frame_index_and_time(result.path) == (_frame_at(2.5), 0.0)
    # the length is only known once the end has been read: the range is checked then
    with pytest.raises(ClipError) as caught:
        cut(source_no_duration, tmp_path / "late.mp4", 6.0, 9.0)
    assert caught.value.code == "range_out_of_bounds"
    assert "8.000 s" in caught.value.message
    _assert_only(tmp_path, {"clip.mp4"})


@pytest.mark.parametrize("accuracy", ["frame", "keyframe"])
def test_phone_rotation_is_kept(tmp_path: Path, accuracy: str) -> None:
    upright = make_video(tmp_path / "upright.mp4", duration_s=3, audio=False)
    rotated = tmp_path / "rotated.mp4"  # a phone's portrait video: landscape pixels + rotation
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-i",
            str(upright),
            "-c",
            "copy",
            "-metadata:s:v",
            "rotate=90",
            str(rotated),
        ],
        check=True,
    )
    with av.open(str(rotated)) as container:
        source_rotation = next(container.decode(video=0)).rotation
    assert source_rotation != 0  # the premise
    result = cut(rotated, tmp_path / "clip.mp4", 1.0, 2.0, accuracy=accuracy)
    with av.open(str(result.path)) as container:
        assert next(container.decode(video=0)).rotation == source_rotation


def test_output_is_fast_start(source_20s: Path, tmp_path: Path) -> None:
    for accuracy in ("frame", "keyframe"):
        result = cut(source_20s, tmp_path / f"{accuracy}.mp4", 1.0, 2.0, accuracy=accuracy)
        head = result.path.read_bytes()
        assert 0 <= head.find(b"moov") < head.find(b"mdat"), accuracy


def test_video_without_audio(tmp_path: Path) -> None:
    source = make_video(tmp_path / "silent.mp4", duration_s=4, audio=False)
    result = cut(source, tmp_path / "clip.mp4", 1.0, 2.0)
    assert result.audio_codec is None
    assert first_frame_index_and_time(result.path) == (25, 0.0)


def test_end_within_a_frame_of_the_source_end_is_accepted(source_20s: Path, tmp_path: Path) -> None:
    result = cut(source_20s, tmp_path / "clip.mp4", 19.0, 20.03)
    indices = [index for index, _ in frame_indices(result.path)]
    assert indices == list(range(475, 500))


@pytest.mark.parametrize(("start", "end"), [(20.0, 21.0), (19.0, 20.5), (25.0, 30.0)])
def test_range_past_the_end_is_refused(
    source_20s: Path, tmp_path: Path, start: float, end: float
) -> None:
    dest = tmp_path / "clip.mp4"
    with pytest.raises(ClipError) as caught:
        cut(source_20s, dest, start, end)
    assert caught.value.code == "range_out_of_bounds"
    assert f"{start:g}-{end:g}" in caught.value.message  # names the request...
    assert "20.000 s" in caught.value.message  # ...and the source's length
    _assert_only(tmp_path, set())


@pytest.mark.parametrize(("start", "end"), [(5.0, 5.0), (6.0, 5.0), (-1.0, 2.0)])
def test_empty_or_negative_range_is_invalid(
    source_20s: Path, tmp_path: Path, start: float, end: float
) -> None:
    with pytest.raises(ClipError) as caught:
        cut(source_20s, tmp_path / "clip.mp4", start, end)
    assert caught.value.code == "invalid_request"


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("text", {"not_media"}),
        ("html", {"not_media"}),
        ("garbage", {"not_media", "corrupt_media"}),
        ("truncated", {"corrupt_media"}),
    ],
)
def test_unusable_sources(
    junk: dict[str, Path], tmp_path: Path, kind: str, codes: set[str]
) -> None:
    with pytest.raises(ClipError) as caught:
        cut(junk[kind], tmp_path / "clip.mp4", 12.0, 14.0)  # past the truncation point
    assert caught.value.code in codes
    _assert_only(tmp_path, set())


def test_truncated_source_over_http(
    server: MediaServer, junk: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ClipError) as caught:
        cut(server.url(junk["truncated"].name), tmp_path / "clip.mp4", 8.0, 14.0)
    assert caught.value.code == "corrupt_media"
    assert "truncated" in caught.value.message
    _assert_only(tmp_path, set())


def test_audio_only_source_has_no_video_stream(audio_only: Path, tmp_path: Path) -> None:
    with pytest.raises(ClipError) as caught:
        cut(audio_only, tmp_path / "clip.mp4", 1.0, 2.0)
    assert caught.value.code == "no_video_stream"


def test_cover_art_is_not_a_video(audio_with_cover: Path, tmp_path: Path) -> None:
    with av.open(str(audio_with_cover)) as container:
        assert len(container.streams.video) == 1  # what FFmpeg lists...
    with pytest.raises(ClipError) as caught:  # ...is a picture, not something to cut
        cut(audio_with_cover, tmp_path / "clip.mp4", 1.0, 2.0)
    assert caught.value.code == "no_video_stream"
    _assert_only(tmp_path, set())


def test_progress_goes_from_zero_to_one(source_20s: Path, tmp_path: Path) -> None:
    seen: list[float] = []
    cut(source_20s, tmp_path / "clip.mp4", 6.0, 12.0, progress=seen.append)
    assert len(seen) >= 5  # about every 0.5 s of a 6 s clip
    assert seen == sorted(seen)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert all(0.0 <= value <= 1.0 for value in seen)


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("accuracy", ["frame", "keyframe"])
def test_progress_that_raises_cancels_and_leaves_nothing(
    server: MediaServer, source_20s: Path, tmp_path: Path, accuracy: str
) -> None:
    seen: list[float] = []

    def progress(fraction: float) -> None:
        seen.append(fraction)
        if fraction >= 0.3:
            raise Cancelled()

    dest = tmp_path / "clip.mp4"
    with pytest.raises(Cancelled):
        cut(server.url(source_20s.name), dest, 2.0, 12.0, accuracy=accuracy, progress=progress)
    assert seen[-1] < 0.5  # stopped at once, not after the whole clip
    assert not dest.exists()
    _assert_only(tmp_path, set())


def test_a_failed_cut_keeps_an_existing_clip(source_20s: Path, tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"an earlier, complete clip")
    with pytest.raises(ClipError):
        cut(source_20s, dest, 30.0, 31.0)
    assert dest.read_bytes() == b"an earlier, complete clip"
    _assert_only(tmp_path, {"clip.mp4"})


@pytest.mark.parametrize(
    ("accuracy", "start", "first"),
    [
        ("frame", 3.95, 98),
        ("frame", 5.3, 132),
        ("keyframe", 5.3, 100),
        ("keyframe", 4.0, 100),
    ],
)
def test_mpeg_ts_source_whose_seeks_land_late(
    source_ts: Path, tmp_path: Path, accuracy: str, start: float, first: int
) -> None:
    result = cut(source_ts, tmp_path / "clip.mp4", start, 8.3, accuracy=accuracy)
    assert first_frame_index_and_time(result.path) == (first, 0.0)
    assert result.source_start == pytest.approx(first * FRAME_S)
    # the zero of the clip is the first frame's time, for sound as for picture
    tolerance = 0.003 if accuracy == "frame" else 0.03  # a copy keeps whole audio packets
    assert beep_times(result.path) == [pytest.approx(7.5 - first * FRAME_S, abs=tolerance)]
