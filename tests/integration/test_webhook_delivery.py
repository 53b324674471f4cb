"""Webhook delivery from the PostgreSQL queue: retries with backoff, one delivery per webhook-id."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from devstack.ports import free_port
from devstack.receiver import Receiver
from leadrelay_shared.db import make_engine
from leadrelay_shared.delivery import Deliverer, Endpoint, http_client, replay
from leadrelay_shared.destinations import Destinations
from leadrelay_shared.migrate import upgrade
from router.adapters import orm
from router.adapters.repository import RouterUnitOfWork

pytestmark = pytest.mark.integration
SECRET = "whsec_aW50ZWdyYXRpb24tdGVzdC1zZWNyZXQ="


async def queue(engine: AsyncEngine, endpoint: Endpoint, lead_id: str) -> str:
    delivery_id = f"msg_{uuid.uuid4().hex}"
    async with RouterUnitOfWork(engine) as uow:
        await uow.enqueue_webhooks(
            [
                {
                    "id": delivery_id,
                    "endpoint_id": endpoint.id,
                    "url": endpoint.url,
                    "event_type": "lead.assigned",
                    "lead_id": lead_id,
                    "payload": {"type": "lead.assigned", "data": {"lead_id": lead_id}},
                }
            ]
        )
        await uow.commit()
    return delivery_id


@pytest.fixture
async def queue_db(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated router schema and an engine on it."""
    await asyncio.to_thread(upgrade, "router", database_url, orm.SCHEMA)
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


def failing_receiver(times: int) -> tuple[Receiver, Endpoint]:
    receiver = Receiver(secrets={"crm": SECRET}, port=free_port(), fail_next={"crm": times})
    receiver.start()
    endpoint = Endpoint(id="crm", url=f"http://127.0.0.1:{receiver.port}/hooks/crm", secret=SECRET)
    return receiver, endpoint


async def drain(deliverer: Deliverer, rounds: int) -> None:
    for _ in range(rounds):
        await deliverer.deliver_once()
        await asyncio.sleep(0.1)


async def test_failing_receiver_gets_the_webhook_once_after_retries(queue_db: AsyncEngine) -> None:
    engine = queue_db
    receiver, endpoint = failing_receiver(2)
    async with http_client(5) as client:
        # Two deliverers share the queue, as two router instances would.
        a, b = (
            Deliverer(
                engine, orm.deliveries, {"crm": endpoint}, client, schedule=(0.05, 0.05, 0.05)
            )
            for _ in range(2)
        )
        delivery_id = await queue(engine, endpoint, "lead-x")
        for _ in range(30):
            await asyncio.gather(a.deliver_once(), b.deliver_once())
            await asyncio.sleep(0.05)
    receiver.stop()
    assert [r.webhook_id for r in receiver.of("crm")] == [delivery_id]
    async with engine.connect() as conn:
        row = (
            await conn.execute(sa.select(orm.deliveries).where(orm.deliveries.c.id == delivery_id))
        ).one()
    assert row.status == "delivered" and row.attempts == 3 and row.last_status_code == 200


async def test_dead_after_schedule_then_replayed(queue_db: AsyncEngine) -> None:
    engine = queue_db
    receiver, endpoint = failing_receiver(3)
    async with http_client(5) as client:
        deliverer = Deliverer(
            engine, orm.deliveries, {"crm": endpoint}, client, schedule=(0.05, 0.05)
        )
        delivery_id = await queue(engine, endpoint, "lead-y")
        await drain(deliverer, 10)
        async with engine.connect() as conn:
            status = await conn.scalar(sa.select(orm.deliveries.c.status))
        assert status == "dead" and receiver.of("crm") == []
        assert await replay(engine, orm.deliveries) == 1
        await drain(deliverer, 3)
    receiver.stop()
    assert [r.webhook_id for r in receiver.of("crm")] == [delivery_id]


async def test_an_attempt_is_bounded_by_the_timeout_and_does_not_follow_redirects(
    queue_db: AsyncEngine,
) -> None:
    """A receiver that answers too late, one that redirects, and a port nobody listens on: each
    attempt fails with a reason and is retried later; the redirect's target is never called."""
    engine = queue_db
    hits: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = head.split(" ", 2)[1]
        hits.append(path)
        length = next(
            (
                int(line.split(":", 1)[1])
                for line in head.split("\r\n")
                if line.lower().startswith("content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        if path == "/slow":
            await asyncio.sleep(3)
        status = "302 Found\r\nLocation: /elsewhere" if path == "/moved" else "204 No Content"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoints = {
        name: Endpoint(id=name, url=url, secret=SECRET)
        for name, url in {
            "slow": f"http://127.0.0.1:{port}/slow",
            "moved": f"http://127.0.0.1:{port}/moved",
            "nobody": f"http://127.0.0.1:{free_port()}/hooks",
        }.items()
    }
    ids = {name: await queue(engine, e, f"lead-{name}") for name, e in endpoints.items()}
    async with http_client(0.5) as client:
        deliverer = Deliverer(engine, orm.deliveries, endpoints, client, schedule=(60,))
        started = asyncio.get_running_loop().time()
        assert await deliverer.deliver_once() == 3
        assert asyncio.get_running_loop().time() - started < 2.5
    server.close()
    async with engine.connect() as conn:
        rows = {r.id: r for r in (await conn.execute(sa.select(orm.deliveries))).all()}
    slow, moved, nobody = (rows[ids[n]] for n in ("slow", "moved", "nobody"))
    assert all(r.status == "pending" and r.attempts == 1 for r in (slow, moved, nobody))
    assert slow.last_error == "TimeoutError: no answer within 0.5 s"
    assert moved.last_status_code == 302 and moved.last_error == "HTTP 302"
    assert nobody.last_status_code is None and nobody.last_error.startswith("ClientConnector")
    assert "/elsewhere" not in hits


async def test_the_webhook_client_sends_no_cookie_a_receiver_set() -> None:
    heads: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # keep-alive: several requests on one connection
            try:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
            except asyncio.IncompleteReadError:
                break
            heads.append(head.lower())
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 204 No Content\r\nSet-Cookie: session=crm-1; Path=/\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    # a host name: aiohttp keeps no cookies for IP addresses anyway
    url = f"http://localhost:{server.sockets[0].getsockname()[1]}/hooks"
    async with http_client(5) as client:
        for _ in range(2):
            async with client.post(url, data=b"{}") as resp:
                assert resp.status == 204
    server.close()
    assert len(heads) == 2 and not any("\r\ncookie:" in h for h in heads)
    assert all("user-agent: leadrelay-webhooks/1" in h for h in heads)


async def test_queued_webhooks_belong_to_the_unit_of_work_and_a_queued_id_is_kept(
    queue_db: AsyncEngine,
) -> None:
    """``enqueue_webhooks`` (sent to asyncpg directly): the rows commit and roll back with the
    unit of work, the payload is stored as JSON, and a delivery id already queued is left as it
    was (a redelivered event queues nothing new)."""
    engine = queue_db
    lead = f"lead-{uuid.uuid4().hex[:8]}"
    rows = [
        {
            "id": f"msg_{lead}_{n}",
            "endpoint_id": "crm",
            "url": "http://crm.example/hooks",
            "event_type": "lead.assigned",
            "lead_id": lead,
            "payload": {"type": "lead.assigned", "data": {"n": n, "name": 'Zoë "Z" O\'Neil'}},
        }
        for n in range(3)
    ]
    async with RouterUnitOfWork(engine) as uow:
        await uow.enqueue_webhooks(rows[:2])  # and no commit: rolled back
    async with engine.connect() as conn:
        assert (
            await conn.scalar(sa.select(sa.func.count()).where(orm.deliveries.c.lead_id == lead))
            == 0
        )
    async with RouterUnitOfWork(engine) as uow:
        await uow.enqueue_webhooks(rows[:2])
        await uow.commit()
    changed = {**rows[1], "url": "http://elsewhere.example", "payload": {"changed": True}}
    async with RouterUnitOfWork(engine) as uow:
        await uow.enqueue_webhooks([changed, rows[2]])
        await uow.commit()
    async with engine.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(
                    orm.deliveries.c.id,
                    orm.deliveries.c.url,
                    orm.deliveries.c.payload,
                    orm.deliveries.c.status,
                    orm.deliveries.c.attempts,
                )
                .where(orm.deliveries.c.lead_id == lead)
                .order_by(orm.deliveries.c.id)
            )
        ).all()
    assert [(r.id, r.url, r.payload) for r in stored] == [
        (r["id"], r["url"], r["payload"]) for r in rows
    ]
    assert {(r.status, r.attempts) for r in stored} == {("pending", 0)}


async def test_webhooks_queued_leased_are_sent_once_at_commit_without_a_claim(
    queue_db: AsyncEngine,
) -> None:
    """``lease_webhooks_s``: the rows queued are leased to the queuing process (first attempt
    counted), so a deliverer's claim passes them over; ``Deliverer.take`` sends each once and
    records it. A row of a disabled endpoint is queued pending and unleased, a delivery id
    already queued is left alone and not taken, and a leased row its process never sent is
    claimed once its lease has run out. A delivery id given twice is taken once."""
    engine = queue_db
    receiver, endpoint = failing_receiver(0)
    lead = f"lead-{uuid.uuid4().hex[:8]}"
    off = f"off-{uuid.uuid4().hex[:8]}"
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(orm.endpoint_states).values(
                endpoint_id=off,
                disabled_at=sa.func.now(),
                disabled_reason="HTTP 410",
                updated_at=sa.func.now(),
            )
        )

    def row(n: int, endpoint_id: str = "crm") -> dict[str, object]:
        return {
            "id": f"msg_{lead}_{n}",
            "endpoint_id": endpoint_id,
            "url": endpoint.url,
            "event_type": "lead.assigned",
            "lead_id": lead,
            "payload": {"type": "lead.assigned", "data": {"n": n, "lead_id": lead}},
        }

    async with RouterUnitOfWork(engine) as uow:
        await uow.enqueue_webhooks([row(0)])  # queued before, unleased
        await uow.commit()
    async with http_client(5) as client:
        deliverer = Deliverer(
            engine,
            orm.deliveries,
            {"crm": endpoint},
            client,
            states=orm.endpoint_states,
            attempts=orm.attempts,
        )
        async with RouterUnitOfWork(engine, lease_webhooks_s=60) as uow:
            await uow.enqueue_webhooks([row(0), row(1), row(1), row(2), row(3, off)])
            await uow.commit()
        assert [r["id"] for r in uow.leased_webhooks] == [f"msg_{lead}_1", f"msg_{lead}_2"]
        async with engine.connect() as conn:
            queued = {
                r.id: (r.attempts, r.leased)
                for r in (
                    await conn.execute(
                        sa.select(
                            orm.deliveries.c.id,
                            orm.deliveries.c.attempts,
                            orm.deliveries.c.lease_until.is_not(None).label("leased"),
                        ).where(orm.deliveries.c.lead_id == lead)
                    )
                ).all()
            }
        assert queued == {
            f"msg_{lead}_0": (0, False),
            f"msg_{lead}_1": (1, True),
            f"msg_{lead}_2": (1, True),
            f"msg_{lead}_3": (0, False),
        }
        assert await deliverer.deliver_once() == 1  # the old row alone: the leased are not due
        deliverer.take(uow.leased_webhooks)
        for _ in range(100):  # until both attempts are recorded, after their answers
            async with engine.connect() as conn:
                done = await conn.scalar(
                    sa.select(sa.func.count()).where(
                        orm.deliveries.c.id.in_([f"msg_{lead}_1", f"msg_{lead}_2"]),
                        orm.deliveries.c.status == "delivered",
                    )
                )
            if done == 2:
                break
            await asyncio.sleep(0.1)
        async with RouterUnitOfWork(engine, lease_webhooks_s=60) as uow:
            await uow.enqueue_webhooks([row(4)])  # leased, and its process "stops" unsent
            await uow.commit()
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(orm.deliveries)
                .where(orm.deliveries.c.id == f"msg_{lead}_4")
                .values(lease_until=sa.func.now() - sa.text("interval '1 second'"))
            )
        assert await deliverer.deliver_once() == 1
    receiver.stop()
    assert sorted(r.webhook_id for r in receiver.of("crm", lead)) == [
        f"msg_{lead}_{n}" for n in range(5) if n != 3
    ]
    async with engine.connect() as conn:
        stored = {
            r.id: r
            for r in (
                await conn.execute(
                    sa.select(orm.deliveries).where(orm.deliveries.c.lead_id == lead)
                )
            ).all()
        }
        logged = await conn.scalar(
            sa.select(sa.func.count()).where(orm.attempts.c.delivery_id.in_(list(stored)))
        )
    assert {i: (r.status, r.attempts, r.lease_until) for i, r in stored.items()} == {
        f"msg_{lead}_0": ("delivered", 1, None),
        f"msg_{lead}_1": ("delivered", 1, None),
        f"msg_{lead}_2": ("delivered", 1, None),
        f"msg_{lead}_3": ("pending", 0, None),
        f"msg_{lead}_4": ("delivered", 2, None),
    }
    assert logged == 4


async def test_a_connection_the_receiver_closes_as_a_webhook_is_sent_does_not_fail_the_attempt(
    queue_db: AsyncEngine,
) -> None:
    """A receiver closes a keep-alive connection just as the next webhook goes out on it (one
    closing idle connections, whose close a busy process reads late). The webhook is sent again
    at once on a new connection, and its first attempt delivers it: before, the attempt failed
    (``ServerDisconnectedError``) and the lead waited for the first retry, 5 s by default."""
    engine = queue_db
    seen: list[bytes] = []

    async def answers_one_request_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        await reader.readexactly(length)
        seen.append(
            next(line for line in head.split(b"\r\n") if line.lower().startswith(b"webhook-id"))
        )
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        await reader.read(1)  # the next request on this connection: closed unanswered
        writer.close()

    server = await asyncio.start_server(answers_one_request_per_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    endpoint = Endpoint(id="crm", url=f"http://127.0.0.1:{port}/hooks/crm", secret=SECRET)
    lead = f"lead-{uuid.uuid4().hex[:8]}"
    try:
        async with http_client(5) as client:
            deliverer = Deliverer(engine, orm.deliveries, {"crm": endpoint}, client, schedule=(60,))
            first = await queue(engine, endpoint, lead)
            assert await deliverer.deliver_once() == 1  # its connection is now in the pool
            second = await queue(engine, endpoint, lead)
            assert await deliverer.deliver_once() == 1
    finally:
        server.close()
    async with engine.connect() as conn:
        rows = {
            r.id: (r.status, r.attempts, r.last_error)
            for r in (
                await conn.execute(
                    sa.select(orm.deliveries).where(orm.deliveries.c.lead_id == lead)
                )
            ).all()
        }
    assert rows == {first: ("delivered", 1, None), second: ("delivered", 1, None)}
    assert seen == [f"webhook-id: {first}".encode(), f"webhook-id: {second}".encode()]


async def test_an_address_inside_the_network_is_refused_at_delivery(queue_db: AsyncEngine) -> None:
    """A configuration that names the loopback address by IP or by a name that resolves to it
    reaches no receiver where such destinations are not allowed: each attempt is refused, and
    the delivery is dead-lettered with the reason."""
    engine = queue_db
    receiver = Receiver(secrets={"crm": SECRET, "named": SECRET}, port=free_port())
    receiver.start()
    by_ip = Endpoint(id="crm", url=f"http://127.0.0.1:{receiver.port}/hooks/crm", secret=SECRET)
    by_name = Endpoint(
        id="named", url=f"http://localhost:{receiver.port}/hooks/named", secret=SECRET
    )
    guard = Destinations(https_only=False, allow_inside=False)
    async with http_client(5, destinations=guard) as client:
        deliverer = Deliverer(
            engine,
            orm.deliveries,
            {"crm": by_ip, "named": by_name},
            client,
            schedule=(0.05,),
            destinations=guard,
        )
        ids = [await queue(engine, by_ip, "lead-ip"), await queue(engine, by_name, "lead-name")]
        await drain(deliverer, 5)
    receiver.stop()
    assert receiver.received == []
    async with engine.connect() as conn:
        rows = {
            r.id: r
            for r in await conn.execute(
                sa.select(orm.deliveries).where(orm.deliveries.c.id.in_(ids))
            )
        }
    ip_row, name_row = rows[ids[0]], rows[ids[1]]
    assert ip_row.status == "dead" and "127.0.0.1 is not a public address" in ip_row.last_error
    assert name_row.status == "dead" and "localhost resolves only to" in name_row.last_error
