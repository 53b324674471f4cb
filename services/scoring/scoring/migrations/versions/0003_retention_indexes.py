"""scoring: indexes for the retention sweep (old processed event ids).

Revision ID: 0003
"""

from leadrelay_shared.db_migrations import create_retention_indexes_v3, drop_retention_indexes_v3

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
SCHEMA = "scoring"


def upgrade() -> None:
    create_retention_indexes_v3(SCHEMA, deliveries=False)


def downgrade() -> None:
    drop_retention_indexes_v3(SCHEMA, deliveries=False)
