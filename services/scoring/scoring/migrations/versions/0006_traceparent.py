"""scoring: outbox rows keep their lead's trace context.

Revision ID: 0006
"""

from leadrelay_shared.db_migrations import add_traceparent_v5, drop_traceparent_v5

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
SCHEMA = "scoring"


def upgrade() -> None:
    add_traceparent_v5(SCHEMA, deliveries=False)


def downgrade() -> None:
    drop_traceparent_v5(SCHEMA, deliveries=False)
