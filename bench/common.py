"""What every benchmark shares: result rows, cached sources, the loopback server, the service.

Sources are ``clipmaker.testing.sample.make_video`` videos (every frame carries its index, audio
is a tone with espeak-ng speech). Long ones are one generated segment repeated with FFmpeg's
concat demuxer (stream copy): drawing frames in Python runs at 40-300 fps here, so a 30-minute
source drawn frame by frame would cost minutes, while a copy costs seconds. Segments are 40 s:
a whole number of 2 s GOPs and of 1024-sample AAC frames at 48 kHz (8 s), so the copies join on
keyframes and the audio stays continuous. Frame indices repeat with each segment; the benchmarks
only rely on them modulo the segment.

Everything generated is cached under ``bench/.cache`` (keyed by its parameters), so only the
first run pays for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE = BENCH_DIR / ".cache"
SOURCES = CACHE / "sources"  # served over loopback HTTP
SEGMENT_S = 40.0  # see the module docstring

if str(REPO) not in sys.path:  # tests.support.http_server is imported from the repo root
    sys.path.append(str(REPO))


# --- results ---------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the results table; ``ratio`` is always "times better than the baseline"."""

    benchmark: str
    clipmaker: str
    baseline: str  # "name: value"
    ratio: float | None = None
    ratio_text: str | None = None  # overrides the formatted ratio
    target: str = "-"
    met: bool | None = None  # None: no target, or not measurable

    def cells(self) -> list[str]:
        if self.ratio_text is not None:
            ratio = self.ratio_text
        elif self.ratio is None:
            ratio = "n/a"
        else:
            ratio = f"{self.ratio:.2f}x" if self.ratio < 10 else f"{self.ratio:.1f}x"
        met = {True: "yes", False: "**no**", None: "-"}[self.met]
        return [self.benchmark, self.clipmaker, self.baseline, ratio, self.target, met]


HEADER = ["benchmark", "clipmaker", "baseline (name)", "ratio", "target", "met?"]


def markdown_table(rows: Sequence[Row]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(esc(c) for c in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def text_table(rows: Sequence[Row]) -> str:
    table = [HEADER] + [row.cells() for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    out = []
    for n, r in enumerate(table):
        out.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def log(message: str) -> None:
    print(message, flush=True)


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def ratio_at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    """Median wall seconds of ``repeat`` calls, every time, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", *args], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- machine ---------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    ffmpeg_version = "?"
    with contextlib.suppress(OSError, subprocess.CalledProcessError, IndexError):
        out = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True)
        ffmpeg_version = out.stdout.split()[2]
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "gpu": "none" if shutil.which("nvidia-smi") is None else "present (unused)",
        "os": platform.platform(),
        "python": platform.python_version(),
        "ffmpeg": ffmpeg_version,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- sources ---------------------------------------------------------------------------------
SENTENCES = (
    "The quarterly report shows steady growth in every region.",
    "Please remember to water the plants before the weekend.",
    "Our new office opens next month near the river.",
    "The train to the city leaves at seven every morning.",
    "She painted the old fence a bright shade of blue.",
    "Thank you all for joining the meeting today.",
    "The library will be closed on public holidays.",
    "We measured the temperature every hour for a week.",
    "A small dog was barking at the mail carrier.",
    "The recipe needs two cups of flour and one egg.",
    "Next we will look at the results of the survey.",
    "The bridge was built more than a hundred years ago.",
)


def speech_schedule(duration_s: float, *, every_s: float = 4.5, offset: int = 0):
    """A sentence every ``every_s`` seconds from 1 s on: there is speech in any 10 s window."""
    at, n, schedule = 1.0, offset, []
    while at < duration_s - 4:
        schedule.append((at, SENTENCES[n % len(SENTENCES)]))
        at += every_s
        n += 1
    return tuple(schedule)


def _generated(path: Path, make: Callable[[Path], None]) -> Path:
    """``path`` if cached, else made through a temporary name (an interrupted run leaves none)."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    started = time.perf_counter()
    try:
        make(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log(
        f"  generated {path.relative_to(BENCH_DIR)} ({mb(path.stat().st_size)}) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return path


def sample_video(
    name: str,
    *,
    duration_s: float,
    size: tuple[int, int],
    fps: int,
    crf: int,
    gop_s: float = 2.0,
    speech: bool = False,
    seed: int = 0,
) -> Path:
    """A cached ``make_video`` source of exactly ``duration_s`` (repeats of a 40 s segment when
    longer than one), H.264 + AAC in a faststart MP4, served from ``SOURCES``."""
    from clipmaker.testing.sample import make_video

    w, h = size
    key = f"{w}x{h}-{fps}fps-gop{gop_s:g}-crf{crf}-seed{seed}" + ("-speech" if speech else "")
    schedule = speech_schedule(duration_s, offset=seed) if speech else ()

    def make_segment(duration: float) -> Callable[[Path], None]:
        def make(tmp: Path) -> None:
            make_video(
                tmp,
                duration_s=duration,
                fps=fps,
                gop_s=gop_s,
                size=size,
                crf=crf,
                seed=seed,
                speech=schedule if speech else (),
            )

        return make

    if speech or duration_s <= SEGMENT_S:  # speech must not repeat: draw it all
        return _generated(SOURCES / f"{name}-{key}-{duration_s:g}s.mp4", make_segment(duration_s))
    if duration_s % SEGMENT_S:
        raise ValueError(f"{duration_s} s is not a multiple of {SEGMENT_S} s")
    segment = _generated(CACHE / "segments" / f"{key}-{SEGMENT_S:g}s.mp4", make_segment(SEGMENT_S))
    copies = round(duration_s / SEGMENT_S)

    def concat(tmp: Path) -> None:
        listing = tmp.with_suffix(".txt")
        listing.write_text(f"file '{segment}'\n" * copies)
        try:
            ffmpeg(
                "-f",
                "concat",
                "-safe",
                "0",
                "-i",
                str(listing),
                "-c",
                "copy",
                "-movflags",
                "+faststart",
                str(tmp),
            )
        finally:
            listing.unlink(missing_ok=True)

    return _generated(SOURCES / f"{name}-{key}-{duration_s:g}s.mp4", concat)


# --- the run ---------------------------------------------------------------------------------
@dataclass
class Context:
    quick: bool
    workdir: Path  # scratch for this run
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _server: Any = None
    _service: Any = None

    def add(self, row: Row) -> None:
        self.rows.append(row)
        log("  " + " | ".join(row.cells()))

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"  note: {text}")

    @property
    def server(self):  # tests.support.http_server.MediaServer
        """A loopback HTTP server (Range support, counts the bytes it sends) over SOURCES."""
        if self._server is None:
            from tests.support.http_server import serve_directory

            SOURCES.mkdir(parents=True, exist_ok=True)
            self._server = self._stack.enter_context(serve_directory(SOURCES))
        return self._server

    def url(self, path: Path) -> str:
        return self.server.url(path.relative_to(SOURCES).as_posix())

    @property
    def service(self):
        if self._service is None:
            from bench.service import running_service

            self._service = self._stack.enter_context(running_service(self))
        return self._service

    @property
    def service_started(self) -> bool:
        return self._service is not None

    def close(self) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def section(self, title: str) -> Iterator[None]:
        log(f"\n== {title}")
        started = time.perf_counter()
        try:
            yield
        finally:
            log(f"  ({title}: {time.perf_counter() - started:.1f} s)")
