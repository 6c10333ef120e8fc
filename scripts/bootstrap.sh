#!/usr/bin/env bash
# Install what clipmaker needs on a fresh Debian machine: system packages and a virtualenv.
#   scripts/bootstrap.sh             what the service needs (espeak-ng is used by the demo)
#   scripts/bootstrap.sh --services  also PostgreSQL and Redis servers, for the test suite
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v espeak-ng >/dev/null || apt_packages+=(espeak-ng)
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
if [ "${1:-}" = "--services" ]; then
  command -v redis-server >/dev/null || apt_packages+=(redis-server)
  command -v pg_ctlcluster >/dev/null || apt_packages+=(postgresql)
fi
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "==> installing ${apt_packages[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> installing clipmaker and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  rm -f .venv/.installed-*; touch "$stamp"
fi
