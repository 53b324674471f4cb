"""analytics: entries into each stage counted by month beside the daily counts, so that a
year's entries are a few thousand rows to add; how many leads are at each stage now, by the
dimensions a figure is cut by, kept as lead rows are written, so that a balance is a few
hundred rows to add rather than every lead to count; and the entries that went on indexed by
stage, with the dimensions, so that velocity reads each stage's entries alone from the index.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "analytics"
DIMENSIONS = ("source", "campaign", "segment", "territory", "team_id", "owner_id")
BALANCE = ", ".join(("stage", *DIMENSIONS))
ENTRY = ", ".join(("to_stage", *DIMENSIONS))
# a change of stage_changes added to (or taken from) the daily and the monthly counts: its rows
# grouped by key, the keys in order, so that two writers never wait on each other in opposite
# orders
_ENTRIES = """
    INSERT INTO {schema}.stage_{unit}s AS d ({unit}, {entry}, entered)
    SELECT {at}, {entry}, %s * count(*) FROM %s r
    GROUP BY 1, {entry} ORDER BY 1, {entry}
    ON CONFLICT ({unit}, {entry}) DO UPDATE SET entered = d.entered + EXCLUDED.entered
"""
_DAYS, _MONTHS = (
    _ENTRIES.format(schema=SCHEMA, unit=unit, at=at, entry=ENTRY)
    for unit, at in (
        ("day", "(r.at AT TIME ZONE 'UTC')::date"),
        ("month", "date_trunc('month', r.at AT TIME ZONE 'UTC')::date"),
    )
)
# one statement per change of leads: its rows at a stage grouped by key, added (or taken away);
# the keys in order, so that two writers never wait on each other in opposite orders
_BALANCES = f"""
    INSERT INTO {SCHEMA}.stage_balances AS b ({BALANCE}, leads)
    SELECT {BALANCE}, %s * count(*) FROM %s r WHERE r.stage IS NOT NULL
    GROUP BY {BALANCE} ORDER BY {BALANCE}
    ON CONFLICT ({BALANCE}) DO UPDATE SET leads = b.leads + EXCLUDED.leads
"""


def upgrade() -> None:
    op.create_table(
        "stage_months",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("to_stage", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text) for name in DIMENSIONS),
        sa.Column("entered", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "month",
            *ENTRY.split(", "),
            name="uq_stage_months_key",
            postgresql_nulls_not_distinct=True,
        ),
        schema=SCHEMA,
    )
    _keep("keep_stage_days", _DAYS, _MONTHS)
    op.execute(_MONTHS % ("1", f"{SCHEMA}.stage_changes"))
    op.create_table(
        "stage_balances",
        sa.Column("stage", sa.Text, nullable=False),
        *(sa.Column(name, sa.Text) for name in DIMENSIONS),
        sa.Column("leads", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            *BALANCE.split(", "), name="uq_stage_balances_key", postgresql_nulls_not_distinct=True
        ),
        schema=SCHEMA,
    )
    _keep("keep_stage_balances", _BALANCES)
    for event, tables in (
        ("INSERT", "NEW TABLE AS new_rows"),
        ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(
            f"CREATE TRIGGER stage_balances_{event.lower()} AFTER {event} ON {SCHEMA}.leads "
            f"REFERENCING {tables} FOR EACH STATEMENT "
            f"EXECUTE FUNCTION {SCHEMA}.keep_stage_balances()"
        )
    op.execute(_BALANCES % ("1", f"{SCHEMA}.leads"))
    op.drop_index("ix_stage_changes_went_on", "stage_changes", schema=SCHEMA)
    op.create_index(
        "ix_stage_changes_went_on",
        "stage_changes",
        ["to_stage", "at"],
        schema=SCHEMA,
        postgresql_include=["next_at", *DIMENSIONS],
        postgresql_where=sa.text("next_at IS NOT NULL"),
    )


def _keep(function: str, *statements: str) -> None:
    """A statement trigger's function (stage_changes' is migration 0004's, replaced) that
    takes each of ``statements`` away for the old rows and adds it for the new ones."""
    old = "; ".join(x % ("-1", "old_rows") for x in statements)
    new = "; ".join(x % ("1", "new_rows") for x in statements)
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {SCHEMA}.{function}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                {old};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {new};
            END IF;
            RETURN NULL;
        END $$
        """
    )


def downgrade() -> None:
    op.drop_index("ix_stage_changes_went_on", "stage_changes", schema=SCHEMA)
    op.create_index(
        "ix_stage_changes_went_on",
        "stage_changes",
        ["at"],
        schema=SCHEMA,
        postgresql_include=["to_stage", "next_at"],
        postgresql_where=sa.text("next_at IS NOT NULL"),
    )
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER stage_balances_{event} ON {SCHEMA}.leads")
    op.execute(f"DROP FUNCTION {SCHEMA}.keep_stage_balances()")
    op.drop_table("stage_balances", schema=SCHEMA)
    _keep("keep_stage_days", _DAYS)
    op.drop_table("stage_months", schema=SCHEMA)
