"""Smart cut: frame-exact clips that re-encode only the partial GOPs at their edges.

Every clip is checked the same way (``_verify``): the frames are exactly the source's from the
one shown at ``start`` to the one before ``end``, in order, all decodable (by PyAV and by the
ffmpeg CLI, without a word on stderr), at the source's times less the first frame's; the first
frame's pixels match the source's; the copied packets are the source's bit for bit and the
rest were encoded by us (``frames_copied``/``frames_reencoded`` tell the truth); sound is in
sync (beeps where the source has them, to a few ms) and as long as the picture (to one AAC
frame); the index is at the front.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from clipmaker.errors import ClipError
from clipmaker.media import CutResult, cut
from clipmaker.media.cut import Opener
from clipmaker.media.cut import smart as smartcut
from clipmaker.media.cut.errors import SmartCutFailed
from clipmaker.media.cut.h264 import (
    AvcConfig,
    join_avcc,
    nal_type,
    parse_pps_ids,
    parse_sps,
    split_annexb,
    split_avcc,
)
from clipmaker.media.cut.h264_splice import H264Splice
from clipmaker.media.cut.hevc_splice import hevc_nal_type
from clipmaker.media.cut.splice import closed_prefix, display_lag
from clipmaker.testing.sample import audio_mono, beep_times, frame_index, frame_indices
from tests.media.conftest import FPS, GOP_S
from tests.support.http_server import MediaServer

GOP_FRAMES = round(GOP_S * FPS)
SMART_CODECS = ("h264", "hevc", "vp9", "av1")
AAC_FRAME_S = 1024 / 48000  # one audio frame: the sync and length budget
BEEP_TOLERANCE_S = 0.003  # what we actually achieve (sample-exact placement, ±1 envelope step)


@dataclass(frozen=True)
class _Frames:
    """A file's video frames: drawn index -> time (s) from the video stream's start."""

    times: dict[int, float]
    origin: float  # the video stream's start on the container clock

    @classmethod
    @functools.cache  # sources are session fixtures: analyse each once
    def of(cls, path: Path) -> _Frames:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            assert video.time_base is not None
            origin = float((video.start_time or 0) * video.time_base)
        return cls({i: t - origin for i, t in frame_indices(path)}, origin)

    def shown_at(self, seconds: float) -> int:
        """The frame a player shows at ``seconds`` (the last one starting at or before it)."""
        return max(i for i, t in self.times.items() if t <= seconds + 1e-6)


@functools.cache
def _source_beeps(path: Path) -> list[float]:
    return beep_times(path)


@functools.cache
def _source_samples(path: Path) -> dict[int, list[bytes]]:
    return {pts: nals for pts, nals, _ in _samples(path)}


def _samples(path: Path) -> list[tuple[int, list[bytes], bool]]:
    """(pts, NAL units, keyframe) of each video packet in decode order, framing removed
    (H.264); other codecs' packets whole."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        codec = video.codec_context.codec.canonical_name
        if codec == "h264":
            split = AvcConfig.from_extradata(video.codec_context.extradata).split
        elif codec == "hevc":
            split = _hevc_slices
        else:
            split = _whole
        return [
            (p.pts, split(bytes(p)), p.is_keyframe)
            for p in container.demux(video)
            if p.size and p.pts is not None
        ]


def _whole(payload: bytes) -> list[bytes]:
    return [payload]


def _hevc_slices(payload: bytes) -> list[bytes]:
    """An HEVC sample's NAL units but its parameter sets (the smart cut repeats those
    in-band at its joints; the slices must be the source's)."""
    nals = split_annexb(payload) if payload[:3] == b"\x00\x00\x01" else split_avcc(payload, 4)
    return [n for n in nals if hevc_nal_type(n) not in (32, 33, 34)]


def _luma(path: Path, index: int, seconds: float) -> np.ndarray:
    """The luma plane of the frame drawn with ``index``, shown around ``seconds``."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.time_base is not None
        container.seek(max(0, round((seconds - 0.5) / video.time_base)), stream=video)
        for frame in container.decode(video):
            if frame_index(frame) == index:
                return frame.to_ndarray(format="gray").astype(np.float32)
    raise AssertionError(f"frame {index} not found in {path}")


def _verify(
    source: Path,
    result: CutResult,
    start: float,
    end: float,
    *,
    audio_source: Path | None = None,
    max_reencoded: int = 2 * GOP_FRAMES,
) -> None:
    clip = result.path
    src = _Frames.of(source)
    first, last = src.shown_at(start), max(i for i, t in src.times.items() if t < end - 1e-6)
    zero = src.times[first]
    # exactly the frames from the one shown at start to the one before end, all decodable
    got = frame_indices(clip)
    assert [i for i, _ in got] == list(range(first, last + 1))
    for index, seconds in got:  # at the source's times (VFR included), less the first frame's
        assert seconds == pytest.approx(src.times[index] - zero, abs=1e-3)
    assert result.first_frame_time == 0.0
    assert result.source_start == pytest.approx(zero, abs=1e-3)
    # the first frame looks like the source's (not merely carries its number)
    diff = np.abs(_luma(clip, first, 0.0) - _luma(source, first, src.origin + zero)).mean()
    assert diff < 2.0, f"first frame differs from the source's by {diff:.2f} on average"
    # players agree: the ffmpeg CLI decodes every packet without a complaint
    check = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(clip), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert (check.returncode, check.stderr) == (0, "")
    data = clip.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat"), "the index must come first"
    # duration: the clip's frames, within one frame of what was asked for
    next_time = src.times.get(last + 1, src.times[last] + 1 / FPS)
    shown = sorted(src.times.values())
    longest = max(b - a for a, b in zip(shown, shown[1:], strict=False))
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        assert video.duration is not None and video.time_base is not None
        video_s = float(video.duration * video.time_base)
        # shown until the next frame, or until end if that comes first
        assert video_s == pytest.approx(min(next_time, end) - zero, abs=1e-3)
        assert abs(video_s - (end - start)) <= longest + 1e-6
        if container.streams.audio:
            audio = container.streams.audio[0]
            assert audio.duration is not None and audio.time_base is not None
            assert abs(float(audio.duration * audio.time_base) - video_s) <= AAC_FRAME_S + 1e-3
    samples, rate, _ = audio_mono(clip)
    assert abs(len(samples) / rate - video_s) <= AAC_FRAME_S + 1e-3
    if result.video_codec != _codec_of(source) or result.video_codec not in SMART_CODECS:
        assert result.mode == "reencode" and result.frames_copied == 0
        assert result.frames_reencoded == len(got)
    else:
        _verify_copied(source, result, src, zero, len(got), max_reencoded)
    # sound in sync: every beep of the source inside the clip, at its time less the zero
    source_beeps = _source_beeps(audio_source or source)
    span = video_s - 0.05
    expected = [b - src.origin - zero for b in source_beeps if 0 <= b - src.origin - zero < span]
    found = beep_times(clip)
    assert len(found) == len(expected), (found, expected)
    for at, want in zip(found, expected, strict=True):
        assert at == pytest.approx(want, abs=BEEP_TOLERANCE_S)
    assert result.bytes == clip.stat().st_size


def _codec_of(path: Path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.codec.canonical_name


def _verify_copied(
    source: Path, result: CutResult, src: _Frames, zero: float, frames: int, max_reencoded: int
) -> None:
    """Copied packets are the source's, bit for bit (NAL units: TS frames them with start
    codes), they form one run, and the counts add up."""
    clip = result.path
    source_nals = _source_samples(source)
    with av.open(str(source)) as container:
        source_base = container.streams.video[0].time_base
    with av.open(str(clip)) as container:
        clip_base = container.streams.video[0].time_base
    assert source_base is not None and clip_base is not None
    copied = []
    for pts, nals, _ in _samples(clip):
        at = round((pts * clip_base + src.origin + zero) / source_base)
        copied.append(source_nals.get(at) == nals)  # pts on the clip clock -> source clock
    assert sum(copied) == result.frames_copied
    assert result.frames_copied + result.frames_reencoded == frames
    run = "".join("c" if c else "r" for c in copied).strip("r")
    assert "r" not in run, "the copied packets must be one run in decode order"
    if result.mode == "smart":
        assert result.frames_copied > 0
        assert result.frames_reencoded <= max_reencoded
    else:
        assert result.frames_copied == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (5.3, 8.3),  # head 5.28-6, GOPs at 6 copied, tail in the GOP at 8
        (3.95, 12.5),  # start between the 4 s keyframe's decode and display times
        (11.99, 17.0),  # one frame of head
        (0.0, 1.0),  # from the first frame; the clip ends inside the first GOP
        (4.01, 4.5),  # within one GOP: copied up to a B-frame group, the rest re-encoded
    ],
)
def test_h264_with_b_frames(source_20s: Path, tmp_path: Path, start: float, end: float) -> None:
    result = cut(source_20s, tmp_path / "clip.mp4", start, end)
    assert (result.mode, result.video_codec, result.audio_codec) == ("smart", "h264", "aac")
    assert result.note is None
    _verify(source_20s, result, start, end)


def test_gop_aligned_range_is_copied_whole(source_20s: Path, tmp_path: Path) -> None:
    result = cut(source_20s, tmp_path / "clip.mp4", 4.0, 8.0)
    assert (result.mode, result.frames_reencoded, result.frames_copied) == ("smart", 0, 100)
    _verify(source_20s, result, 4.0, 8.0)


def test_head_and_tail_are_partial_gops(source_20s: Path, tmp_path: Path) -> None:
    # The GOP at 8 s in decode order: frames 200 201 203 202 207 205 204 206 210 208 209 ...
    # Up to 8.3 s (frame 207) its first eight packets are all the clip needs: copied.
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.3)
    assert (result.frames_reencoded, result.frames_copied) == (18, 50 + 8)  # head: 132-149
    # Up to 8.4 s (frame 209), 208 and 209 need 210, past the end: decoded, re-encoded.
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.4)
    assert (result.frames_reencoded, result.frames_copied) == (18 + 2, 50 + 8)
    _verify(source_20s, result, 5.3, 8.4)


@pytest.mark.parametrize(
    ("start", "end", "mode"),
    [
        # the open keyframe at 4 s is not an entry point: head up to the IDR at 6 s; then the
        # open GOP at 8 s is copied (its leading frames decode against the copied GOP)
        (3.3, 9.5, "smart"),
        # ends on a leading frame of the open GOP at 10 s: re-encoding it decodes the GOP before
        (5.0, 9.99, "smart"),
        # no IDR between start and end: every frame re-encoded, none broken
        (1.3, 5.0, "reencode"),
    ],
)
def test_open_gops_are_not_cut_points(
    source_open_gop: Path, tmp_path: Path, start: float, end: float, mode: str
) -> None:
    result = cut(source_open_gop, tmp_path / "clip.mp4", start, end)
    assert result.mode == mode
    _verify(source_open_gop, result, start, end, max_reencoded=3 * GOP_FRAMES)
    if start < 4.0 < end:
        assert result.note is not None and "open GOP" in result.note
    else:
        assert result.note is None


@pytest.mark.parametrize(("fixture", "codec"), [("source_vp8", "vp8")])
def test_other_codecs_fall_back_to_a_full_re_encode_and_say_so(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, codec: str
) -> None:
    source = request.getfixturevalue(fixture)
    result = cut(source, tmp_path / "clip.mp4", 2.3, 6.7)
    assert (result.mode, result.video_codec, result.audio_codec) == ("reencode", "h264", "aac")
    assert result.note == f"smart cut supports H.264, HEVC, VP9 and AV1; {codec} was re-encoded"
    _verify(source, result, 2.3, 6.7)


@pytest.mark.parametrize(
    "fixture", ["source_moov_at_end", "source_offset", "source_vfr", "source_ts"]
)
def test_awkward_h264_sources(request: pytest.FixtureRequest, tmp_path: Path, fixture: str) -> None:
    source = request.getfixturevalue(fixture)
    result = cut(source, tmp_path / "clip.mp4", 2.3, 7.7)
    assert (result.mode, result.note) == ("smart", None)
    _verify(source, result, 2.3, 7.7)


def test_moov_at_end_over_http(
    server: MediaServer, source_moov_at_end: Path, tmp_path: Path
) -> None:
    result = cut(server.url(source_moov_at_end.name), tmp_path / "clip.mp4", 2.3, 7.7)
    assert result.mode == "smart"
    _verify(source_moov_at_end, result, 2.3, 7.7)


def _opener(path: Path, opened: list[str]) -> Opener:
    @contextlib.contextmanager
    def open_container() -> Iterator[av.container.InputContainer]:
        opened.append(path.name)
        with av.open(str(path)) as container:
            yield container

    return open_container


@pytest.mark.parametrize("accuracy", ["frame", "keyframe"])
def test_separate_audio_input_through_openers(
    dash_pair: tuple[Path, Path], source_20s: Path, tmp_path: Path, accuracy: str
) -> None:
    video, audio = dash_pair
    opened: list[str] = []
    result = cut(
        _opener(video, opened),
        tmp_path / "clip.mp4",
        5.3,
        13.3,
        accuracy=accuracy,
        audio=_opener(audio, opened),
    )
    assert opened == [video.name, audio.name]
    assert result.audio_codec == "aac"
    if accuracy == "frame":
        assert result.mode == "smart"
        _verify(source_20s, result, 5.3, 13.3, audio_source=audio)
    else:  # a copy from the keyframe at 4 s, sound copied on the same clock
        assert (result.mode, result.source_start) == ("copy", 4.0)
        assert beep_times(result.path) == [pytest.approx(b - 4.0, abs=0.03) for b in (7.5, 12.34)]


def test_separate_audio_replaces_the_sources_own(
    source_20s: Path, source_offset: Path, tmp_path: Path
) -> None:
    # the offset source's audio is on another clock: its beeps must not be in the clip
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.3, audio=source_20s)
    assert beep_times(result.path) == [pytest.approx(7.5 - 5.28, abs=BEEP_TOLERANCE_S)]
    result = cut(source_20s, tmp_path / "other.mp4", 2.3, 8.3, audio=source_offset)
    assert beep_times(result.path) == []  # its clock starts at 10 s: silence here


def test_audio_input_without_audio(dash_pair: tuple[Path, Path], tmp_path: Path) -> None:
    video, _ = dash_pair
    with pytest.raises(ClipError) as caught:
        cut(video, tmp_path / "clip.mp4", 1.0, 2.0, audio=video)
    assert caught.value.code == "not_media"
    assert {p.name for p in tmp_path.iterdir()} == set()


def test_opener_failures_map_to_clip_errors(source_20s: Path, tmp_path: Path) -> None:
    def missing() -> contextlib.AbstractContextManager[av.container.InputContainer]:
        raise FileNotFoundError(2, "No such file or directory")

    with pytest.raises(ClipError) as caught:
        cut(missing, tmp_path / "clip.mp4", 1.0, 2.0)
    assert caught.value.code == "source_unreachable"


def test_a_splice_that_fails_midway_is_redone_as_a_full_re_encode(
    source_20s: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: object, gop: object, rest: object) -> None:
        raise SmartCutFailed("test: the tail could not be spliced; re-encoded")

    monkeypatch.setattr(smartcut.SmartVideo, "_reencode_tail", fail)
    # the head and the copied GOPs are written when the tail fails: all must be discarded
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.4)
    assert (result.mode, result.note) == (
        "reencode",
        "test: the tail could not be spliced; re-encoded",
    )
    _verify(source_20s, result, 5.3, 8.4)
    assert {p.name for p in tmp_path.iterdir()} == {"clip.mp4"}


def test_the_track_holds_both_parameter_sets(source_20s: Path, tmp_path: Path) -> None:
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.3)
    with av.open(str(source_20s)) as container:
        source_config = AvcConfig.from_extradata(container.streams.video[0].codec_context.extradata)
    with av.open(str(result.path)) as container:
        config = AvcConfig.from_extradata(container.streams.video[0].codec_context.extradata)
    assert config.sps[: len(source_config.sps)] == source_config.sps
    assert config.pps[: len(source_config.pps)] == source_config.pps
    ours = [parse_sps(nal) for nal in config.sps[len(source_config.sps) :]]
    assert len(ours) == 1 and ours[0].id not in source_config.ids()
    source_sps = parse_sps(source_config.sps[0])
    # matched to the source: profile, level, size, chroma, depth, reordering
    assert (ours[0].profile_idc, ours[0].level_idc) == (
        source_sps.profile_idc,
        source_sps.level_idc,
    )
    assert (ours[0].width, ours[0].height) == (source_sps.width, source_sps.height)
    assert (ours[0].chroma_format_idc, ours[0].bit_depth) == (1, 8)
    assert ours[0].max_num_reorder_frames == source_sps.max_num_reorder_frames
    # each segment starts with an IDR; ours carry our parameter sets in-band too
    keyframes = [nals for _, nals, key in _samples(result.path) if key]
    assert all(any(nal_type(n) == 5 for n in nals) for nals in keyframes)
    head = keyframes[0]
    assert head[:2] == config.sps[-1:] + config.pps[-1:]
    assert [nals[:2] for nals in keyframes[1:]] == [
        nals[:2] for nals in keyframes[1:] if nal_type(nals[0]) != 7
    ]  # the copied IDRs are the source's, as they were


# -- the bitstream helpers -------------------------------------------------------------------

# x264's avcC for 320x240 High@1.3 (SPS id 0), and its Annex B headers with sps-id=3
_AVCC = bytes.fromhex(
    "0164000dffe100186764000dacd94141fa1000000300100000030320f142996001000468ef8fcbfdf8f800"
)
_ANNEXB = bytes.fromhex("000000016764000d22cd94141fa10000030001000064000f1429960000000168212f8fcb")


def test_parameter_sets_parse() -> None:
    config = AvcConfig.from_extradata(_AVCC)
    assert (config.profile, config.level, config.length_size, config.annexb) == (100, 13, 4, False)
    sps = parse_sps(config.sps[0])
    assert (sps.id, sps.width, sps.height, sps.chroma_format_idc, sps.bit_depth) == (
        0,
        320,
        240,
        1,
        8,
    )
    assert (sps.max_num_ref_frames, sps.frame_mbs_only, sps.max_num_reorder_frames) == (
        4,
        True,
        2,
    )
    assert parse_pps_ids(config.pps[0]) == (0, 0)
    assert config.to_bytes() == _AVCC  # round trip
    annexb = AvcConfig.from_extradata(_ANNEXB)
    assert annexb.annexb and annexb.ids() == {3}
    assert annexb.tail == bytes([0xFD, 0xF8, 0xF8, 0x00])  # High: 4:2:0, 8 bits


def test_nal_framing_round_trips() -> None:
    nals = [b"\x09\xf0", b"\x67\x64\x00\x0d", b"\x65" + bytes(300) + b"\x80"]
    for size in (1, 2, 4):
        if size == 1:
            continue  # a 300-byte NAL unit doesn't fit one-byte lengths
        assert split_avcc(join_avcc(nals, size), size) == nals
    stream = b"\x00\x00\x00\x01" + nals[0] + b"\x00\x00\x01" + nals[1] + b"\x00\x00\x01" + nals[2]
    assert split_annexb(stream) == nals


@pytest.mark.parametrize(
    ("pts", "end", "prefix"),
    [
        ([0, 4, 2, 1, 3, 8, 6, 5, 7], 10, 9),  # all before end: copy all
        ([0, 4, 2, 1, 3, 8, 6, 5, 7], 8, 5),  # 5..7 need the P-frame at 8: re-encode them
        ([0, 4, 2, 1, 3, 8, 6, 5, 7], 4, 1),  # 1..3 need 4: only the I-frame
        ([0, 4, 2, 1, 3], 1, 1),
        ([4, 2, 3, 8], 4, 0),  # leading frames of an open GOP shown before its I-frame
        ([0, 1, 2, 3], 2, 2),  # no reordering: every prefix is closed
    ],
)
def test_closed_prefix(pts: list[int], end: int, prefix: int) -> None:
    assert closed_prefix(pts, end) == prefix


def test_display_lag() -> None:
    assert display_lag([0, 1, 2]) == 0
    assert display_lag([0, 4, 2, 1, 3]) == 2  # b-pyramid
    assert display_lag([0, 2, 1]) == 1


def test_decodes_with_only_the_first_parameter_sets_of_the_avcc(
    source_20s: Path, tmp_path: Path
) -> None:
    """Some hardware decoders take only an avcC's first SPS/PPS: ours are in-band as well."""
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.4)
    trimmed = tmp_path / "first-only.mp4"
    with av.open(str(result.path)) as clip, av.open(str(trimmed), "w") as out:
        video = clip.streams.video[0]
        config = AvcConfig.from_extradata(video.codec_context.extradata)
        assert len(config.sps) == len(config.pps) == 2
        config.sps, config.pps = config.sps[:1], config.pps[:1]  # the source's only
        stream = out.add_stream_from_template(video)
        stream.codec_context.extradata = config.to_bytes()
        for packet in clip.demux(video):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    check = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(trimmed), "-f", "null", "-"],
        capture_output=True,
        text=True,
    )
    assert (check.returncode, check.stderr) == (0, "")
    assert [i for i, _ in frame_indices(trimmed)] == list(range(132, 210))


@pytest.mark.parametrize("damage", ["truncated", "dropped"])
def test_a_clip_that_fails_its_check_is_redone_as_a_full_re_encode(
    source_20s: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """A smart cut that wrote a broken clip (a copied packet damaged, or a frame lost at a
    joint) is caught before the clip is handed over, and redone in full, with a note."""
    copied = H264Splice.copied
    seen: list[int] = []

    def damaged(self: H264Splice, payload: bytes) -> bytes:
        seen.append(1)
        out = copied(self, payload)
        if len(seen) == 10:  # the tenth copied packet
            return out[: len(out) // 3] if damage == "truncated" else out[:0]
        return out

    monkeypatch.setattr(H264Splice, "copied", damaged)
    result = cut(source_20s, tmp_path / "clip.mp4", 5.3, 8.4)
    assert result.mode == "reencode"
    assert result.note is not None and result.note.startswith("the clip failed its check (")
    _verify(source_20s, result, 5.3, 8.4)
    assert {p.name for p in tmp_path.iterdir()} == {"clip.mp4"}
