"""``clipmaker keys create|list|revoke``: API keys, straight against the job database.

No running service is needed (an operator makes the first key before anyone can call the API),
and no key either: whoever can reach the database already holds every tenant's data.
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from clipmaker.errors import ClipError
from clipmaker.jobs.db import make_engine, migrate
from clipmaker.settings import Settings
from clipmaker.tenants.keys import KeyRepository
from clipmaker.tenants.models import ApiKeyCreate, ApiKeyPublic

keys_cli = typer.Typer(help="API keys: each acts for one tenant.", no_args_is_help=True)


def key_repository(settings: Settings) -> KeyRepository:
    """The key table of this deployment's database, brought up to date first."""
    migrate(settings.resolved_database_url)
    return KeyRepository(make_engine(settings.resolved_database_url))


def _describe(key: ApiKeyPublic) -> str:
    limits = [
        "admin" if key.admin else "",
        f"{key.requests_per_minute}/min" if key.requests_per_minute else "",
        f"max {key.max_running} running" if key.max_running else "",
        f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
    ]
    details = ", ".join(part for part in limits if part) or "no limits"
    return f"{key.id}  {key.prefix}...  tenant={key.tenant}  {details}"


@keys_cli.command("create")
def create(
    tenant: Annotated[str, typer.Option(help="The tenant this key acts for.")],
    admin: Annotated[bool, typer.Option("--admin", help="See every tenant's work.")] = False,
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Requests per minute (default: no limit).")
    ] = None,
    max_running: Annotated[
        int | None, typer.Option(min=1, help="Jobs queued or running at once (default: no limit).")
    ] = None,
) -> None:
    """Make a key and print it once, alone on the last line (only its hash is kept)."""
    try:
        spec = ApiKeyCreate(
            tenant=tenant,
            admin=admin,
            requests_per_minute=requests_per_minute,
            max_running=max_running,
        )
    except ValidationError:
        typer.echo(
            "error: a tenant name is 1-64 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit",
            err=True,
        )
        raise typer.Exit(2) from None
    repo = key_repository(Settings())
    try:
        record, key = repo.create(spec)
    except ClipError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    finally:
        repo.engine.dispose()
    typer.echo(f"created {_describe(record)}")
    typer.echo("The key is shown this once; store it now:")
    typer.echo(key)


@keys_cli.command("list")
def list_keys() -> None:
    """Every key: id, prefix, tenant, limits; never the key."""
    repo = key_repository(Settings())
    try:
        for record in repo.list():
            typer.echo(_describe(record))
    finally:
        repo.engine.dispose()


@keys_cli.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`).")]) -> None:
    """Revoke a key for good: it gets 401 from then on."""
    repo = key_repository(Settings())
    try:
        record = repo.revoke(key_id)
    except ClipError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    finally:
        repo.engine.dispose()
    typer.echo(f"revoked {_describe(record)}")
