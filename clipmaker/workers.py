"""Ray actors that do the work, and the loop that pulls it from the queue.

Media workers pull jobs from the Redis stream and run the pipeline; they hand the clip's audio
to ASR workers, which hold a Whisper model each (on a GPU when the cluster has one). Resource
tags (``num_cpus``, ``num_gpus`` and custom ones from settings) let a cluster's node types
decide where each kind of work lands.

Both pools are detached named actors: they outlive the Serve replica that created them, and
Ray restarts a dead one (``max_restarts=-1``). Delivery is at-least-once: a job whose worker died
is reclaimed from the stream once its lease lapses and claimed again under a new attempt number;
every write is fenced by (job id, attempt), so the stale attempt can never overwrite the new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
import redis
from ray.util import metrics

from clipmaker.asr import Transcriber, Transcript
from clipmaker.deferred import DeferredJobs, backoff_s
from clipmaker.errors import INTERNAL_ERROR, SOURCE_RATE_LIMITED, ClipError, JobCancelled
from clipmaker.jobs.models import JobStage, as_utc, utcnow
from clipmaker.jobs.repository import Claim
from clipmaker.logs import configure_logging, job_log
from clipmaker.net.bounds import TransferGuard
from clipmaker.pipeline import discard_attempt, run_clip_job, stage_weights
from clipmaker.queue import Delivery
from clipmaker.redact import client_message
from clipmaker.scratch import sweep_scratch
from clipmaker.services import Services
from clipmaker.settings import Settings
from clipmaker.webhooks import WebhookSenders

NAMESPACE = "clipmaker"
log = logging.getLogger("clipmaker.worker")


def media_worker_name(settings: Settings, index: int) -> str:
    return f"{settings.instance}-media-{index}"


def asr_worker_name(settings: Settings, index: int) -> str:
    return f"{settings.instance}-asr-{index}"


def asr_uses_gpu(settings: Settings) -> bool:
    if settings.asr_use_gpu == "auto":
        return ray.cluster_resources().get("GPU", 0) > 0
    return settings.asr_use_gpu == "yes"


class _Progress:
    """Turns (stage, fraction) reports into job progress, and stops a job that was cancelled
    or taken over. Stage changes go to SQL (fenced); fine-grained progress to Redis only."""

    def __init__(
        self,
        services: Services,
        claim: Claim,
        fenced: threading.Event,
        guard: TransferGuard | None = None,
    ) -> None:
        self.services = services
        self.claim = claim
        self.fenced = fenced
        self.guard = guard
        self.weights = stage_weights(bool(claim.request.subtitle_formats))
        self.stage: JobStage | None = None
        self.last_write = 0.0

    def __call__(self, stage: JobStage, fraction: float) -> None:
        low, high = self.weights[stage]
        overall = low + (high - low) * min(max(fraction, 0.0), 1.0)
        job_id, attempt = self.claim.job_id, self.claim.attempt
        stage_changed = stage != self.stage
        if stage_changed:
            self.stage = stage
            if not self.services.jobs.set_stage(job_id, attempt, stage, overall):
                self.fenced.set()
        now = time.monotonic()
        # Every stage change reaches the live event log, however soon after the last write.
        if stage_changed or now - self.last_write >= 0.5 or fraction >= 1.0:
            self.last_write = now
            try:
                self.services.index.set_progress(job_id, stage, overall, attempt=attempt)
                if self.services.index.is_cancelled(job_id):
                    self.fenced.set()
            except redis.RedisError:
                # Live progress is a nicety and a cancel is also seen by the fenced SQL
                # heartbeat: a Redis outage must not stop the work.
                log.warning("job %s: Redis unavailable for progress", job_id)
        if self.fenced.is_set():
            raise JobCancelled(job_id)
        if self.guard is not None:
            self.guard.check()  # the job's deadline, or a stop its reads already met


class _StopCheck:
    """The guard's ``stop``: called by the job's network reads between ticks (about twice a
    second while a read waits), it raises ``JobCancelled`` once the job was cancelled or
    taken over, so a read stalled on a silent source ends, and frees its slot, at once. Asks
    Redis at most every ``every_s``; a Redis blip is not a cancellation."""

    def __init__(
        self, services: Services, job_id: str, fenced: threading.Event, every_s: float = 0.5
    ) -> None:
        self.services, self.job_id, self.fenced, self.every_s = services, job_id, fenced, every_s
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if not self.fenced.is_set():
            with self._lock:
                now = time.monotonic()
                due, self._last = now - self._last >= self.every_s, now
            if due:
                try:
                    if self.services.index.is_cancelled(self.job_id):
                        self.fenced.set()
                except redis.RedisError:
                    pass
        if self.fenced.is_set():
            raise JobCancelled(self.job_id)


class _Lease:
    """Keeps a claim alive while the job runs: heartbeats the SQL row and touches the stream
    entry, so neither the sweeper nor another worker takes a job that is making progress."""

    def __init__(self, services: Services, claim: Claim, delivery: Delivery, consumer: str):
        self.services, self.claim, self.delivery, self.consumer = (
            services,
            claim,
            delivery,
            consumer,
        )
        self.fenced = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease")

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.services.settings.lease_s / 3
        while not self._stop.wait(interval):
            try:
                if not self.services.jobs.heartbeat(self.claim.job_id, self.claim.attempt):
                    self.fenced.set()
                self.services.queue.touch(self.delivery, self.consumer)
            except Exception:  # a blip: the next beat may get through before the lease lapses
                log.warning("job %s: heartbeat failed", self.claim.job_id, exc_info=True)


@dataclass
class _Metrics:
    finished: metrics.Counter
    seconds: metrics.Histogram
    queue_depth: metrics.Gauge

    @classmethod
    def create(cls) -> _Metrics:
        return cls(
            finished=metrics.Counter(
                "clipmaker_jobs_finished",
                description="Clip jobs finished, by final status.",
                tag_keys=("status",),
            ),
            seconds=metrics.Histogram(
                "clipmaker_job_seconds",
                description="Wall time of a clip job from claim to result.",
                boundaries=[1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
            ),
            queue_depth=metrics.Gauge(
                "clipmaker_queue_depth", description="Entries waiting in the job stream."
            ),
        )


@ray.remote(max_restarts=-1)
class MediaWorker:
    """Pulls clip jobs and runs them; ``jobs_per_media_worker`` at a time."""

    def __init__(self, settings: Settings, index: int) -> None:
        configure_logging()
        self.settings = settings
        self.name = media_worker_name(settings, index)
        self.services = Services.connect(settings)
        self.metrics = _Metrics.create()
        self.deferred = DeferredJobs(self.services.redis, settings.instance)
        self._asr_next = 0
        self._stop = threading.Event()
        self._busy: dict[str, str] = {}
        # The pull loops start here, not in a method call, so that a restarted actor resumes
        # pulling on its own. Consumer names are stable across restarts of this actor.
        self._threads = [
            threading.Thread(target=self._pull, args=(f"{self.name}-{slot}",), daemon=True)
            for slot in range(settings.jobs_per_media_worker)
        ]
        self._threads.append(threading.Thread(target=self._sweep, daemon=True, name="sweeper"))
        # Webhooks go out from threads of their own: a slow receiver never holds up a job.
        # (Made before the pull loops start: a job that ends wakes them.)
        self.webhooks = WebhookSenders(settings, self.services.jobs).start()
        for thread in self._threads:
            thread.start()
        log.info(
            "%s pulling with %d slots (pid %d)", self.name, len(self._threads) - 1, os.getpid()
        )

    def ping(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "busy": dict(self._busy),
            "pid": os.getpid(),
            "node": ray.get_runtime_context().get_node_id(),
        }

    def stop(self) -> None:
        self._stop.set()
        self.webhooks.stop()

    # --- the pull loop ---------------------------------------------------------------------
    def _pull(self, consumer: str) -> None:
        reclaim_ms = int(self.settings.lease_s * 1000)
        outage = 0  # consecutive Redis failures: the back-off grows with them
        while not self._stop.is_set():
            try:
                delivery = self.services.queue.receive(
                    consumer, block_ms=1000, reclaim_idle_ms=reclaim_ms
                )
            except redis.RedisError:
                outage += 1
                log.warning("%s: Redis unavailable; retrying (%d)", consumer, outage)
                self._stop.wait(_backoff(outage))
                continue
            outage = 0
            if delivery is not None:
                try:
                    self._handle(delivery, consumer)
                except redis.RedisError:
                    # The entry stays pending; once Redis is back it is redelivered (after the
                    # lease) and settled: the job's SQL row says what is left to do.
                    log.warning("%s: job %s: Redis unavailable", consumer, delivery.job_id)
                    self._stop.wait(1.0)
                except Exception:  # never let one job kill the loop; the lease brings it back
                    log.exception("%s: job %s: unexpected error", consumer, delivery.job_id)
                    self._stop.wait(1.0)

    def _handle(self, delivery: Delivery, consumer: str) -> None:
        jobs = self.services.jobs
        claim = jobs.claim(
            delivery.job_id,
            worker=consumer,
            lease_s=self.settings.lease_s,
            max_attempts=self.settings.max_attempts,
        )
        if claim is None:
            job = jobs.get(delivery.job_id)
            if job is not None and job.status == "running":
                return  # a live worker holds it; if that one dies this entry comes back
            self.services.queue.ack(delivery)
            return
        self._busy[consumer] = claim.job_id
        try:
            self._run(claim, delivery, consumer)
        finally:
            self._busy.pop(consumer, None)
            self.webhooks.wake()  # the job may have ended: its webhook is due now
        self.services.queue.ack(delivery)

    def _run(self, claim: Claim, delivery: Delivery, consumer: str) -> None:
        jobs = self.services.jobs
        jlog = job_log(claim.job_id, claim.attempt)
        jlog.info("claimed by %s", consumer)
        queued_s = (utcnow() - as_utc(claim.created_at)).total_seconds()
        started = time.perf_counter()
        with _Lease(self.services, claim, delivery, consumer) as lease:
            guard = TransferGuard.within(
                self.settings.job_deadline_s,
                min_bytes_per_s=self.settings.min_source_bytes_per_s,
                window_s=self.settings.source_rate_window_s,
                stop=_StopCheck(self.services, claim.job_id, lease.fenced),
            )
            report = _Progress(self.services, claim, lease.fenced, guard)
            try:
                result, timings, media = run_clip_job(
                    self.services,
                    claim.job_id,
                    claim.attempt,
                    claim.request,
                    transcribe=lambda audio, language: self._transcribe(audio, language, guard),
                    report=report,
                    log=jlog,
                    guard=guard,
                )
            except JobCancelled:
                jlog.info("stopped: cancelled or taken over")
                self.metrics.finished.inc(tags={"status": "cancelled"})
                return
            except ClipError as exc:
                if exc.code == SOURCE_RATE_LIMITED and self._defer(claim, jlog):
                    return
                jlog.info("failed: %s", exc)
                message = client_message(exc.message, self.settings)
                jobs.fail(claim.job_id, claim.attempt, exc.code, message)
                self.metrics.finished.inc(tags={"status": "failed"})
                return
            except redis.RedisError:
                # Redis failed under the job, not the job itself: hand it back to the queue
                # (a new attempt later, not counted against max_attempts), never fail it.
                jlog.warning("Redis unavailable; the job goes back to the queue", exc_info=True)
                jobs.release(claim.job_id, claim.attempt)
                self._stop.wait(_backoff(claim.attempt))
                # A fresh entry, since the caller acks this one. If Redis is still away both
                # fail, and this entry, still pending, is redelivered once it is back.
                with contextlib.suppress(redis.RedisError):
                    self.services.queue.enqueue(claim.job_id)
                return
            except Exception as exc:
                jlog.exception("failed unexpectedly")
                message = client_message(f"{type(exc).__name__}: {exc}", self.settings)
                jobs.fail(claim.job_id, claim.attempt, INTERNAL_ERROR, message)
                self.metrics.finished.inc(tags={"status": "failed"})
                return
        total = time.perf_counter() - started
        timings = timings.model_copy(
            update={"total_s": round(total, 3), "queued_s": round(queued_s, 3)}
        )
        if jobs.succeed(claim.job_id, claim.attempt, result, timings, media):
            with contextlib.suppress(redis.RedisError):  # SQL has it; live progress is a nicety
                self.services.index.set_progress(
                    claim.job_id, JobStage.storing, 1.0, attempt=claim.attempt
                )
            if media.fetch_path != "cache":
                self.services.results.remember(claim.request, claim.job_id)
            self.metrics.finished.inc(tags={"status": "succeeded"})
            self.metrics.seconds.observe(total)
            jlog.info("succeeded in %.2f s", total)
        elif media.fetch_path != "cache":  # cancelled or taken over while storing: not the result
            discard_attempt(self.services, claim.job_id, claim.attempt)
            jlog.info("finished but fenced out; discarded this attempt's files")

    def _defer(self, claim: Claim, jlog: logging.LoggerAdapter) -> bool:
        """Put a rate-limited job off (``clipmaker.deferred``); ``False`` once it has been put
        off ``rate_limit_retries`` times: then it fails."""
        count = self.deferred.bump(claim.job_id)
        if count > self.settings.rate_limit_retries:
            return False
        delay = backoff_s(count, self.settings.rate_limit_backoff_s)
        self.deferred.schedule(claim.job_id, delay)  # before the row is queued: see deferred
        if not self.services.jobs.release(claim.job_id, claim.attempt):
            self.deferred.cancel(claim.job_id)  # cancelled or taken over meanwhile
            return True
        jlog.info("source rate limited: back to the queue in %.0f s (deferral %d)", delay, count)
        return True

    def _transcribe(
        self, audio: np.ndarray, language: str | None, guard: TransferGuard | None = None
    ) -> Transcript:
        count = self.settings.asr_workers
        if count < 1:
            raise ClipError("asr_unavailable", "subtitles need an ASR worker; none is configured")
        self._asr_next = (self._asr_next + 1) % count
        worker = ray.get_actor(asr_worker_name(self.settings, self._asr_next), NAMESPACE)
        ref = worker.transcribe.remote(audio, language)
        while guard is not None:  # wait in ticks: a cancel or the deadline stops the wait
            ready, _ = ray.wait([ref], timeout=guard.tick_s)
            if ready:
                break
            guard.check()
        return ray.get(ref)

    # --- the sweeper -------------------------------------------------------------------------
    def _sweep(self) -> None:
        """Re-queue accepted jobs whose queue entry is gone (Redis was down at submit time, or
        restarted without persistence); one sweeper per interval across all workers. And
        remove scratch folders of attempts that are over (a killed worker leaves its folder
        behind): every worker, since scratch is on each worker's own machine."""
        interval = self.settings.lease_s
        lock = f"{self.settings.instance}:sweep-lock"
        self._sweep_scratch()  # at start: a restarted worker finds what its last life left
        while not self._stop.wait(interval):
            self._sweep_scratch()
            try:
                for job_id in self.deferred.pop_due():  # any worker may: the pop is atomic
                    self.services.queue.enqueue(job_id)
                self.metrics.queue_depth.set(self.services.queue.depth())
                if not self.services.redis.set(lock, self.name, nx=True, px=int(interval * 900)):
                    continue
                stale = self.services.jobs.stale(older_than_s=2 * interval)
                if not stale:
                    continue
                present = self.services.queue.queued_job_ids() | self.deferred.waiting()
                for job_id in stale:
                    if job_id not in present:
                        self.services.queue.enqueue(job_id)
                        log.warning("job %s: queue entry missing; re-queued", job_id)
            except Exception:
                log.warning("sweep failed", exc_info=True)

    def _sweep_scratch(self) -> None:
        try:
            removed = sweep_scratch(self.services, self.settings.scratch_dir, self.settings.lease_s)
        except Exception:
            log.warning("scratch sweep failed", exc_info=True)
            return
        if removed:
            log.info("removed %d orphaned scratch folders", removed)


def _backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 0.5, 1, 2, 4, then 5."""
    return min(0.5 * 2 ** max(failures - 1, 0), 5.0)


@ray.remote(max_restarts=-1, max_task_retries=3)
class AsrWorker:
    """Holds one Whisper model for its lifetime and transcribes clip audio."""

    def __init__(self, settings: Settings, device: str) -> None:
        configure_logging()
        self.transcriber = Transcriber(
            settings.whisper_model, device=device, cpu_threads=settings.whisper_cpu_threads
        )
        log.info(
            "ASR worker ready: model %s on %s (%s)",
            settings.whisper_model,
            self.transcriber.device,
            self.transcriber.compute_type,
        )

    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        return self.transcriber.transcribe(audio, language=language)

    def ping(self) -> dict[str, str]:
        return {
            "device": self.transcriber.device,
            "compute_type": self.transcriber.compute_type,
            "node": ray.get_runtime_context().get_node_id(),
        }


def media_actor_options(settings: Settings, index: int) -> dict[str, Any]:
    """Ray options of a media worker: one CPU plus the custom tags that pin it to a node type."""
    return {
        "name": media_worker_name(settings, index),
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 1,
        "resources": settings.media_worker_resources or None,
    }


def asr_actor_options(settings: Settings, index: int, *, gpu: bool) -> dict[str, Any]:
    """Ray options of an ASR worker: a whole GPU when it gets one, else one CPU."""
    return {
        "name": asr_worker_name(settings, index),
        "namespace": NAMESPACE,
        "lifetime": "detached",
        "get_if_exists": True,
        "num_cpus": 1,
        "num_gpus": 1 if gpu else 0,
        "resources": settings.asr_worker_resources or None,
    }


def ensure_worker_pool(settings: Settings) -> None:
    """Create the pools if they are not running (idempotent: named, get-if-exists actors)."""
    for index in range(settings.media_workers):
        MediaWorker.options(**media_actor_options(settings, index)).remote(settings, index)
    gpu = asr_uses_gpu(settings)
    device = "cuda" if gpu else "cpu"  # float16 on CUDA, int8 on CPU (the Transcriber's default)
    for index in range(settings.asr_workers):
        options = asr_actor_options(settings, index, gpu=gpu)
        AsrWorker.options(**options).remote(settings, device)


def worker_names(settings: Settings) -> list[str]:
    return [media_worker_name(settings, i) for i in range(settings.media_workers)] + [
        asr_worker_name(settings, i) for i in range(settings.asr_workers)
    ]


def check_workers(settings: Settings, timeout_s: float = 10.0) -> str:
    """Readiness: every worker answers a ping. Raises naming the first that does not."""
    answers = []
    for name in worker_names(settings):
        try:
            actor = ray.get_actor(name, NAMESPACE)
            answers.append(ray.get(actor.ping.remote(), timeout=timeout_s))
        except Exception as exc:
            raise RuntimeError(f"worker {name} is not answering ({type(exc).__name__})") from exc
    asr = [a for a in answers if "device" in a]
    devices = ",".join(sorted({a["device"] for a in asr})) or "-"
    return f"{settings.media_workers} media, {settings.asr_workers} asr ({devices})"


def shutdown_worker_pool(settings: Settings) -> None:
    """Stop every worker of this instance for good (for tests and `clipmaker serve` exit)."""
    for name in worker_names(settings):
        with contextlib.suppress(ValueError):  # not running
            ray.kill(ray.get_actor(name, NAMESPACE), no_restart=True)
