"""Command line: ``clipmaker serve``, ``demo``, ``clip``, ``migrate`` and ``keys``."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer

from clipmaker.cli_keys import keys_cli
from clipmaker.client import Client
from clipmaker.logs import configure_logging
from clipmaker.queue import stop_embedded_redis
from clipmaker.settings import Settings

cli = typer.Typer(help="Clips from any video URL, cut on a Ray cluster.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")

DEMO_SENTENCES = (
    (1.0, "Welcome to clip maker."),
    (6.0, "This sentence is inside the clip."),
    (11.0, "Subtitles come from whisper."),
    (17.0, "This one is after the clip ends."),
)


def start_service(settings: Settings, *, dashboard: bool = True, quiet: bool = False) -> None:
    """Start (or join) Ray, serve the API with Ray Serve and wait until it is ready."""
    if settings.ray_address is None:
        # A cluster of one machine has no business listening beyond it: with this, Ray takes
        # 127.0.0.1 as the node's address (as it does on macOS and Windows), and its GCS,
        # raylet, object manager, worker and agent ports bind to loopback only. Read when Ray
        # is imported, and inherited by every process it starts.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray import serve

    from clipmaker.app import build_app

    if not ray.is_initialized():
        local = settings.ray_address is None
        ray.init(
            # "local": our own cluster, never one that happens to run on this machine.
            address=settings.ray_address or "local",
            include_dashboard=dashboard,
            dashboard_host="127.0.0.1",
            # The embedded cluster's own ports (GCS, raylet, object manager, workers) listen
            # on loopback only: nobody else has any business with them.
            _node_ip_address="127.0.0.1" if local else None,
            # a local cluster needs at least one CPU slot per worker actor
            num_cpus=max(os.cpu_count() or 1, settings.media_workers + settings.asr_workers)
            if local
            else None,
            logging_level="WARNING",
            log_to_driver=not quiet,  # the demo prints its own story; logs stay in the dashboard
        )
    serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
    serve.run(build_app(settings), name=settings.instance, route_prefix="/")
    wait_ready(settings.resolved_public_base_url)


def wait_ready(base_url: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=15)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"clipmaker did not become ready at {base_url}: {last}")


@contextlib.contextmanager
def serve_files(directory: Path) -> Iterator[str]:
    """A throwaway loopback HTTP server for the demo's sample video."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # FFmpeg hangs up mid-body whenever it seeks: not worth a traceback


def stop_service(settings: Settings) -> None:
    """Stop what ``start_service`` started: the app, the workers, a local Ray, the embedded
    Redis. In that order: nothing that could restart Redis is alive when it is stopped."""
    import ray
    from ray import serve

    from clipmaker.workers import shutdown_worker_pool

    with contextlib.suppress(Exception):
        serve.delete(settings.instance)
    with contextlib.suppress(Exception):
        shutdown_worker_pool(settings)
    if settings.ray_address is None:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
    if settings.redis_url is None:
        stop_embedded_redis(settings.data_dir)


@cli.command()
def serve() -> None:
    """Run the service (settings from CLIPMAKER_* variables) until interrupted (Ctrl-C or
    SIGTERM); then stop everything it started, the embedded Redis included."""
    configure_logging()
    settings = Settings()
    stopping = threading.Event()
    try:
        start_service(settings)
        # After ray.init, which installs a SIGTERM handler of its own (kill Ray's processes,
        # exit): ours stops things in order instead, the embedded Redis last.
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        base = settings.resolved_public_base_url
        typer.echo(
            f"clipmaker is serving at {base} (the page: {base}/, API docs: {base}/docs). "
            "Ctrl-C stops it."
        )
        with contextlib.suppress(KeyboardInterrupt):
            stopping.wait()
    finally:
        typer.echo("stopping clipmaker...")
        stop_service(settings)


@cli.command()
def demo(
    keep_serving: Annotated[bool, typer.Option(help="Keep the service up afterwards.")] = False,
) -> None:
    """Start everything on this machine, clip a sample video with subtitles, print the links."""
    from clipmaker.testing.sample import make_video

    configure_logging()
    settings = Settings()
    # the sample is served from 127.0.0.1, which sources may not use unless admitted
    networks = (*settings.allowed_source_networks, "127.0.0.1/32")
    settings = settings.with_overrides(allowed_source_networks=networks)
    typer.echo("Starting Ray, Ray Serve and the workers (embedded defaults)...")
    started = time.perf_counter()
    start_service(settings, quiet=True)
    base = settings.resolved_public_base_url
    typer.echo(
        f"Ready in {time.perf_counter() - started:.1f} s: the page at {base}/, "
        f"API docs at {base}/docs"
    )
    with tempfile.TemporaryDirectory() as tmp, serve_files(Path(tmp)) as files_url:
        make_video(Path(tmp) / "sample.mp4", duration_s=24.0, speech=DEMO_SENTENCES)
        source = f"{files_url}/sample.mp4"
        with Client(settings.resolved_public_base_url) as client:
            for subtitles in ("both", "none"):
                typer.echo(f"\nClip 5.0-15.0 s of {source}, frame-accurate, subtitles={subtitles}")
                submitted = time.perf_counter()
                job = client.submit(url=source, start=5.0, end=15.0, subtitles=subtitles)
                result = client.wait_result(job.id)
                elapsed = time.perf_counter() - submitted
                typer.echo(f"  submit to result: {elapsed:.2f} s")
                typer.echo(f"  video ({result.video.duration:.2f} s, {result.video.bytes} bytes):")
                typer.echo(f"    {result.video.url}")
                for fmt in ("srt", "vtt"):
                    link = getattr(result.subtitles, fmt)
                    if link:
                        typer.echo(f"  {fmt}: {link.url}")
                if result.subtitles.srt:
                    typer.echo("\n" + client.fetch_text(result.subtitles.srt.url).strip())
    if keep_serving:
        typer.echo("\nStill serving; Ctrl-C stops it.")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    if settings.redis_url is None:
        stop_embedded_redis(settings.data_dir)  # Ray's local cluster ends with this process


@cli.command()
def clip(
    url: Annotated[str, typer.Argument(help="Video page or media URL.")],
    start: Annotated[str, typer.Option(help="Start: seconds or HH:MM:SS(.fff).")],
    end: Annotated[str, typer.Option(help="End: seconds or HH:MM:SS(.fff).")],
    subtitles: Annotated[str, typer.Option(help="none, srt, vtt or both.")] = "none",
    accuracy: Annotated[str, typer.Option(help="frame or keyframe.")] = "frame",
    server: Annotated[str, typer.Option(help="clipmaker API base URL.")] = "http://127.0.0.1:8000",
    out: Annotated[Path | None, typer.Option(help="Download the results into this folder.")] = None,
) -> None:
    """Clip a video through a running clipmaker server."""
    with Client(server) as client:
        job = client.submit(url=url, start=start, end=end, subtitles=subtitles, accuracy=accuracy)
        result = client.wait_result(job.id)
        typer.echo(result.video.url)
        links = {"mp4": result.video.url}
        for fmt in ("srt", "vtt"):
            link = getattr(result.subtitles, fmt)
            if link:
                typer.echo(link.url)
                links[fmt] = link.url
        if out:
            out.mkdir(parents=True, exist_ok=True)
            for suffix, link in links.items():
                typer.echo(f"saved {client.download(link, out / f'{job.id}.{suffix}')}")


@cli.command()
def migrate() -> None:
    """Bring the job database's schema up to date."""
    from clipmaker.jobs.db import migrate as run_migrations

    settings = Settings()
    run_migrations(settings.resolved_database_url)
    typer.echo("database is up to date")


def main() -> None:
    cli()
