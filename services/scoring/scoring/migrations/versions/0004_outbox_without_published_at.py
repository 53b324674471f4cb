"""scoring: the outbox loses its always-empty ``published_at`` column.

Revision ID: 0004
"""

from leadrelay_shared.db_migrations import add_outbox_published_at_v4, drop_outbox_published_at_v4

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
SCHEMA = "scoring"


def upgrade() -> None:
    drop_outbox_published_at_v4(SCHEMA)


def downgrade() -> None:
    add_outbox_published_at_v4(SCHEMA)
