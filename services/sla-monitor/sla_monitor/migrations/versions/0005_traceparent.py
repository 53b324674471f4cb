"""sla: outbox rows, webhooks and clocks keep their lead's trace context, so an alert fired
hours later belongs to the lead's trace.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

from leadrelay_shared.db_migrations import add_traceparent_v5, drop_traceparent_v5

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "sla"


def upgrade() -> None:
    add_traceparent_v5(SCHEMA, deliveries=True)
    op.add_column("clocks", sa.Column("traceparent", sa.Text), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("clocks", "traceparent", schema=SCHEMA)
    drop_traceparent_v5(SCHEMA, deliveries=True)
