"""console's own tables, in the ``console`` schema: its operator accounts. Everything it shows
comes from the other services' APIs."""

import sqlalchemy as sa

from leadrelay_shared.db import service_metadata

SCHEMA = "console"
metadata = service_metadata(SCHEMA)
TS = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("signed_in_at", TS),
    sa.CheckConstraint("role IN ('viewer', 'operator')", name="role"),
)
