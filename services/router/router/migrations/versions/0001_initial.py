"""router v1: assignments, round-robin state, outbox, processed events, webhook deliveries.

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
SCHEMA = "router"


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text),
        sa.Column("team_id", sa.Text, nullable=False),
        sa.Column("strategy", sa.Text, nullable=False),
        sa.Column("decision", pg.JSONB, nullable=False),
        sa.Column("config_version", sa.Text, nullable=False),
        sa.Column("cause_event_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assignments"),
        schema=SCHEMA,
    )
    op.create_index("ix_assignments_lead_id", "assignments", ["lead_id"], schema=SCHEMA)
    op.create_table(
        "round_robin_state",
        sa.Column("pool_id", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("pool_id", name="pk_round_robin_state"),
        schema=SCHEMA,
    )
    create_common_v1(op.get_bind(), SCHEMA, deliveries=True)


def downgrade() -> None:
    drop_common_v1(op.get_bind(), SCHEMA)
    op.drop_table("round_robin_state", schema=SCHEMA)
    op.drop_table("assignments", schema=SCHEMA)
