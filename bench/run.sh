#!/usr/bin/env bash
# clipmaker's benchmarks in one command: installs what is missing, then runs them all.
#   bench/run.sh               full run: 7-10 minutes on 2 cores (+2.5 with an empty cache);
#                              writes bench/results.md and the table in bench/README.md
#   bench/run.sh --quick       smaller sizes: a smoke run of every benchmark (about 2 minutes)
#   bench/run.sh --only NAME   bytes, walltime, memory or throughput (repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."

# ffmpeg (a baseline), espeak-ng, and clipmaker with its pinned dependencies (yt-dlp, PyAV,
# faster-whisper, Ray) in .venv: the same installer as the tests.
scripts/bootstrap.sh --test

exec .venv/bin/python -m bench "$@"
