"""analytics: each stage change keeps its next forward entry and its lead's dimensions.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None
SCHEMA = "analytics"
COLUMNS = ("source", "campaign", "segment", "territory", "team_id", "owner_id")
FUNNEL = ("inquiry", "mql", "sal", "sql", "opportunity", "won")


def upgrade() -> None:
    op.add_column("stage_changes", sa.Column("funnel_rank", sa.SmallInteger), schema=SCHEMA)
    op.add_column("stage_changes", sa.Column("next_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    for name in COLUMNS:
        op.add_column("stage_changes", sa.Column(name, sa.Text), schema=SCHEMA)
    op.drop_index("ix_stage_changes_stage_at", "stage_changes", schema=SCHEMA)
    op.create_index("ix_stage_changes_at", "stage_changes", ["at"], schema=SCHEMA)
    op.create_index(
        "ix_stage_changes_went_on",
        "stage_changes",
        ["at"],
        schema=SCHEMA,
        postgresql_include=["to_stage", "next_at"],
        postgresql_where=sa.text("next_at IS NOT NULL"),
    )
    ranks = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(FUNNEL))
    op.execute(f"UPDATE {SCHEMA}.stage_changes SET funnel_rank = CASE to_stage {ranks} END")
    op.execute(
        f"""
        UPDATE {SCHEMA}.stage_changes c SET
            next_at = (SELECT min(x.at) FROM {SCHEMA}.stage_changes x WHERE x.lead_id = c.lead_id
                       AND x.at >= c.at AND x.funnel_rank > c.funnel_rank),
            {", ".join(f"{n} = l.{n}" for n in COLUMNS)}
        FROM {SCHEMA}.leads l WHERE l.lead_id = c.lead_id
        """
    )


def downgrade() -> None:
    op.drop_index("ix_stage_changes_went_on", "stage_changes", schema=SCHEMA)
    op.drop_index("ix_stage_changes_at", "stage_changes", schema=SCHEMA)
    op.create_index("ix_stage_changes_stage_at", "stage_changes", ["to_stage", "at"], schema=SCHEMA)
    for name in ("funnel_rank", "next_at", *COLUMNS):
        op.drop_column("stage_changes", name, schema=SCHEMA)
