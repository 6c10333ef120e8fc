#!/usr/bin/env bash
# Install everything and run the demo: Ray + Ray Serve on 127.0.0.1:8000, a sample video with
# speech, a frame-accurate clip job with subtitles over HTTP, progress, links and subtitles.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/clipmaker demo "$@"
