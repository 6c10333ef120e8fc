"""1. Bytes read from the source for one clip.

A 30 s clip out of the middle of a 10-minute 640x360 25 fps source (2 s GOPs) served by a
loopback HTTP server with Range support. Bytes are what the server actually wrote to its sockets
(``MediaServer.bytes_sent``), so read-ahead that the client threw away counts too.

- baseline: ``yt-dlp -o out.mp4 URL``, what users run to get the video before cutting it.
- clipmaker: ``clipmaker.media.cut(URL, ...)`` (frame accuracy, and keyframe accuracy for
  reference), and a whole service job over HTTP (yt-dlp resolve + cut), measured later, once
  the service is up for the throughput benchmark (``service_part``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import Context, Row, log, mb, ratio_at_least, sample_video

TARGET = 10.0
REPEAT = 3


@dataclass
class _State:
    url: str
    start: float
    end: float
    baseline_bytes: int
    label: str


_state: _State | None = None


def run(ctx: Context) -> None:
    global _state
    duration, clip_s = (160.0, 10.0) if ctx.quick else (600.0, 30.0)
    source = sample_video("bytes", duration_s=duration, size=(640, 360), fps=25, crf=28)
    size = source.stat().st_size
    url = ctx.url(source)
    start = duration / 2 + 0.52  # inside a GOP, not on a keyframe
    end = start + clip_s
    label = f"{clip_s:g} s clip of {duration / 60:.3g}-min 360p source"
    log(f"  source {mb(size)}, {url}; clip {start:g}-{end:g} s")
    server = ctx.server

    # baseline: download the whole thing, as users do
    out_dir = ctx.workdir / "bytes-ytdlp"
    out_dir.mkdir(parents=True, exist_ok=True)
    yt_dlp = Path(sys.executable).with_name("yt-dlp")
    server.reset_counts()
    started = time.perf_counter()
    subprocess.run(
        [str(yt_dlp), "--quiet", "--no-warnings", "-o", "out.mp4", url],
        cwd=out_dir,
        check=True,
    )
    baseline_s = time.perf_counter() - started
    baseline = server.bytes_sent
    downloaded = (out_dir / "out.mp4").stat().st_size
    (out_dir / "out.mp4").unlink()
    log(
        f"  yt-dlp: {mb(baseline)} sent by the server ({mb(downloaded)} file) in {baseline_s:.1f} s"
    )

    from clipmaker.media import cut

    for accuracy in ("frame", "keyframe"):
        counts = []
        for _ in range(REPEAT):  # what a client reads ahead can vary with timing: median
            server.reset_counts()
            started = time.perf_counter()
            dest = ctx.workdir / f"bytes-{accuracy}.mp4"
            result = cut(url, dest, start, end, accuracy=accuracy)
            elapsed = time.perf_counter() - started
            counts.append((server.bytes_sent, len(server.requests)))
            log(
                f"  cut({accuracy}): {mb(counts[-1][0])} in {counts[-1][1]} requests, "
                f"{elapsed:.1f} s, mode {result.mode}, clip {result.duration:.2f} s"
            )
        sent, requests = sorted(counts)[len(counts) // 2]
        ratio = baseline / sent if sent else None
        ctx.add(
            Row(
                f"bytes read, {label}: cut(accuracy={accuracy})",
                f"{mb(sent)} ({requests} requests, median of {REPEAT})",
                f"yt-dlp -o out.mp4 URL: {mb(baseline)}",
                ratio,
                target=f">= {TARGET:g}x fewer" if accuracy == "frame" else "-",
                met=ratio_at_least(ratio, TARGET) if accuracy == "frame" else None,
            )
        )
    _state = _State(url, start, end, baseline, label)


def service_part(ctx: Context) -> None:
    """The same clip as a service job (resolve with yt-dlp, cut, store), through the HTTP API."""
    from clipmaker.client import Client

    if _state is None:
        return
    service = ctx.service
    server = ctx.server
    with Client(service.base_url, timeout=120) as client:
        server.reset_counts()
        started = time.perf_counter()
        job = client.submit(url=_state.url, start=_state.start, end=_state.end)
        result = client.wait_result(job.id, progress=False, timeout=600)
        elapsed = time.perf_counter() - started
        sent = server.bytes_sent
        requests = len(server.requests)
    log(f"  service job: {mb(sent)} in {elapsed:.1f} s, clip {result.video.duration:.2f} s")
    ratio = _state.baseline_bytes / sent if sent else None
    ctx.add(
        Row(
            f"bytes read, {_state.label}: service job (HTTP API)",
            f"{mb(sent)} ({requests} requests)",
            f"yt-dlp -o out.mp4 URL: {mb(_state.baseline_bytes)}",
            ratio,
            target=f">= {TARGET:g}x fewer",
            met=ratio_at_least(ratio, TARGET),
        )
    )
