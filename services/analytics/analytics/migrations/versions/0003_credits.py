"""analytics: each deal's credits under every attribution model, kept by the writer.

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from analytics import domain

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
SCHEMA = "analytics"
CHUNK = 5_000  # leads credited per round of the backfill


def upgrade() -> None:
    op.create_table(
        "credits",
        sa.Column("deal_event", sa.UUID(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("lead_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("deal_event", "model", "by", "key", name=op.f("pk_credits")),
        schema=SCHEMA,
    )
    op.create_index("ix_credits_lead_id", "credits", ["lead_id"], schema=SCHEMA)
    op.create_index("ix_credits_model_by_at", "credits", ["model", "by", "at"], schema=SCHEMA)
    _backfill()


def _backfill() -> None:
    """Credit the deals already recorded, as the writer will credit new ones."""
    conn = op.get_bind()
    leads = [
        r[0]
        for r in conn.execute(
            sa.text(
                f"SELECT DISTINCT lead_id FROM {SCHEMA}.feedback WHERE amount_minor IS NOT NULL "
                "AND feedback IN ('converted', 'won') ORDER BY 1"
            )
        )
    ]
    deals_sql = sa.text(
        f"""
        SELECT f.event_id, f.lead_id, f.at, f.feedback, f.amount_minor, f.currency,
               (SELECT max(s.at) FROM {SCHEMA}.stage_changes s WHERE s.lead_id = f.lead_id
                  AND s.to_stage = 'mql' AND s.at <= f.at) AS mql_at,
               (SELECT max(s.at) FROM {SCHEMA}.stage_changes s WHERE s.lead_id = f.lead_id
                  AND s.to_stage = 'opportunity' AND s.at <= f.at) AS opened_at
        FROM {SCHEMA}.feedback f
        WHERE f.lead_id = ANY(:leads) AND f.feedback IN ('converted', 'won')
          AND f.amount_minor IS NOT NULL
        """
    ).bindparams(sa.bindparam("leads", type_=pg.ARRAY(sa.Text)))
    touches_sql = sa.text(
        f"SELECT lead_id, at, source, campaign, kind FROM {SCHEMA}.touches "
        "WHERE lead_id = ANY(:leads) AND origin = 'marketing' ORDER BY lead_id, at, event_id"
    ).bindparams(sa.bindparam("leads", type_=pg.ARRAY(sa.Text)))
    table = sa.table(
        "credits",
        *(sa.column(c) for c in ("deal_event", "model", "by", "key", "lead_id", "at")),
        *(sa.column(c) for c in ("kind", "currency", "amount_minor")),
        schema=SCHEMA,
    )
    for i in range(0, len(leads), CHUNK):
        chunk = leads[i : i + CHUNK]
        deals = [
            domain.Deal(
                lead_id=r.lead_id,
                at=r.at,
                kind="revenue" if r.feedback == "won" else "pipeline",
                amount_minor=r.amount_minor,
                currency=r.currency,
                mql_at=r.mql_at,
                opened_at=r.opened_at,
                event_id=r.event_id,
            )
            for r in conn.execute(deals_sql, {"leads": chunk})
        ]
        touches: dict[str, list[domain.Touch]] = {}
        for r in conn.execute(touches_sql, {"leads": chunk}):
            touches.setdefault(r.lead_id, []).append(
                domain.Touch(r.at, r.source, r.campaign, r.kind)
            )
        rows = [c | {"key": c["key"] or ""} for c in domain.credits(deals, touches)]
        if rows:
            conn.execute(table.insert(), rows)


def downgrade() -> None:
    op.drop_table("credits", schema=SCHEMA)
