"""keys and tenants: api_keys; a tenant on jobs, batches and uploads; per-tenant idempotency

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Rows written before this migration belong to the ``default`` tenant (what auth ``off`` uses),
so upgrading a running deployment keeps every job visible to it. ``jobs.requeues`` counts
attempts handed back because Redis failed under them (they are not "worker died" attempts).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps 0001's unique constraint on idempotency_key without a name; batch mode can only
# drop it once reflection gives it one.
_NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _timestamp(name: str, *, nullable: bool) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant() -> sa.Column:
    return sa.Column(
        "tenant", sa.String(length=64), nullable=False, server_default=sa.text("'default'")
    )


def _idempotency_constraint() -> str:
    """The name of 0001's unique constraint on jobs.idempotency_key, as this database has it."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("jobs"):
        if constraint["column_names"] == ["idempotency_key"] and constraint["name"]:
            return constraint["name"]
    return "uq_jobs_idempotency_key"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("max_running", sa.Integer(), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        _timestamp("created_at", nullable=False),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)

    old_unique = _idempotency_constraint()
    with op.batch_alter_table("jobs", naming_convention=_NAMING) as batch:
        batch.add_column(_tenant())
        batch.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("requeues", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.drop_constraint(old_unique, type_="unique")
        batch.create_unique_constraint(
            "uq_jobs_tenant_idempotency_key", ["tenant", "idempotency_key"]
        )
        batch.create_index("ix_jobs_tenant", ["tenant"])
        batch.create_index("ix_jobs_api_key_id", ["api_key_id"])
    for table in ("batches", "uploads"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(_tenant())
            batch.create_index(f"ix_{table}_tenant", ["tenant"])


def downgrade() -> None:
    for table in ("uploads", "batches"):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_tenant")
            batch.drop_column("tenant")
    with op.batch_alter_table("jobs", naming_convention=_NAMING) as batch:
        batch.drop_index("ix_jobs_api_key_id")
        batch.drop_index("ix_jobs_tenant")
        batch.drop_constraint("uq_jobs_tenant_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
        batch.drop_column("requeues")
        batch.drop_column("api_key_id")
        batch.drop_column("tenant")
    op.drop_index("ix_api_keys_key_hash", table_name="api_keys")
    op.drop_index("ix_api_keys_tenant", table_name="api_keys")
    op.drop_table("api_keys")
