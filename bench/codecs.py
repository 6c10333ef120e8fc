"""5. Smart cut per codec: the same frame-accurate clip, smart-cut vs fully re-encoded.

For H.264, HEVC, VP9 and AV1 (2 s GOPs, 640x360 25 fps, a local MP4; VP9 also from WebM), a
clip that starts and ends inside a GOP is cut two ways:

- clipmaker: ``cut(src, dest, A, B, accuracy="frame")``: the partial GOPs re-encoded with the
  source's codec, whole GOPs copied (``CutResult.mode``, ``frames_reencoded``/``copied``);
- the same clip fully re-encoded with the same codec by the FFmpeg CLI
  (``ffmpeg -ss A -to B -i src -c:v <libx264|libx265|libvpx-vp9|libsvtav1> -c:a aac``), what a
  user does for an exact cut that keeps the codec.

Reported: wall time of each (ratio = how many times faster the smart cut is) and the frames
re-encoded out of the clip's frames. Target: mode ``smart`` with at most 2 GOPs re-encoded.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import BENCH_DIR, Context, Row, ffmpeg, log, median_time

FPS = 25
GOP_S = 2.0
CODECS = (  # name, make_video encoder, container, full re-encode arguments
    ("H.264", "libx264", "mp4", ["-c:v", "libx264", "-preset", "veryfast"]),
    (
        "HEVC",
        "libx265",
        "mp4",
        ["-c:v", "libx265", "-preset", "veryfast", "-x265-params", "log-level=error"],
    ),
    (
        "VP9",
        "libvpx-vp9",
        "webm",
        ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
    ),
    ("AV1", "libsvtav1", "mp4", ["-c:v", "libsvtav1", "-preset", "8"]),
)


def _source(encoder: str, ext: str, duration_s: float) -> Path:
    from clipmaker.testing.sample import make_video

    cache = BENCH_DIR / ".cache" / "codecs"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{encoder}-{duration_s:g}s-640x360.{ext}"
    if not path.exists():
        make_video(
            path,
            duration_s=duration_s,
            fps=FPS,
            gop_s=GOP_S,
            size=(640, 360),
            video_codec=encoder,
            audio_codec="libopus" if ext == "webm" else "aac",
        )
    return path


def run(ctx: Context) -> None:
    duration, start, end = (24.0, 5.3, 15.7) if ctx.quick else (60.0, 10.3, 40.7)
    out = ctx.workdir / "codecs"
    out.mkdir(parents=True, exist_ok=True)
    for name, encoder, ext, reencode in CODECS:
        source = _source(encoder, ext, duration)
        log(f"  {name}: {source.name}, clip {start:g}-{end:g} s")
        ctx.add(_row(name, ext, source, out / encoder, reencode, duration, start, end))


def _row(
    name: str,
    ext: str,
    source: Path,
    out: Path,
    reencode: list[str],
    duration: float,
    start: float,
    end: float,
) -> Row:
    from clipmaker.media import cut

    def smart():
        return cut(source, out.with_suffix(".mp4"), start, end, accuracy="frame")

    def full() -> None:
        dest = out.with_name(out.name + "-full.mp4")
        a, b = f"{start:g}", f"{end:g}"
        ffmpeg("-ss", a, "-to", b, "-i", str(source), *reencode, "-c:a", "aac", str(dest))

    smart_s, _, result = median_time(smart, 1)
    full_s, _, _ = median_time(full, 1)
    max_frames = round(2 * GOP_S * FPS)
    frames = result.frames_reencoded + result.frames_copied
    return Row(
        f"smart cut, {name} {ext.upper()} ({end - start:g} s clip of {duration:g} s)",
        f"{smart_s:.2f} s, mode={result.mode}, {result.frames_reencoded}/{frames} "
        "frames re-encoded",
        f"ffmpeg full re-encode, same codec: {full_s:.2f} s, {frames}/{frames}",
        full_s / smart_s,
        target=f"smart, <= {max_frames} frames re-encoded",
        met=result.mode == "smart" and result.frames_reencoded <= max_frames,
    )
