"""scoring's tables, in the ``scoring`` schema."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import outbox_table, processed_events_table, service_metadata
from leadrelay_shared.uow import CommonTables

SCHEMA = "scoring"
metadata = service_metadata(SCHEMA)

leads = sa.Table(
    "leads",
    metadata,
    sa.Column("lead_id", sa.Text, primary_key=True),
    sa.Column("snapshot", pg.JSONB, nullable=False),
    sa.Column("stage", sa.Text),
    sa.Column("stage_entered_at", sa.DateTime(timezone=True)),
    sa.Column("fit_score", sa.Integer, nullable=False, server_default="0"),
    sa.Column("engagement_score", sa.Integer, nullable=False, server_default="0"),
    sa.Column("form_fills", sa.Integer, nullable=False, server_default="0"),
    sa.Column("model_version", sa.Text),
    sa.Column("fit_grade", sa.Text, nullable=False, server_default="F"),
    sa.Column("snapshot_at", sa.DateTime(timezone=True)),
    sa.Column("hits", pg.JSONB, nullable=False, server_default="[]"),
    sa.Column("fit_parts", pg.JSONB, nullable=False, server_default="[]"),
    sa.Column("engagement_since", sa.DateTime(timezone=True)),
    sa.Column("cycle", sa.Integer, nullable=False, server_default="0"),
    sa.Column("erased_at", sa.DateTime(timezone=True)),
    sa.Index("ix_leads_stage_entered_at", "stage", "stage_entered_at"),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
)

timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("detail", pg.JSONB, nullable=False),
    sa.Column("event_id", pg.UUID(as_uuid=True)),
    # the events of a window, for what-ifs
    sa.Index(
        "ix_timeline_inputs",
        "at",
        postgresql_include=["lead_id"],
        postgresql_where=sa.text("kind IN ('form_submitted', 'engagement', 'feedback')"),
    ),
)

stage_history = sa.Table(
    "stage_history",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("from_stage", sa.Text),
    sa.Column("to_stage", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("reasons", pg.JSONB, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("cause_event_id", pg.UUID(as_uuid=True)),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("checksum", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_loaded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_activated_at", sa.DateTime(timezone=True), nullable=False),
)

outbox = outbox_table(metadata)
processed = processed_events_table(metadata)
common = CommonTables(outbox=outbox, processed=processed)
