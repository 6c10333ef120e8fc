#!/usr/bin/env bash
# clipmaker's benchmarks in one command: installs what is missing, then runs them all.
#   bench/run.sh               full run: 7-10 minutes on 2 cores (+2.5 with an empty cache);
#                              writes bench/results.md and the table in bench/README.md
#   bench/run.sh --quick       smaller sizes: a smoke run of every benchmark (about 2 minutes)
#   bench/run.sh --only NAME   bytes, walltime, memory or throughput (repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v ffmpeg >/dev/null || apt_packages+=(ffmpeg)
command -v espeak-ng >/dev/null || apt_packages+=(espeak-ng)
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "==> installing ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

# clipmaker and its dependencies (yt-dlp, PyAV, faster-whisper, Ray) in .venv
if ! .venv/bin/python -c 'import clipmaker, yt_dlp, av, faster_whisper, ray' 2>/dev/null; then
  scripts/bootstrap.sh
fi
[ -x .venv/bin/yt-dlp ] || .venv/bin/python -m pip install -q yt-dlp

exec .venv/bin/python -m bench "$@"
