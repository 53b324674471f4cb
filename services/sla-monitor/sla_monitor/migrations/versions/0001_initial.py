"""sla v1: clocks, activities, outbox, processed events, alert deliveries.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db_migrations import create_common_v1, drop_common_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "sla"


def upgrade() -> None:
    op.create_table(
        "clocks",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("team_id", sa.Text, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="open"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worked_at", sa.DateTime(timezone=True)),
        sa.Column("breached_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id", name="pk_clocks"),
        sa.UniqueConstraint("assignment_id", name="uq_clocks_assignment_id"),
        schema=SCHEMA,
    )
    op.create_index("ix_clocks_lead_id", "clocks", ["lead_id"], schema=SCHEMA)
    op.create_index(
        "ix_clocks_open_due",
        "clocks",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "activities",
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("activity_type", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_activities"),
        schema=SCHEMA,
    )
    op.create_index("ix_activities_lead_id", "activities", ["lead_id"], schema=SCHEMA)
    create_common_v1(op.get_bind(), SCHEMA, deliveries=True)


def downgrade() -> None:
    drop_common_v1(op.get_bind(), SCHEMA)
    op.drop_table("activities", schema=SCHEMA)
    op.drop_table("clocks", schema=SCHEMA)
