"""4. Jobs per minute for a mixed batch, on this machine.

50 jobs (10 in --quick): 5 sources of 2-3 minutes (426x240 25 fps, 2 s GOPs, espeak-ng speech
every 4.5 s) served over loopback HTTP, 10 clips of 10-20 s from each, all frame-accurate,
every other one with SRT subtitles.

- clipmaker: the service started in this process (``start_service``, embedded Redis/SQLite,
  local storage, pools from ``bench.service.pool_settings``); the jobs go in with one
  ``Client.submit_batch`` and the clock stops when ``wait_batch`` sees them all finished.
  Start-up (Ray, Serve, model load) is not counted: a service is up before jobs arrive.
- baseline: the same jobs one after another in a plain Python loop: yt-dlp (its Python API,
  so no interpreter start per job) downloads the whole source, ``ffmpeg -ss A -to B -i src
  -c:v libx264 -c:a aac`` cuts it exactly, and for subtitled jobs faster-whisper transcribes
  the clip with the same model and options as clipmaker's ASR worker (``Transcriber("bundled",
  device="cpu")``, loaded once, before the clock starts) and an SRT is written. The baseline
  runs before the service starts, so Ray's background processes do not slow it down.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from dataclasses import dataclass

from bench.common import Context, Row, ffmpeg, log, sample_video

TARGET = 2.0
FPS = 25


@dataclass(frozen=True)
class Job:
    url: str
    start: float
    end: float
    subtitles: str  # "srt" or "none"


def _jobs(ctx: Context) -> list[Job]:
    lengths = (60.0, 80.0) if ctx.quick else (120.0, 135.0, 150.0, 165.0, 180.0)
    clips_per_source = 5 if ctx.quick else 10
    jobs = []
    for i, length in enumerate(lengths):
        source = sample_video(
            f"jobs{i}", duration_s=length, size=(426, 240), fps=FPS, crf=28, speech=True, seed=i
        )
        url = ctx.url(source)
        step = (length - 25.0) / clips_per_source
        for j in range(clips_per_source):
            start = round(2.3 + j * step + 0.37 * i, 2)
            clip_s = 10.0 + 2 * ((i + j) % 6)  # 10, 12, ... 20 s
            subtitles = "srt" if (i * clips_per_source + j) % 2 == 0 else "none"
            jobs.append(Job(url, start, start + clip_s, subtitles))
    return jobs


def _baseline(ctx: Context, jobs: list[Job]) -> float:
    """Seconds for the plain loop."""
    import yt_dlp

    from clipmaker.asr import Transcriber, build_cues, load_audio, to_srt

    model = Transcriber("bundled", device="cpu")
    work = ctx.workdir / "loop"
    started = time.perf_counter()
    for n, job in enumerate(jobs):
        job_dir = work / str(n)
        job_dir.mkdir(parents=True)
        download = job_dir / "source.mp4"
        options = {"outtmpl": str(download), "quiet": True, "no_warnings": True, "noprogress": True}
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.download([job.url])
        clip = job_dir / "clip.mp4"
        ffmpeg(
            "-ss",
            f"{job.start:g}",
            "-to",
            f"{job.end:g}",
            "-i",
            str(download),
            "-c:v",
            "libx264",
            "-c:a",
            "aac",
            str(clip),
        )
        if job.subtitles == "srt":
            transcript = model.transcribe(load_audio(clip))
            (job_dir / "clip.srt").write_text(to_srt(build_cues(transcript.words)))
        shutil.rmtree(job_dir)
    return time.perf_counter() - started


def _clipmaker(ctx: Context, jobs: list[Job]) -> tuple[float, dict[str, int], list]:
    from clipmaker.client import Client, clip_request

    service = ctx.service
    requests = [
        clip_request(url=j.url, start=j.start, end=j.end, accuracy="frame", subtitles=j.subtitles)
        for j in jobs
    ]
    with Client(service.base_url, timeout=120) as client:
        started = time.perf_counter()
        batch = client.submit_batch(requests)
        done = client.wait_batch(batch.id, poll_s=0.25, progress=False, timeout=3600)
        elapsed = time.perf_counter() - started
        details = [client.job(item.job_id) for item in done.items if item.job_id]
        _check_clips(ctx, client, details)
    return elapsed, done.counts, details


def _check_clips(ctx: Context, client, details: list) -> None:
    """Are the clips right? Each opens on the source frame shown at ``start`` (every frame
    carries its index) and lasts ``end - start`` to within two frames. Not timed."""
    from clipmaker.testing.sample import first_frame_index_and_time

    checked, wrong = 0, []
    folder = ctx.workdir / "service-clips"
    folder.mkdir(parents=True, exist_ok=True)
    for job in details:
        if job.status != "succeeded":
            continue
        result = client.result(job.id)
        path = client.download(result.video.url, folder / f"{job.id}.mp4")
        start, end = float(job.request.start), float(job.request.end)
        expected = math.floor(start * FPS + 1e-6)
        try:
            index = first_frame_index_and_time(path)[0]
        except ValueError as exc:
            index = f"unreadable ({exc})"
        duration = result.video.duration or 0.0
        checked += 1
        if index != expected or abs(duration - (end - start)) > 2 / FPS:
            wrong.append(f"{start:g}-{end:g} s: frame {index} (want {expected}), {duration:.3f} s")
        path.unlink()
    ctx.note(
        f"throughput: clip check (first frame = source frame at start, duration within 2 "
        f"frames): {checked - len(wrong)}/{checked} right"
        + (f"; wrong: {'; '.join(wrong[:5])}" if wrong else "")
    )


def _stage_summary(details: list) -> str:
    stages: dict[str, list[float]] = {}
    for job in details:
        timings = job.timings.model_dump() if job.timings else {}
        for name, value in timings.items():
            if isinstance(value, int | float):
                stages.setdefault(name, []).append(float(value))
    return ", ".join(
        f"{name} median {statistics.median(v):.2f}" for name, v in sorted(stages.items())
    )


def run(ctx: Context) -> None:
    jobs = _jobs(ctx)
    n_sub = sum(j.subtitles == "srt" for j in jobs)
    n_sources = len({j.url for j in jobs})
    log(f"  {len(jobs)} jobs ({n_sub} with subtitles) over {n_sources} sources")

    log("  baseline: yt-dlp download + ffmpeg re-encode + faster-whisper, one job at a time ...")
    loop_s = _baseline(ctx, jobs)
    loop_rate = len(jobs) / loop_s * 60
    log(f"  baseline: {loop_s:.1f} s -> {loop_rate:.1f} jobs/min")

    log("  clipmaker: one batch through the HTTP API ...")
    service_s, counts, details = _clipmaker(ctx, jobs)
    succeeded = counts.get("succeeded", 0)
    rate = succeeded / service_s * 60
    log(f"  clipmaker: {service_s:.1f} s, {counts} -> {rate:.1f} jobs/min")
    summary = _stage_summary(details)
    if summary:
        ctx.note(f"throughput: clipmaker per-job stage seconds: {summary}")
    problems: dict[str, int] = {}
    for job in details:
        if job.status != "succeeded":
            what = (
                f"{job.status}: {job.error.code}: {job.error.message}" if job.error else job.status
            )
            problems[what] = problems.get(what, 0) + 1
    for what, count in problems.items():
        ctx.note(f"throughput: {count} clipmaker job(s) {what}")
    modes: dict[str, int] = {}
    for job in details:
        media = getattr(job, "media", None)
        mode = getattr(media, "cut_mode", None) if media else None
        if mode:
            modes[mode] = modes.get(mode, 0) + 1
    if modes:
        ctx.note(f"throughput: clipmaker cut modes {modes}")
    ctx.note(
        f"throughput: service start-up (not counted) {ctx.service.startup_s:.1f} s; "
        f"pools {ctx.service.pools}"
    )
    ratio = rate / loop_rate
    ctx.add(
        Row(
            f"jobs/min, {len(jobs)} mixed jobs ({n_sub} with subtitles), {n_sources} sources",
            f"{rate:.1f} jobs/min ({succeeded}/{len(jobs)} ok, {service_s:.0f} s)",
            f"sequential yt-dlp + ffmpeg + faster-whisper loop: {loop_rate:.1f} jobs/min "
            f"({loop_s:.0f} s)",
            ratio,
            target=f">= {TARGET:g}x",
            met=ratio >= TARGET and succeeded == len(jobs),
        )
    )
