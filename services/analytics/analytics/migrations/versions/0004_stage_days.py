"""analytics: entries into each stage counted by day, kept by PostgreSQL as stage changes are
written, updated or deleted, so that a long period's entries are a few hundred rows to add
rather than hundreds of thousands to count.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
SCHEMA = "analytics"
KEY = "day, to_stage, source, campaign, segment, territory, team_id, owner_id"
# one statement per change of stage_changes: its rows grouped by key, added (or taken away);
# the keys in order, so that two writers never wait on each other in opposite orders
_APPLY = f"""
    INSERT INTO {SCHEMA}.stage_days AS d ({KEY}, entered)
    SELECT (r.at AT TIME ZONE 'UTC')::date, r.to_stage, r.source, r.campaign, r.segment,
           r.territory, r.team_id, r.owner_id, %s * count(*)
    FROM %s r GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ({KEY}) DO UPDATE SET entered = d.entered + EXCLUDED.entered
"""


def upgrade() -> None:
    op.create_table(
        "stage_days",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("to_stage", sa.Text, nullable=False),
        *(
            sa.Column(name, sa.Text)
            for name in ("source", "campaign", "segment", "territory", "team_id", "owner_id")
        ),
        sa.Column("entered", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            *KEY.split(", "), name="uq_stage_days_key", postgresql_nulls_not_distinct=True
        ),
        schema=SCHEMA,
    )
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.keep_stage_days() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                {_APPLY % ("-1", "old_rows")};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {_APPLY % ("1", "new_rows")};
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER stage_days_{event.lower()} AFTER {event} ON {SCHEMA}.stage_changes "
            f"REFERENCING {tables} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {SCHEMA}.keep_stage_days()"
        )
    op.execute(_APPLY % ("1", f"{SCHEMA}.stage_changes"))


def downgrade() -> None:
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER stage_days_{event} ON {SCHEMA}.stage_changes")
    op.execute(f"DROP FUNCTION {SCHEMA}.keep_stage_days()")
    op.drop_table("stage_days", schema=SCHEMA)
