#!/usr/bin/env bash
# Refresh requirements.lock, the pinned set of every Python package that clipmaker, its tests
# and its bench install (scripts/bootstrap.sh installs exactly this set). Run it after changing
# the dependencies in pyproject.toml, or to take newer releases:
#   scripts/lock.sh              keep current pins where pyproject.toml still allows them
#   scripts/lock.sh --upgrade    move every package to its newest allowed release
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --no-install
exec .venv/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --quiet -o requirements.lock "$@"
