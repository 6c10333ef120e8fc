"""webhooks: where and how a job is POSTed once it ends, and every delivery attempt

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

It only adds columns to ``jobs`` and one new table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("webhook_secret", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("webhook_status", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("webhook_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("webhook_next_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.create_index("ix_jobs_webhook_status", ["webhook_status"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_deliveries_job_id", "webhook_deliveries", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_job_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_webhook_status")
        batch.drop_column("webhook_next_at")
        batch.drop_column("webhook_attempts")
        batch.drop_column("webhook_status")
        batch.drop_column("webhook_secret")
        batch.drop_column("webhook_url")
