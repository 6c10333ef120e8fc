"""Run the benchmarks and write the table: ``bench/run.sh [--quick] [--only NAME ...]``.

Every ratio is measured in this run, against a named baseline on the same input, on this
machine. The table goes to stdout, to ``bench/results.md`` and (for a full run of every
benchmark) into ``bench/README.md`` between its results markers.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import BENCH_DIR, Context, Row, log, machine, markdown_table, text_table

BENCHMARKS = ("bytes", "walltime", "memory", "throughput", "codecs")
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def _steps(names: list[str]) -> list[tuple[str, str, Callable[[Context], None]]]:
    """(benchmark, title, function) in running order.

    The service-job part of ``bytes`` runs last, on the service the throughput benchmark
    starts (or on its own if throughput is not selected), so that no Ray process is running
    while the single-process timings are taken.
    """
    from bench import bytes_read, codecs, memory, throughput, wall_time

    table = {
        "bytes": [("1. bytes read (cut)", bytes_read.run)],
        "walltime": [("2. wall time of a frame-accurate clip", wall_time.run)],
        "memory": [("3. peak memory vs source length", memory.run)],
        "throughput": [("4. jobs per minute", throughput.run)],
        "codecs": [("5. smart cut per codec", codecs.run)],
    }
    steps = [(name, title, fn) for name in BENCHMARKS if name in names for title, fn in table[name]]
    if "bytes" in names:
        steps.append(("bytes", "1. bytes read (service job)", bytes_read.service_part))
    return steps


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
    )
    args = parser.parse_args(argv)
    names = []
    for item in args.only or [",".join(BENCHMARKS)]:
        for name in filter(None, (n.strip() for n in item.split(","))):
            if name not in BENCHMARKS:
                parser.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
            names.append(name)
    args.names = [n for n in BENCHMARKS if n in names]
    return args


def _report(
    args: argparse.Namespace,
    ctx: Context,
    info: dict[str, str],
    total_s: float,
    failures: list[str],
) -> str:
    mode = (
        "quick (--quick: reduced sizes, targets are for the full sizes)" if args.quick else "full"
    )
    lines = [
        f"Run: {info['date']}; mode: {mode}; benchmarks: {', '.join(args.names)}; "
        f"wall time {total_s / 60:.1f} min ({total_s:.0f} s)."
    ]
    lines.append(
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['ram']} RAM, GPU: {info['gpu']}; "
        f"{info['os']}; Python {info['python']}; FFmpeg {info['ffmpeg']}."
    )
    out = "\n".join(lines) + "\n\n" + markdown_table(ctx.rows) + "\n"
    if ctx.notes or failures:
        out += "\nNotes:\n\n" + "".join(f"- {n}\n" for n in ctx.notes + failures)
    return out


def _update_readme(report: str) -> bool:
    readme = BENCH_DIR / "README.md"
    if not readme.exists():
        return False
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + ".*?" + re.escape(README_END), re.S)
    if not pattern.search(text):
        return False
    readme.write_text(pattern.sub(lambda _: f"{README_START}\n{report}{README_END}", text))
    return True


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    info = machine()
    log(f"clipmaker benchmarks ({'quick' if args.quick else 'full'}): {', '.join(args.names)}")
    log(f"machine: {info['nproc']} CPUs, {info['cpu']}, {info['ram']}, {info['date']}")
    workdir = Path(tempfile.mkdtemp(prefix="clipmaker-bench-"))
    ctx = Context(quick=args.quick, workdir=workdir)
    failures: list[str] = []
    try:
        for name, title, fn in _steps(args.names):
            with ctx.section(title):
                try:
                    fn(ctx)
                except Exception as exc:  # report it and go on with the others
                    traceback.print_exc()
                    failures.append(f"{title} FAILED: {type(exc).__name__}: {exc}")
                    ctx.add(Row(f"{title} ({name})", f"ERROR: {type(exc).__name__}", "-"))
    finally:
        ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    total_s = time.perf_counter() - started

    log("\n== results\n")
    log(text_table(ctx.rows))
    for note in ctx.notes + failures:
        log(f"- {note}")
    log(f"\ntotal wall time: {total_s / 60:.1f} min ({total_s:.0f} s)")
    report = _report(args, ctx, info, total_s, failures)
    (BENCH_DIR / "results.md").write_text("# clipmaker benchmark results\n\n" + report)
    log(f"wrote {BENCH_DIR / 'results.md'}")
    if not args.quick and args.names == list(BENCHMARKS) and not failures:
        if _update_readme(report):
            log(f"updated the table in {BENCH_DIR / 'README.md'}")
    else:
        log("README.md left as is (it shows the latest complete full run of every benchmark)")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
