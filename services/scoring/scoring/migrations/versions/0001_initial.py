"""scoring v1: leads, timeline, outbox, processed events.

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
SCHEMA = "scoring"


def upgrade() -> None:
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("snapshot", pg.JSONB, nullable=False),
        sa.Column("stage", sa.Text),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True)),
        sa.Column("fit_score", sa.Integer, nullable=False, server_default="0"),
        sa.Column("engagement_score", sa.Integer, nullable=False, server_default="0"),
        sa.Column("form_fills", sa.Integer, nullable=False, server_default="0"),
        sa.Column("model_version", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("lead_id", name="pk_leads"),
        schema=SCHEMA,
    )
    op.create_table(
        "timeline",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("detail", pg.JSONB, nullable=False),
        sa.Column("event_id", pg.UUID(as_uuid=True)),
        sa.PrimaryKeyConstraint("id", name="pk_timeline"),
        schema=SCHEMA,
    )
    op.create_index("ix_timeline_lead_id", "timeline", ["lead_id"], schema=SCHEMA)
    create_common_v1(op.get_bind(), SCHEMA)


def downgrade() -> None:
    drop_common_v1(op.get_bind(), SCHEMA)
    op.drop_table("timeline", schema=SCHEMA)
    op.drop_table("leads", schema=SCHEMA)
