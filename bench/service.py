"""clipmaker as it is deployed on one machine, started in this process for the benchmarks.

``start_service`` brings up a local Ray cluster, the Serve ingress on a free port, an embedded
Redis, SQLite and local result storage in a scratch data dir, and the worker pools. The pool
sizes are tuned for this machine's cores (see ``pool_settings``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Context, free_port, log


def pool_settings() -> dict[str, Any]:
    """Worker pools for the cores we have.

    Media work (decode + x264 encode) is CPU-bound and already multi-threaded, ASR is CPU-bound
    too: with 2 cores, one media worker running two jobs at once (one cutting while the other
    waits on the network or on ASR) next to one ASR worker keeps both cores busy without
    oversubscribing them. More cores: one media worker per two cores.
    """
    cores = os.cpu_count() or 2
    pools: dict[str, Any] = {
        "media_workers": max(1, cores // 2),
        "jobs_per_media_worker": 2,
        "asr_workers": 1,
    }
    # for experiments: BENCH_POOLS='{"asr_workers": 2, "whisper_cpu_threads": 1}'
    pools.update(json.loads(os.environ.get("BENCH_POOLS") or "{}"))
    return pools


@dataclass
class Service:
    base_url: str
    settings: Any  # clipmaker.settings.Settings
    startup_s: float
    pools: dict[str, Any]


@contextlib.contextmanager
def running_service(ctx: Context) -> Iterator[Service]:
    import ray
    from ray import serve

    from clipmaker.cli import start_service
    from clipmaker.queue import stop_embedded_redis
    from clipmaker.settings import Settings
    from clipmaker.workers import shutdown_worker_pool

    # a short path: the embedded Redis listens on a unix socket inside the data dir
    data_dir = Path(tempfile.mkdtemp(prefix="cmbench-"))
    pools = pool_settings()
    settings = Settings(
        data_dir=data_dir,
        instance="bench",
        http_port=free_port(),
        asr_use_gpu="no",
        **pools,
    )
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its INFO lines clutter the table
    log(f"  starting clipmaker (Ray + Serve, {pools}) ...")
    started = time.perf_counter()
    start_service(settings, dashboard=False, quiet=True)
    startup_s = time.perf_counter() - started
    log(f"  clipmaker ready at {settings.resolved_public_base_url} in {startup_s:.1f} s")
    try:
        yield Service(settings.resolved_public_base_url, settings, startup_s, pools)
    finally:
        with contextlib.suppress(Exception):
            serve.delete(settings.instance)
        with contextlib.suppress(Exception):
            shutdown_worker_pool(settings)
        with contextlib.suppress(Exception):
            stop_embedded_redis(data_dir)
        with contextlib.suppress(Exception):
            ray.shutdown()
        shutil.rmtree(data_dir, ignore_errors=True)
