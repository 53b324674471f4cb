"""scoring v2: grades, decaying engagement hits, funnel passes, erasure, model versions.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "scoring"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("fit_grade", sa.Text, nullable=False, server_default="F"),
        sa.Column("snapshot_at", TS),
        sa.Column("hits", pg.JSONB, nullable=False, server_default="[]"),
        sa.Column("fit_parts", pg.JSONB, nullable=False, server_default="[]"),
        sa.Column("engagement_since", TS),
        sa.Column("cycle", sa.Integer, nullable=False, server_default="0"),
        sa.Column("erased_at", TS),
    ):
        op.add_column("leads", column, schema=SCHEMA)
    op.create_index(
        "ix_leads_stage_entered_at", "leads", ["stage", "stage_entered_at"], schema=SCHEMA
    )
    op.create_table(
        "stage_history",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("from_stage", sa.Text),
        sa.Column("to_stage", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("reasons", pg.JSONB, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("model_version", sa.Text, nullable=False),
        sa.Column("cause_event_id", pg.UUID(as_uuid=True)),
        sa.PrimaryKeyConstraint("id", name="pk_stage_history"),
        schema=SCHEMA,
    )
    op.create_index("ix_stage_history_lead_id", "stage_history", ["lead_id"], schema=SCHEMA)
    op.create_table(
        "models",
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_loaded_at", TS, nullable=False),
        sa.Column("last_activated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_models"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("models", schema=SCHEMA)
    op.drop_table("stage_history", schema=SCHEMA)
    op.drop_index("ix_leads_stage_entered_at", "leads", schema=SCHEMA)
    for name in (
        "erased_at",
        "cycle",
        "engagement_since",
        "fit_parts",
        "hits",
        "snapshot_at",
        "fit_grade",
    ):
        op.drop_column("leads", name, schema=SCHEMA)
