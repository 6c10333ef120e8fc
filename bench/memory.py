"""3. Peak memory of a clip job against the length of the source.

A frame-accurate 30 s clip from the middle of 2-, 10- and 30-minute sources (320x180 25 fps,
2 s GOPs, read over loopback HTTP), each in a fresh process (``bench/_memchild.py``), so the
peak RSS (the child's VmHWM) belongs to that one clip. Memory should not grow with the source: the
target is that the 30-minute source's peak is within 1.2x of the 2-minute one's. For scale,
each row also shows the FFmpeg CLI doing the same exact cut (``ffmpeg -ss -to -i URL -c:v
libx264 -c:a aac``), measured the same way; clipmaker's number includes the Python interpreter
and its imports (PyAV, NumPy), reported as "after imports".
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import BENCH_DIR, Context, Row, log, sample_video

FLAT_TARGET = 1.2


def _measure(ctx: Context, tool: str, url: str, start: float, end: float) -> dict:
    dest = ctx.workdir / f"memory-{tool}.mp4"
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH_DIR / "_memchild.py"),
            tool,
            url,
            f"{start:g}",
            f"{end:g}",
            str(dest),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    dest.unlink(missing_ok=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(ctx: Context) -> None:
    lengths_min = (2.0, 6.0, 12.0) if ctx.quick else (2.0, 10.0, 30.0)
    clip_s = 10.0 if ctx.quick else 30.0
    peaks: dict[float, float] = {}
    own: dict[float, float] = {}  # above the RSS after imports: what the cut itself took
    for minutes in lengths_min:
        duration = minutes * 60
        source = sample_video("memory", duration_s=duration, size=(320, 180), fps=25, crf=28)
        url = ctx.url(source)
        start = duration / 2 + 0.52
        ours = _measure(ctx, "clipmaker", url, start, start + clip_s)
        theirs = _measure(ctx, "ffmpeg", url, start, start + clip_s)
        peak, base = ours["peak_kb"] / 1024, theirs["peak_kb"] / 1024
        peaks[minutes] = peak
        own[minutes] = peak - ours["import_kb"] / 1024
        log(
            f"  {minutes:g} min: clipmaker peak {peak:.1f} MiB (after imports "
            f"{ours['import_kb'] / 1024:.1f} MiB, {ours['seconds']:.1f} s, mode {ours['mode']}); "
            f"ffmpeg peak {base:.1f} MiB ({theirs['seconds']:.1f} s)"
        )
        ctx.add(
            Row(
                f"peak RSS, {clip_s:g} s exact clip of {minutes:g}-min source (fresh process)",
                f"{peak:.1f} MiB ({ours['import_kb'] / 1024:.0f} after imports)",
                f"ffmpeg CLI same cut: {base:.1f} MiB",
                base / peak,
                target="- (reported)",
            )
        )
    small, large = lengths_min[0], lengths_min[-1]
    ctx.note(
        "memory: clipmaker's peak above its RSS after imports: "
        + ", ".join(f"{m:g} min {own[m]:.1f} MiB" for m in lengths_min)
    )
    growth = peaks[large] / peaks[small]
    ctx.add(
        Row(
            f"peak RSS growth, {large:g}-min vs {small:g}-min source",
            f"{peaks[large]:.1f} MiB",
            f"clipmaker, {small:g}-min source: {peaks[small]:.1f} MiB",
            growth,
            ratio_text=f"{growth:.2f}x (large/small)",
            target=f"<= {FLAT_TARGET:g}x (flat)",
            met=growth <= FLAT_TARGET,
        )
    )
