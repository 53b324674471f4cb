"""analytics v1: leads and the facts of every topic.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None
SCHEMA = "analytics"


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("assignment_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("territory", sa.Text(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("reassignment", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_assignments")),
        schema=SCHEMA,
    )
    op.create_table(
        "breaches",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("assignment_id", sa.UUID(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("team_id", sa.Text(), nullable=False),
        sa.Column("policy_id", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_breaches")),
        schema=SCHEMA,
    )
    op.create_table(
        "feedback",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("feedback", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.Column("opportunity_id", sa.Text(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_feedback")),
        schema=SCHEMA,
    )
    op.create_table(
        "leads",
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_event", sa.UUID(), nullable=True),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("campaign", sa.Text(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assignment_event", sa.UUID(), nullable=True),
        sa.Column("owner_id", sa.Text(), nullable=True),
        sa.Column("team_id", sa.Text(), nullable=True),
        sa.Column("territory", sa.Text(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("stage", sa.Text(), nullable=True),
        sa.Column("stage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stage_order", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_leads")),
        schema=SCHEMA,
    )
    op.create_table(
        "stage_changes",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("from_stage", sa.Text(), nullable=True),
        sa.Column("to_stage", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stage_changes")),
        schema=SCHEMA,
    )
    op.create_table(
        "touches",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("campaign", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_touches")),
        schema=SCHEMA,
    )
    op.create_index("ix_assignments_at", "assignments", ["at"], unique=False, schema=SCHEMA)
    op.create_index(
        "ix_assignments_lead_at", "assignments", ["lead_id", "at"], unique=False, schema=SCHEMA
    )
    op.create_index("ix_breaches_at", "breaches", ["at"], unique=False, schema=SCHEMA)
    op.create_index(
        "ix_feedback_lead_at", "feedback", ["lead_id", "at"], unique=False, schema=SCHEMA
    )
    op.create_index("ix_feedback_at", "feedback", ["at"], unique=False, schema=SCHEMA)
    op.create_index("ix_leads_stage", "leads", ["stage"], unique=False, schema=SCHEMA)
    op.create_index(
        "ix_stage_changes_stage_at",
        "stage_changes",
        ["to_stage", "at"],
        unique=False,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_stage_changes_lead_at", "stage_changes", ["lead_id", "at"], unique=False, schema=SCHEMA
    )
    op.create_index("ix_touches_lead_at", "touches", ["lead_id", "at"], unique=False, schema=SCHEMA)


def downgrade() -> None:
    for table in ["touches", "stage_changes", "leads", "feedback", "breaches", "assignments"]:
        op.drop_table(table, schema=SCHEMA)
