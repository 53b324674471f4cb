"""intake's one table, in the ``intake`` schema: the API keys (hashes only)."""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from leadrelay_shared.db import service_metadata

SCHEMA = "intake"
metadata = service_metadata(SCHEMA)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("scopes", pg.ARRAY(sa.Text), nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False),
    sa.Column("allowed_origins", pg.ARRAY(sa.Text), nullable=False, server_default="{}"),
    sa.Column("rate_limit", sa.Text),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)
