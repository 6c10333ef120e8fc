"""Database engines and schema migrations for the job store.

One place knows how to open the status-of-record database well: SQLite (the embedded default)
needs WAL and a busy timeout so the ingress and several worker processes can write at once,
Postgres needs ``pool_pre_ping`` so a connection dropped by a restart or a proxy is replaced
instead of failing a request. ``migrate`` brings any database to the newest schema and is safe
to call from every process at start-up: a lock makes concurrent callers take turns, and
Alembic makes a second upgrade a no-op.
"""

from __future__ import annotations

import fcntl
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

# Any constant works; all processes must agree on it. Derived from a name to stay readable.
_PG_LOCK_KEY = zlib.crc32(b"clipmaker:migrate")


def normalize_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the one driver we ship."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _sqlite_path(url: URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def make_engine(url: str) -> Engine:
    """An engine tuned for this service's access pattern on SQLite or Postgres."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)

    path = _sqlite_path(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        parsed,
        # One engine serves threads of an actor or the ingress; SQLite's own locking is enough.
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # Stop pysqlite from starting transactions on its own (it defers BEGIN to the first
        # INSERT/UPDATE and never wraps DDL); we emit BEGIN ourselves below, so a transaction
        # means what SQLAlchemy says it means and a migration is all-or-nothing.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL: readers never block the writer, and the writer never blocks readers.
            cursor.execute("PRAGMA journal_mode=WAL")
            # Wait for another process's write instead of failing with "database is locked".
            cursor.execute("PRAGMA busy_timeout=30000")
            # WAL is crash-safe with NORMAL; FULL would fsync every commit for no gain here.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Deferred: the write lock is taken by the first write, so every write transaction in
        # this package starts with its write (a read first could fail with SQLITE_BUSY_SNAPSHOT
        # instead of waiting on busy_timeout).
        conn.exec_driver_sql("BEGIN")

    return engine


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic config that works from an installed package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        rendered = normalize_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@contextmanager
def _migration_lock(engine: Engine, url: URL) -> Iterator[None]:
    """Make concurrent ``migrate`` calls (many replicas and actors start at once) take turns."""
    if engine.dialect.name == "postgresql":
        # A session-level advisory lock on its own autocommit connection, so it does not mix
        # with Alembic's transaction and goes away by itself if this process dies.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})
        return
    path = _sqlite_path(url) if engine.dialect.name == "sqlite" else None
    if path is None:  # in-memory SQLite: one process by definition
        yield
        return
    lock_path = path.with_name(path.name + ".migrate.lock")
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released by close, or by the kernel if we die
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema (idempotent, concurrency-safe)."""
    parsed = normalize_url(url)
    engine = make_engine(url)
    try:
        with _migration_lock(engine, parsed), engine.begin() as connection:
            config = alembic_config(parsed)
            # env.py runs on this connection, so it shares our engine settings (WAL, timeout).
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()
