"""router v2: rep loads, lead owners, config versions, assignment details, endpoint states,
attempts.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db_migrations import create_delivery_v2, drop_delivery_v2

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "router"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("kind", sa.Text, nullable=False, server_default="assign"),
        sa.Column("queue", sa.Text),
        sa.Column("previous_owner_id", sa.Text),
        sa.Column("lead", pg.JSONB),
    ):
        op.add_column("assignments", column, schema=SCHEMA)
    op.create_table(
        "rep_daily_loads",
        sa.Column("rep_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("assigned", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("rep_id", "day", name="pk_rep_daily_loads"),
        schema=SCHEMA,
    )
    op.create_table(
        "lead_owners",
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("assignment_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("owner_id", sa.Text),
        sa.Column("queue", sa.Text),
        sa.Column("team_id", sa.Text),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("lead", pg.JSONB, nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("lead_id", name="pk_lead_owners"),
        schema=SCHEMA,
    )
    op.create_table(
        "configs",
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("document", pg.JSONB, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("activated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_configs"),
        schema=SCHEMA,
    )
    op.create_index("ix_configs_activated_at", "configs", ["activated_at"], schema=SCHEMA)
    create_delivery_v2(op.get_bind(), SCHEMA)


def downgrade() -> None:
    drop_delivery_v2(op.get_bind(), SCHEMA)
    op.drop_table("configs", schema=SCHEMA)
    op.drop_table("lead_owners", schema=SCHEMA)
    op.drop_table("rep_daily_loads", schema=SCHEMA)
    for name in ("lead", "previous_owner_id", "queue", "kind"):
        op.drop_column("assignments", name, schema=SCHEMA)
