"""Alembic environment: runs migrations for the job store.

Why this shape: ``clipmaker.jobs.db.migrate`` hands us an open connection (so the migration
runs under its lock and with the engine's SQLite/Postgres settings); the ``alembic`` command
line, pointed at ``alembic.ini`` here, gets an engine from ``sqlalchemy.url`` or, failing
that, from the service's own settings (``DATABASE_URL`` / ``CLIPMAKER_*``).
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import clipmaker.jobs.models  # noqa: F401  (registers the tables on SQLModel.metadata)
import clipmaker.tenants.models  # noqa: F401  (the api_keys table)
from clipmaker.jobs.db import make_engine

config = context.config
target_metadata = SQLModel.metadata

# The command line brings alembic.ini's logging; a service calling migrate() keeps its own.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: Alembic rebuilds the table ("batch mode") instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from clipmaker.settings import Settings

    return Settings().resolved_database_url


def run_migrations_offline() -> None:
    """``alembic upgrade --sql``: print the SQL instead of running it."""
    context.configure(
        url=_database_url(), target_metadata=target_metadata, literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_database_url())
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
