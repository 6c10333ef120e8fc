"""One clip job, start to finish: fetch, cut, transcribe, store.

A plain function over the lower layers (media, asr, storage), so it runs the same inside a Ray
worker actor, in a notebook or in a test. Whatever it stores goes under a prefix of its own
attempt (``jobs/<id>/<attempt>/``): a stale attempt that was taken over can clean up after
itself without touching the result of the attempt that won.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipmaker.asr import Transcript, build_cues, load_audio, to_srt, to_vtt
from clipmaker.errors import LIVE_SOURCE, UPLOAD_NOT_FOUND, ClipError
from clipmaker.jobs.models import (
    ClipRequest,
    JobStage,
    JobStatus,
    MediaReport,
    StoredResult,
    Timings,
)
from clipmaker.media import ByteCounter, ResolvedSource, SourceOpener, cut, resolve
from clipmaker.media.youtube import MESSAGES, YoutubeOptions, pot_provider_plugin_dir
from clipmaker.net import AddressPolicy
from clipmaker.net.bounds import TransferGuard
from clipmaker.services import Services
from clipmaker.settings import Settings

Transcribe = Callable[[np.ndarray, str | None], Transcript]
Report = Callable[[JobStage, float], None]

CONTENT_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}
# A cached extraction whose media URLs expire sooner than this is resolved again before use:
# a clip of a long source can take minutes to read.
EXPIRY_MARGIN_S = 600.0
# Statuses that mean "this media URL no longer works" (googlevideo answers 403 once a URL
# expired, some CDNs 410): resolve the source again, bypassing the cache, and retry once.
REFUSED = frozenset({403, 410})
WRITERS = {"srt": to_srt, "vtt": to_vtt}


@contextmanager
def timed(spent: dict[str, float], name: str) -> Iterator[None]:
    """Record the seconds a stage took under ``name``, even when it fails."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent[name] = round(time.perf_counter() - started, 3)


def result_prefix(job_id: str, attempt: int) -> str:
    return f"jobs/{job_id}/{attempt}/"


def stage_weights(with_subtitles: bool) -> dict[JobStage, tuple[float, float]]:
    """The slice of overall progress (0..1) each stage covers."""
    if with_subtitles:
        return {
            JobStage.fetching: (0.0, 0.05),
            JobStage.cutting: (0.05, 0.6),
            JobStage.transcribing: (0.6, 0.92),
            JobStage.storing: (0.92, 1.0),
        }
    return {
        JobStage.fetching: (0.0, 0.05),
        JobStage.cutting: (0.05, 0.92),
        JobStage.storing: (0.92, 1.0),
    }


def reuse_result(
    services: Services, request: ClipRequest
) -> tuple[StoredResult, MediaReport] | None:
    """The result of an identical earlier job, if it is still stored."""
    job_id = services.results.lookup(request)
    earlier = services.jobs.get(job_id) if job_id else None
    if earlier is None or earlier.status != JobStatus.succeeded or earlier.result is None:
        return None
    result = StoredResult.model_validate(earlier.result)
    keys = [result.video_key, *result.subtitle_keys.values()]
    if any(services.store.size(key) is None for key in keys):
        services.results.forget(request)  # its files are gone: do the work again
        return None
    origin = MediaReport.model_validate(earlier.media or {})
    return result, MediaReport(fetch_path="cache", cached_from=origin.cached_from or earlier.id)


@dataclass
class SourceInputs:
    """Openers for the job's inputs (separate audio when the site serves DASH), all counting
    their network bytes into one counter."""

    video: SourceOpener
    audio: SourceOpener | None
    counter: ByteCounter
    note: str | None = None  # why the resolution took a less preferred path (YouTube)

    def refused(self) -> bool:
        """Whether the source answered a read with a status that says "resolve again"."""
        openers = (self.video, self.audio)
        return any(s in REFUSED for o in openers if o is not None for s in o.error_statuses)

    @property
    def fetch_path(self) -> str:
        paths = {opener.fetch_path for opener in (self.video, self.audio) if opener is not None}
        return "full" if "full" in paths else next(iter(paths - {None}), "range")

    def close(self) -> None:
        for opener in (self.video, self.audio):
            if opener is not None:
                opener.close()


def youtube_options(settings: Settings) -> YoutubeOptions:
    cookies = settings.youtube_cookies_file
    return YoutubeOptions(
        player_clients=settings.youtube_player_clients,
        pot_provider_url=settings.youtube_pot_provider_url,
        cookies_file=str(cookies) if cookies is not None else None,
        proxy=settings.ytdlp_proxy,
    )


def plugin_dirs(settings: Settings) -> tuple[str, ...]:
    """The deployment's plugin folders, plus the installed PO-token provider's when a
    provider URL is set (it is a yt-dlp plugin, and no plugin loads unless named)."""
    dirs = tuple(settings.ytdlp_plugin_dirs)
    if settings.youtube_pot_provider_url:
        provider = pot_provider_plugin_dir()
        if provider is not None and provider not in dirs:
            dirs += (provider,)
    return dirs


def source_inputs(
    services: Services,
    request: ClipRequest,
    scratch: Path,
    guard: TransferGuard | None = None,
    *,
    refresh: bool = False,
) -> SourceInputs:
    """Resolve the source (through the extraction cache) into openers for its inputs.

    A user's URL is fetched (by yt-dlp and by our reader, every hop) only at addresses the
    deployment's ``AddressPolicy`` allows; an upload in S3 is the deployment's own endpoint,
    which may well be private. ``guard`` bounds every read (cancel, deadline, minimum rate).
    ``refresh`` resolves again whatever the cache holds; a cached resolution whose URLs
    expire within ``EXPIRY_MARGIN_S`` is refreshed anyway.
    """
    counter = ByteCounter()
    settings = services.settings
    if request.source.url is not None:
        policy = AddressPolicy.from_settings(settings)

        def extract(url: str) -> ResolvedSource:
            return resolve(
                url,
                max_height=settings.max_height,
                policy=policy,
                guard=guard,
                extractors=settings.ytdlp_extractors or None,
                plugin_dirs=plugin_dirs(settings),
                youtube_options=youtube_options(settings),
            )

        url = str(request.source.url)
        resolved, cached = services.extractions.resolve(url, extract, refresh=refresh)
        expires = resolved.expires_at
        if cached and expires is not None and expires < time.time() + EXPIRY_MARGIN_S:
            resolved, _ = services.extractions.resolve(url, extract, refresh=True)
        if resolved.is_live:
            raise ClipError(LIVE_SOURCE, MESSAGES[LIVE_SOURCE])
        video = SourceOpener(
            resolved.media_url,
            headers=resolved.http_headers,
            counter=counter,
            scratch_dir=scratch,
            policy=policy,
            guard=guard,
            proxy=settings.ytdlp_proxy,
        )
        audio = None
        if resolved.audio_url:
            audio = SourceOpener(
                resolved.audio_url,
                headers=resolved.audio_http_headers,
                counter=counter,
                scratch_dir=scratch,
                policy=policy,
                guard=guard,
                proxy=settings.ytdlp_proxy,
            )
        return SourceInputs(video, audio, counter, resolved.note)
    upload_id = request.source.upload_id
    assert upload_id is not None
    upload = services.jobs.get_upload(upload_id)
    if upload is None:
        raise ClipError(UPLOAD_NOT_FOUND, f"the upload {upload_id!r} no longer exists")
    if services.store.is_local:
        location = str(services.store.local_path(upload.key))
    else:  # read the upload from S3 by range, like any other source
        location = services.store.signed_url(upload.key, 6 * 3600).url
    opener = SourceOpener(
        location,
        counter=counter,
        scratch_dir=scratch,
        policy=AddressPolicy.unrestricted(),  # our own storage, not a user's address
        guard=guard,
    )
    return SourceInputs(opener, None, counter)


def run_clip_job(
    services: Services,
    job_id: str,
    attempt: int,
    request: ClipRequest,
    *,
    transcribe: Transcribe,
    report: Report,
    log: logging.LoggerAdapter,
    guard: TransferGuard | None = None,
) -> tuple[StoredResult, Timings, MediaReport]:
    """Run every stage; on any exception nothing of this attempt stays in storage or scratch.

    ``guard`` bounds the job's network reads and is checked between stages (cancellation,
    the job's deadline); ``report`` may raise to stop the job between progress steps.
    """
    reused = reuse_result(services, request)
    if reused is not None:
        log.info("identical to job %s: reusing its result", reused[1].cached_from)
        return reused[0], Timings(), reused[1]
    scratch = services.settings.scratch_dir / f"{job_id}-{attempt}"
    scratch.mkdir(parents=True, exist_ok=True)
    prefix = result_prefix(job_id, attempt)
    spent: dict[str, float] = {}
    formats = request.subtitle_formats
    try:
        notes: list[str] = []
        for retry in (False, True):
            with timed(spent, "fetch_s"):
                report(JobStage.fetching, 0.0)
                inputs = source_inputs(services, request, scratch, guard, refresh=retry)
            log.info(
                "source resolved; cutting %.3f-%.3f s (%s)",
                request.start,
                request.end,
                request.accuracy,
            )
            try:
                with timed(spent, "cut_s"):
                    report(JobStage.cutting, 0.0)
                    clip = cut(
                        inputs.video,
                        scratch / "clip.mp4",
                        request.start,
                        request.end,
                        accuracy=request.accuracy,
                        audio=inputs.audio,
                        progress=lambda fraction: report(JobStage.cutting, fraction),
                    )
            except ClipError:
                # An expired media URL (a stale extraction from the cache, or a long queue):
                # resolve again, bypassing the cache, and try once more.
                if retry or request.source.url is None or not inputs.refused():
                    raise
                log.info("the source refused its media URLs (expired?); resolving again")
                notes.append("media URLs refused (expired); the source was resolved again")
                continue
            finally:
                inputs.close()
            break
        notes[:0] = [inputs.note] if inputs.note else []
        log.info(
            "cut %.3f s (%s, %s fetch, %d bytes read)",
            clip.duration,
            clip.mode,
            inputs.fetch_path,
            inputs.counter.total,
        )

        subtitle_files: dict[str, Path] = {}
        if guard is not None:
            guard.check()
        if formats:
            with timed(spent, "asr_s"):
                report(JobStage.transcribing, 0.0)
                transcript = transcribe(load_audio(clip.path), request.language)
                cues = build_cues(transcript.words)
                for fmt in formats:
                    path = scratch / f"clip.{fmt}"
                    path.write_text(WRITERS[fmt](cues), encoding="utf-8")
                    subtitle_files[fmt] = path
            log.info(
                "transcribed: %d words, %d cues (%s)",
                len(transcript.words),
                len(cues),
                transcript.language,
            )

        with timed(spent, "store_s"):
            report(JobStage.storing, 0.0)
            video_key = prefix + "clip.mp4"
            size = services.store.put_file(clip.path, video_key, content_type="video/mp4")
            subtitle_keys = {}
            for fmt, path in subtitle_files.items():
                key = prefix + f"clip.{fmt}"
                services.store.put_file(path, key, content_type=CONTENT_TYPES[fmt])
                subtitle_keys[fmt] = key
        result = StoredResult(
            video_key=video_key,
            video_bytes=size,
            video_duration=clip.duration,
            subtitle_keys=subtitle_keys,
        )
        media = MediaReport(
            fetch_path=inputs.fetch_path,
            cut_mode=clip.mode,
            bytes_read=inputs.counter.total,
            frames_reencoded=clip.frames_reencoded,
            frames_copied=clip.frames_copied,
            note="; ".join([*notes, *([clip.note] if clip.note else [])]) or None,
        )
        return result, Timings(**spent), media
    except BaseException:
        discard_attempt(services, job_id, attempt)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def discard_attempt(services: Services, job_id: str, attempt: int) -> None:
    """Remove whatever an attempt stored (it failed, was cancelled or was taken over)."""
    try:
        services.store.delete_prefix(result_prefix(job_id, attempt))
    except Exception:  # storage down: the files are unreferenced and harmless
        logging.getLogger("clipmaker.worker").warning(
            "job %s attempt %d: could not remove stored files", job_id, attempt, exc_info=True
        )
