"""sla v2: policies and levels. Clocks gain stage, phase, policy version, time zone and the
instant of every level; activities become touches (activities and sales feedback); alerts are
recorded once per clock and level; policy versions; endpoint states and the attempt log.

Open v1 clocks are carried over: they keep their deadline and still fire their breach.

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
SCHEMA = "sla"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.drop_constraint("uq_clocks_assignment_id", "clocks", schema=SCHEMA)
    op.drop_index("ix_clocks_open_due", "clocks", schema=SCHEMA)
    op.alter_column("clocks", "worked_at", new_column_name="ended_at", schema=SCHEMA)
    op.alter_column("clocks", "status", server_default=None, schema=SCHEMA)
    for column in (
        sa.Column("stage", sa.Text, nullable=False, server_default="mql"),
        sa.Column("phase", sa.Integer, nullable=False, server_default="0"),
        sa.Column("owner_name", sa.Text),
        sa.Column("owner_email", sa.Text),
        sa.Column("manager", pg.JSONB),
        sa.Column("policy_version", sa.Text, nullable=False, server_default="v1"),
        sa.Column("zone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("deadline_s", sa.Float, nullable=False, server_default="0"),
        sa.Column("due_text", sa.Text, nullable=False, server_default=""),
        sa.Column("warn_at", TS),
        sa.Column("escalate_at", TS),
        sa.Column("reroute_at", TS),
        sa.Column("next_level", sa.Text),
        sa.Column("next_at", TS),
        sa.Column("last_level", sa.Text),
        sa.Column("outcome", sa.Text),
        sa.Column("facts", pg.JSONB),
    ):
        op.add_column("clocks", column, schema=SCHEMA)
    op.execute(f"""
        UPDATE {SCHEMA}.clocks SET
          owner_name = owner_id,
          deadline_s = extract(epoch FROM due_at - started_at),
          next_level = CASE WHEN status = 'open' THEN 'breach' END,
          next_at = CASE WHEN status = 'open' THEN due_at END,
          last_level = CASE WHEN status = 'breached' THEN 'breach' END,
          status = CASE status WHEN 'breached' THEN 'open' WHEN 'superseded' THEN 'reassigned'
                   ELSE status END""")
    op.create_index(
        "ix_clocks_next_at",
        "clocks",
        ["next_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("next_at IS NOT NULL"),
    )
    op.create_index(
        "ix_clocks_open_due",
        "clocks",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_clocks_started_at", "clocks", ["started_at"], schema=SCHEMA)

    op.rename_table("activities", "touches", schema=SCHEMA)
    op.alter_column("touches", "activity_type", new_column_name="type", schema=SCHEMA)
    op.add_column(
        "touches",
        sa.Column("kind", sa.Text, nullable=False, server_default="activity"),
        schema=SCHEMA,
    )
    op.alter_column("touches", "kind", server_default=None, schema=SCHEMA)
    op.execute(f"ALTER INDEX {SCHEMA}.ix_activities_lead_id RENAME TO ix_touches_lead_id")
    op.execute(f"ALTER TABLE {SCHEMA}.touches RENAME CONSTRAINT pk_activities TO pk_touches")

    op.create_table(
        "alerts",
        sa.Column("id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("clock_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("policy_id", sa.Text, nullable=False),
        sa.Column("team_id", sa.Text, nullable=False),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("scheduled_at", TS, nullable=False),
        sa.Column("fired_at", TS, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("reasons", pg.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        schema=SCHEMA,
    )
    for name, cols in (
        ("ix_alerts_clock_id", ["clock_id"]),
        ("ix_alerts_lead_id", ["lead_id"]),
        ("ix_alerts_fired_at", ["fired_at"]),
    ):
        op.create_index(name, "alerts", cols, schema=SCHEMA)
    op.create_table(
        "policies",
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("checksum", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_loaded_at", TS, nullable=False),
        sa.Column("last_activated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_policies"),
        schema=SCHEMA,
    )
    create_delivery_v2(op.get_bind(), SCHEMA)


def downgrade() -> None:
    drop_delivery_v2(op.get_bind(), SCHEMA)
    op.drop_table("policies", schema=SCHEMA)
    op.drop_table("alerts", schema=SCHEMA)
    op.execute(f"ALTER TABLE {SCHEMA}.touches RENAME CONSTRAINT pk_touches TO pk_activities")
    op.execute(f"ALTER INDEX {SCHEMA}.ix_touches_lead_id RENAME TO ix_activities_lead_id")
    op.execute(f"DELETE FROM {SCHEMA}.touches WHERE kind <> 'activity'")
    op.drop_column("touches", "kind", schema=SCHEMA)
    op.alter_column("touches", "type", new_column_name="activity_type", schema=SCHEMA)
    op.rename_table("touches", "activities", schema=SCHEMA)
    # v1 had one clock per assignment: follow-ups and SAL clocks have no v1 form.
    op.execute(f"DELETE FROM {SCHEMA}.clocks WHERE phase > 0 OR stage = 'sal'")
    op.execute(f"""
        UPDATE {SCHEMA}.clocks SET status = CASE
          WHEN status = 'open' AND last_level IS NOT NULL THEN 'breached'
          WHEN status IN ('reassigned', 'closed') THEN 'superseded' ELSE status END""")
    for name in ("ix_clocks_next_at", "ix_clocks_open_due", "ix_clocks_started_at"):
        op.drop_index(name, "clocks", schema=SCHEMA)
    for name in (
        "stage",
        "phase",
        "owner_name",
        "owner_email",
        "manager",
        "policy_version",
        "zone",
        "deadline_s",
        "due_text",
        "warn_at",
        "escalate_at",
        "reroute_at",
        "next_level",
        "next_at",
        "last_level",
        "outcome",
        "facts",
    ):
        op.drop_column("clocks", name, schema=SCHEMA)
    op.alter_column("clocks", "ended_at", new_column_name="worked_at", schema=SCHEMA)
    op.alter_column("clocks", "status", server_default="open", schema=SCHEMA)
    op.create_index(
        "ix_clocks_open_due",
        "clocks",
        ["due_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_unique_constraint(
        "uq_clocks_assignment_id", "clocks", ["assignment_id"], schema=SCHEMA
    )
