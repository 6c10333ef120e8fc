"""2. Wall time of a frame-accurate clip, and how many frames it re-encodes.

A 60 s clip of a 720p30 H.264 source with 2 s GOPs (about 3 minutes, a local file), starting
inside a GOP. Each command runs 3 times, interleaved; the median counts.

- clipmaker: ``cut(src, dest, A, B, accuracy="frame")``, in this process.
- ``ffmpeg -ss A -to B -i src -c:v libx264 -c:a aac out.mp4``: the usual exact cut, a full
  re-encode with FFmpeg's defaults (the target: clipmaker at least 8x faster).
- ``ffmpeg -ss A -to B -i src -c copy out.mp4``: the usual fast cut, a stream copy that starts
  on a keyframe, so not frame-accurate (the ratio is reported, no target).

Frames re-encoded: ``CutResult.frames_reencoded`` when clipmaker reports it. Without it, a cut
in mode "reencode" re-encoded every frame of the clip, so its video frame count is reported (and
read from the file); any other mode without the field is "n/a". Target: at most two GOPs' worth.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.common import SEGMENT_S, Context, Row, ffmpeg, log, median_time, sample_video

FPS = 30
GOP_S = 2.0
SPEED_TARGET = 8.0


def _video_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(video=0) if p.size)


def _first_index(path: Path) -> str:
    from clipmaker.testing.sample import first_frame_index_and_time

    try:
        return str(first_frame_index_and_time(path)[0])
    except ValueError as exc:
        return f"unreadable ({exc})"


def _check_frames(path: Path, first: int, count: int) -> str:
    """Does the clip show source frames first, first+1, ... (modulo the repeated segment)?"""
    from clipmaker.testing.sample import frame_indices

    period = round(SEGMENT_S * FPS)
    try:
        got = [index for index, _ in frame_indices(path)]
    except ValueError as exc:
        return f"WRONG: a frame is unreadable ({exc})"
    want = [(first + k) % period for k in range(count)]
    if got == want:
        return f"right ({count} frames, source frames in order)"
    bad = next((k for k, (g, w) in enumerate(zip(got, want, strict=False)) if g != w), None)
    where = f"first difference at clip frame {bad}" if bad is not None else "lengths differ"
    return f"WRONG: {len(got)} frames, want {count}; {where}"


def run(ctx: Context) -> None:
    duration, clip_s, repeat = (80.0, 20.0, 1) if ctx.quick else (200.0, 60.0, 3)
    source = sample_video("walltime", duration_s=duration, size=(1280, 720), fps=FPS, crf=26)
    start = 61.3 if not ctx.quick else 30.3
    end = start + clip_s
    expected_index = round(start * FPS) % round(SEGMENT_S * FPS)
    log(f"  source {source.name}; clip {start:g}-{end:g} s, {repeat}x each (median)")
    out = ctx.workdir / "walltime"
    out.mkdir(parents=True, exist_ok=True)
    a, b = f"{start:g}", f"{end:g}"

    from clipmaker.media import cut

    def clipmaker_cut():
        return cut(source, out / "clipmaker.mp4", start, end, accuracy="frame")

    def ffmpeg_reencode() -> None:
        ffmpeg(
            "-ss",
            a,
            "-to",
            b,
            "-i",
            str(source),
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(out / "reencode.mp4"),
        )

    def ffmpeg_copy() -> None:
        ffmpeg("-ss", a, "-to", b, "-i", str(source), "-c", "copy", str(out / "copy.mp4"))

    times: dict[str, list[float]] = {"clipmaker": [], "reencode": [], "copy": []}
    result = None
    for _ in range(repeat):  # interleaved, so drift in the machine hits all three alike
        _, [t], result = median_time(clipmaker_cut, 1)
        times["clipmaker"].append(t)
        times["reencode"].append(median_time(ffmpeg_reencode, 1)[0])
        times["copy"].append(median_time(ffmpeg_copy, 1)[0])
    med = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        log(f"  {name}: " + ", ".join(f"{t:.2f}" for t in ts) + f" s -> median {med[name]:.2f} s")
    assert result is not None
    first = {
        "clipmaker": _first_index(out / "clipmaker.mp4"),
        "ffmpeg re-encode": _first_index(out / "reencode.mp4"),
        "ffmpeg -c copy": _first_index(out / "copy.mp4"),
    }
    checked = _check_frames(out / "clipmaker.mp4", expected_index, round(clip_s * FPS))
    ctx.note(f"walltime: clipmaker's clip, every frame checked: {checked}")
    ctx.note(
        f"walltime: first frame of each clip (source frame index; {expected_index} is exact): "
        + ", ".join(f"{k} {v}" for k, v in first.items())
        + f"; clipmaker mode={result.mode}, clip {result.duration:.2f} s"
    )

    label = f"{clip_s:g} s frame-accurate clip of {duration / 60:.1f}-min 720p30"
    ratio = med["reencode"] / med["clipmaker"]
    ctx.add(
        Row(
            f"wall time, {label} (median of {repeat})",
            f"{med['clipmaker']:.2f} s",
            f"ffmpeg -ss -to -i -c:v libx264 -c:a aac: {med['reencode']:.2f} s",
            ratio,
            target=f">= {SPEED_TARGET:g}x faster",
            met=ratio >= SPEED_TARGET,
        )
    )
    ctx.add(
        Row(
            f"wall time, {label} (median of {repeat})",
            f"{med['clipmaker']:.2f} s",
            f"ffmpeg -ss -to -i -c copy (from the keyframe, edit list): {med['copy']:.2f} s",
            med["copy"] / med["clipmaker"],
            target="- (reported)",
        )
    )

    # frames re-encoded
    max_frames = round(2 * GOP_S * FPS)
    reported = getattr(result, "frames_reencoded", None)
    baseline_frames = _video_frames(out / "reencode.mp4")
    if reported is not None:
        frames: int | None = int(reported)
        copied = getattr(result, "frames_copied", None)
        shown = f"{frames} (mode={result.mode}" + (
            f", {copied} copied)" if copied is not None else ")"
        )
    elif result.mode == "reencode":
        frames = _video_frames(result.path)
        shown = f"{frames} (all; mode=reencode, no frames_reencoded)"
    else:
        frames, shown = None, f"n/a (mode={result.mode}, no frames_reencoded)"
    ctx.add(
        Row(
            f"frames re-encoded, {label}",
            shown,
            f"ffmpeg full re-encode: {baseline_frames}",
            baseline_frames / frames if frames else None,
            ratio_text=None if frames is None or frames else "inf",
            target=f"<= {max_frames} (2 GOPs)",
            met=None if frames is None else frames <= max_frames,
        )
    )
