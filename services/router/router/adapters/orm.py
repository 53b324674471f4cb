"""router's tables, in the ``router`` schema."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import (
    deliveries_table,
    outbox_table,
    processed_events_table,
    service_metadata,
)
from leadrelay_shared.uow import CommonTables

SCHEMA = "router"
metadata = service_metadata(SCHEMA)

assignments = sa.Table(
    "assignments", metadata,
    sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
    sa.Column("lead_id", sa.Text, nullable=False, index=True),
    sa.Column("stage", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text),
    sa.Column("team_id", sa.Text, nullable=False),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("decision", pg.JSONB, nullable=False),
    sa.Column("config_version", sa.Text, nullable=False),
    sa.Column("cause_event_id", pg.UUID(as_uuid=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

rr_state = sa.Table(
    "round_robin_state", metadata,
    sa.Column("pool_id", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

outbox = outbox_table(metadata)
processed = processed_events_table(metadata)
deliveries = deliveries_table(metadata)
common = CommonTables(outbox=outbox, processed=processed, deliveries=deliveries)
