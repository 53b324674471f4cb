"""Database helpers: async engines, a naming convention, and the tables every service owns.

Each service keeps its tables in a schema of its own. The outbox, the processed-events table and
the webhook delivery queue have the same shape in every service, so they are defined once here
and created in the service's schema by its migrations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import jsonio

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def async_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the asyncpg driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    name: str = "leadrelay",
    server_settings: Mapping[str, str] | None = None,
) -> AsyncEngine:
    """An engine whose connections show as ``name`` in ``pg_stat_activity``, with
    ``server_settings`` (PostgreSQL settings) on each of its connections.

    Pooled connections are not pinged at checkout: with asyncpg SQLAlchemy's ping is three round
    trips (``BEGIN``, ``;``, ``ROLLBACK``) before every transaction. A connection that died in the
    pool (the server restarted, or ended it) fails its next statement instead and is discarded (when
    SQLAlchemy meets the error itself, with every connection of the pool made before it), and the
    work is retried: a consumer's batch is transient on such an error and runs again
    (``consumer.is_transient``; ``tests/integration/test_consumer.py`` ends the connections of a
    running consumer), and the relays and other background loops run their next round."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        json_serializer=jsonio.dumps_str,
        json_deserializer=jsonio.loads,
        connect_args={"server_settings": {"application_name": name, **(server_settings or {})}},
    )


def array_param(values: Iterable[Any], item_type: Any) -> sa.BindParameter[Any]:
    """The values as one array parameter: a statement that takes it is the same statement
    whatever the count, so PostgreSQL parses and plans it, and asyncpg prepares it, once."""
    return sa.bindparam(None, list(values), type_=pg.ARRAY(item_type))


def any_of(column: sa.ColumnElement[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """``column = ANY($1)`` (``array_param``); ``IN ($1, …, $n)`` is a new statement for every
    count."""
    return column == sa.any_(array_param(values, column.type))


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn``, inside ``conn``'s transaction, for statements
    sent to asyncpg directly. SQLAlchemy opens the database transaction lazily, on its first
    statement; one sent to asyncpg before that would run on its own and commit at once. So when
    asyncpg is not yet in a transaction, this opens it as SQLAlchemy's asyncpg adapter does
    before its own first statement (``_start_transaction``: the one ``BEGIN``, which the
    adapter then commits or rolls back with the unit of work). A no-op statement through
    SQLAlchemy would do the same at the cost of one more round trip per transaction. A
    connection found dead there is discarded and reported as SQLAlchemy reports one (an
    ``InterfaceError`` with ``connection_invalidated``), so callers retry as they would.
    ``test_statements_sent_to_asyncpg_directly_belong_to_the_unit_of_work`` holds this to
    SQLAlchemy's behaviour."""
    raw = await conn.get_raw_connection()
    found = raw.driver_connection
    assert found is not None
    if not found.is_in_transaction():
        try:
            await raw.dbapi_connection._start_transaction()  # type: ignore[union-attr]
        except Exception as exc:  # SQLAlchemy does not see this call: say what it would
            if not conn.dialect.is_disconnect(cast(Any, exc), raw.dbapi_connection, None):
                raise
            await conn.invalidate(exc)
            raise sa.exc.InterfaceError("BEGIN", None, exc, connection_invalidated=True) from exc
        assert found.is_in_transaction(), "the unit of work's transaction did not start"
    return found


def sql_type(column: sa.Column[Any]) -> str:
    """The column's PostgreSQL type as written in a cast (``timestamp with time zone``)."""
    return str(column.type.compile(dialect=pg.dialect())).lower()  # type: ignore[no-untyped-call]


def unnest_insert(
    table: sa.Table, columns: Sequence[str], conflict: str = "DO NOTHING", returning: str = ""
) -> str:
    """``INSERT … SELECT * FROM unnest($1::type[], …) ON CONFLICT … [RETURNING …]``: many rows
    in one statement, one array parameter per column, the same statement whatever the count
    (parsed, planned and prepared once), unlike an executemany that runs once per row."""
    arrays = ", ".join(f"${i}::{sql_type(table.c[name])}[]" for i, name in enumerate(columns, 1))
    return (
        f"INSERT INTO {table.schema}.{table.name} AS t ({', '.join(columns)}) "
        f"SELECT * FROM unnest({arrays}) ON CONFLICT {conflict}"
        + (f" RETURNING {returning}" if returning else "")
    )


async def insert_rows(
    conn: AsyncConnection, sql: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]
) -> list[Any]:
    """Run an ``unnest_insert`` statement for ``rows`` (dicts with every one of ``columns``)
    on the connection, inside its transaction; returns what it returns."""
    return list(await (await driver(conn)).fetch(sql, *([r[c] for r in rows] for c in columns)))


async def copy_rows(
    conn: AsyncConnection, table: sa.Table, columns: Sequence[str], records: Iterable[Sequence[Any]]
) -> None:
    """Append rows with PostgreSQL's ``COPY … FROM STDIN`` (binary), inside the connection's
    transaction. For the largest plain inserts (outbox, router's assignments, scoring's timeline):
    an executemany through SQLAlchemy spends more on per-row parameter processing than PostgreSQL
    spends inserting. JSON(B) values are passed already serialised (``jsonio``), as the engine's
    codec expects; a conflict is an error, as for an ``INSERT``."""
    await (await driver(conn)).copy_records_to_table(
        table.name, schema_name=table.schema, columns=list(columns), records=records
    )


def service_metadata(schema: str) -> sa.MetaData:
    return sa.MetaData(schema=schema, naming_convention=NAMING_CONVENTION)


def outbox_table(metadata: sa.MetaData, *, v1: bool = False) -> sa.Table:
    """Events waiting to be published, written in the same transaction as the state they
    describe; the relay deletes a row once Kafka has it. ``v1`` is the table as its first
    migration made it, with a ``published_at`` column that migration 0004 drops and without the
    ``traceparent`` (the lead's trace, sent on as ``ce_traceparent``) that 0005 adds."""
    v1_columns = (
        [
            sa.Column("published_at", sa.DateTime(timezone=True)),
            sa.Index(
                "ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")
            ),
        ]
        if v1
        else []
    )
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", pg.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        *v1_columns,
        *([] if v1 else [sa.Column("traceparent", sa.Text)]),
    )


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    """Event ids a consumer has applied: the idempotency record, written with the state."""
    return sa.Table(
        "processed_events",
        metadata,
        sa.Column("event_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column(
            "processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def deliveries_table(metadata: sa.MetaData, *, v1: bool = False) -> sa.Table:
    """The persistent queue of outgoing webhooks (to sales systems or to ops). ``v1`` is the
    table as its first migration made it, without the ``traceparent`` migration 0005 adds."""
    return sa.Table(
        "webhook_deliveries",
        metadata,
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("endpoint_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("lead_id", sa.Text, nullable=False),
        sa.Column("payload", pg.JSONB, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        *([] if v1 else [sa.Column("traceparent", sa.Text)]),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
        ),
    )


def endpoint_states_table(metadata: sa.MetaData) -> sa.Table:
    """Endpoints a receiver told us to stop calling (HTTP 410), until an operator re-enables
    them."""
    return sa.Table(
        "webhook_endpoints",
        metadata,
        sa.Column("endpoint_id", sa.Text, primary_key=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("disabled_reason", sa.Text),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def delivery_attempts_table(metadata: sa.MetaData) -> sa.Table:
    """One row per attempt of a webhook delivery, so an operator can see what happened when."""
    return sa.Table(
        "webhook_attempts",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("delivery_id", sa.Text, nullable=False, index=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("duration_ms", sa.Integer),
    )
