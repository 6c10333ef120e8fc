#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs everything, starts the servers, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --test
scripts/services.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
