"""router: assignments keep the order they were made in, and are found by time.

A what-if replays a window of assignments in the order they were made; several made in one
batch share their ``created_at``, so each row gets a number from an identity column (rows that
exist get theirs in storage order), and the window is read through an index on both.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
SCHEMA = "router"


def upgrade() -> None:
    op.add_column(
        "assignments",
        sa.Column("seq", sa.BigInteger, sa.Identity(always=False), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_assignments_created_at_seq", "assignments", ["created_at", "seq"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_created_at_seq", "assignments", schema=SCHEMA)
    op.drop_column("assignments", "seq", schema=SCHEMA)
