"""Engines and migrations on the embedded SQLite file and on the real Postgres server."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import clipmaker.jobs.models  # noqa: F401  (tables on the metadata)
import clipmaker.tenants.models  # noqa: F401  (the api_keys table)
from clipmaker.jobs.db import alembic_config, make_engine, migrate, normalize_url

TABLES = {"jobs", "batches", "uploads", "api_keys", "alembic_version"}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh schema in the session's Postgres DB."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nested' / 'jobs.db'}"
        return
    base: str = request.getfixturevalue("postgres_url")
    admin = base.replace("+psycopg", "")
    schema = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{base}?options=-csearch_path%3D{schema}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def test_migrate_creates_tables_and_is_idempotent(database_url: str) -> None:
    migrate(database_url)
    assert _tables(database_url) >= TABLES
    migrate(database_url)  # second call: nothing to do, no error
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head,)
            ]
    finally:
        engine.dispose()


def test_schema_matches_models(database_url: str) -> None:
    migrate(database_url)
    assert _schema_diff(database_url) == []


def test_migrate_from_threads_at_once(database_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            migrate(database_url)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _tables(database_url) >= TABLES


def test_migrate_from_processes_at_once(database_url: str) -> None:
    code = "import sys; from clipmaker.jobs.db import migrate; migrate(sys.argv[1])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120)[0].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    assert _schema_diff(database_url) == []


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    migrate(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            config = alembic_config(database_url)
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
    finally:
        engine.dispose()
    assert not (_tables(database_url) & {"jobs", "batches", "uploads", "api_keys"})
    migrate(database_url)
    assert _schema_diff(database_url) == []


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "jobs.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_postgres_engine_settings(postgres_url: str) -> None:
    engine = make_engine(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        assert engine.dialect.driver == "psycopg"  # plain postgresql:// means psycopg 3
        assert engine.pool._pre_ping  # no public accessor
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"


def test_alembic_ini_is_packaged() -> None:
    migrations = Path(clipmaker.jobs.models.__file__).parent.parent / "migrations"
    assert (migrations / "alembic.ini").is_file()
    assert (migrations / "script.py.mako").is_file()
    assert (migrations / "versions" / "0001_initial.py").is_file()
