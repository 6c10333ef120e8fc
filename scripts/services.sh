#!/usr/bin/env bash
# Make sure the PostgreSQL (127.0.0.1:5432, database "test", trust auth) and Redis
# (127.0.0.1:6379) servers that the test suite talks to are running. Where they already run
# (CI's machine) this does nothing; on a fresh machine it configures and starts them.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "==> starting redis-server on 127.0.0.1:6379"
  $sudo mkdir -p /var/lib/redis /var/log/redis
  $sudo redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/clipmaker-test.log
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  if ! $sudo grep -q "clipmaker-test" "$hba"; then
    echo "==> allowing trust auth on 127.0.0.1 for the test database"
    $sudo sed -i '1i host all all 127.0.0.1/32 trust # clipmaker-test' "$hba"
  fi
  echo "==> starting PostgreSQL $version"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  echo "==> creating database test"
  psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
fi
