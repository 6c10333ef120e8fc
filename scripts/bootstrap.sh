#!/usr/bin/env bash
# Install what clipmaker needs on a fresh Debian machine: system packages and a virtualenv with
# exactly the Python packages pinned in requirements.lock (refresh it with scripts/lock.sh).
#   scripts/bootstrap.sh               what the service and the demo need (espeak-ng speaks the demo)
#   scripts/bootstrap.sh --test        also what the tests and the bench run: ffmpeg (an independent
#                                      decoder and fixture maker), PostgreSQL and Redis servers,
#                                      and Debian's chromium, which the page's browser tests drive
#                                      with Playwright (Playwright's own browser downloads are not
#                                      used: CI may not reach them)
#   scripts/bootstrap.sh --no-install  only the virtualenv and the pinned installer (uv)
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
mode="${1:-}"

apt_packages=()
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
if [ "$mode" != "--no-install" ]; then
  command -v espeak-ng >/dev/null || apt_packages+=(espeak-ng)
fi
if [ "$mode" = "--test" ]; then
  command -v ffmpeg >/dev/null || apt_packages+=(ffmpeg)
  command -v redis-server >/dev/null || apt_packages+=(redis-server)
  command -v pg_ctlcluster >/dev/null || apt_packages+=(postgresql)
  [ -x /usr/bin/chromium ] || apt_packages+=(chromium)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "==> installing ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${apt_packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
[ -x .venv/bin/uv ] && [ "$(.venv/bin/uv --version | cut -d' ' -f2)" = "$UV_VERSION" ] \
  || .venv/bin/python -m pip install -q "uv==$UV_VERSION"
[ "$mode" = "--no-install" ] && exit 0

stamp=".venv/.installed-$(cat pyproject.toml requirements.lock | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> installing clipmaker and its pinned Python dependencies (requirements.lock) into .venv"
  .venv/bin/uv pip install --quiet --python .venv/bin/python -r requirements.lock
  .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  rm -f .venv/.installed-*; touch "$stamp"
fi
