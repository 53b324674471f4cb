"""The fault tier (``make test-faults``): steady load on a three-node Kafka cluster with two
instances of each service while, one after another, the webhook receiver is down for the first
minute, the leader of a busy partition is killed with ``kill -9``, one instance of each service
is killed with ``kill -9``, a broker is cut off the network and comes back, and PostgreSQL is
crash-stopped and restarted. For each: nothing accepted is lost, nothing is delivered twice
under two assignments or webhook ids, no alert is doubled or missing, round robin stays within
one lead per rep; the table printed at the end gives the figures, with intake's longest run of
``503`` and the time each fault took to recover from."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from devstack.netns import unavailable
from leadrelay_shared.contracts import Topics
from tests.faults.cluster import INSTANCES, REPS, SERVED, SLA_SECONDS, Cluster
from tests.faults.load import Load, Row, ledger

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 15.0  # leads a second, steady
BEFORE_S = 5.0  # load before each fault
AFTER_S = 20.0  # load after each fault is healed
DRAIN_S = 150.0  # the longest a lead may take to arrive after the load stops
ROWS: list[Row] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    why = unavailable()
    if why:
        pytest.fail(f"the fault tier needs network namespaces: {why}")
    started = Cluster.start(tmp_path_factory.mktemp("faults"))
    yield started
    started.stop()
    print("\n\n" + Row.HEADER)
    for row in ROWS:
        print(row.line())
    Path(started.work.parent / "faults.md").write_text(
        "\n".join([Row.HEADER, *(r.line() for r in ROWS)]) + "\n"
    )


async def under_load(
    cluster: Cluster,
    name: str,
    fault: Callable[[], Awaitable[None]],
    heal: Callable[[], Awaitable[None]],
    fault_s: float,
) -> Row:
    """Load; the fault after ``BEFORE_S``; healed ``fault_s`` later; load for ``AFTER_S`` more;
    then wait until every accepted lead arrived and its SLA alert fired (or ``DRAIN_S``)."""
    key = await asyncio.to_thread(cluster.stack.api_key, f"faults-{name[:12]}")
    urls = [cluster.stack.url(n) for n in cluster.stack.instances["intake"]]
    load = Load(urls, key, RATE)
    since = time.time()
    stop = asyncio.Event()
    running = asyncio.create_task(load.run(stop))
    await asyncio.sleep(BEFORE_S)
    fault_at = time.time()
    try:
        await fault()
        await asyncio.sleep(fault_s)
    finally:
        await heal()
    await asyncio.sleep(AFTER_S)
    stop.set()
    await running
    deadline = time.monotonic() + DRAIN_S
    while time.monotonic() < deadline:
        row = ledger(name, load, since, cluster.receiver.received, fault_at, REPS)
        if row.lost == 0 and row.alerts_lost == 0:
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(SLA_SECONDS)  # a doubled alert would come after the first
    row = ledger(name, load, since, cluster.receiver.received, fault_at, REPS)
    ROWS.append(row)
    print("\n" + Row.HEADER + "\n" + row.line())
    return row


def holds(row: Row) -> None:
    assert row.accepted > 0
    assert row.accepted == row.posted, row  # a client that retries gets every lead in
    assert row.lost == 0, row
    assert row.doubled == 0, row
    assert row.alerts_lost == 0 and row.alerts_doubled == 0, row
    assert row.spread <= 1, row


async def test_the_webhook_receiver_down_for_the_first_minute(cluster: Cluster) -> None:
    async def down() -> None:
        cluster.receiver.stop()

    async def up() -> None:
        cluster.receiver.start()

    holds(await under_load(cluster, "webhook receiver down 60 s", down, up, 60.0))


async def test_the_leader_of_a_busy_partition_killed(cluster: Cluster) -> None:
    victim: list[int] = []

    async def kill() -> None:
        victim.append(await cluster.leader_of(Topics.INTAKE, 0))
        cluster.kill_node(victim[0])

    async def restart() -> None:
        await asyncio.to_thread(cluster.restart_node, victim[0])

    holds(await under_load(cluster, "partition leader kill -9", kill, restart, 15.0))


async def test_one_instance_of_each_service_killed(cluster: Cluster) -> None:
    victims = [f"{name}-{INSTANCES}" for name in SERVED]

    async def kill() -> None:
        for name in victims:
            cluster.kill_instance(name)

    async def restart() -> None:
        for name in victims:
            cluster.restart_instance(name)

    holds(await under_load(cluster, "one instance of each service kill -9", kill, restart, 10.0))


async def test_a_broker_cut_off_the_network(cluster: Cluster) -> None:
    victim: list[int] = []

    async def cut() -> None:
        victim.append(await cluster.leader_of(Topics.SCORING, 0))
        cluster.cut_node(victim[0])

    async def restore() -> None:
        cluster.restore_node(victim[0])

    holds(await under_load(cluster, "broker cut off the network 20 s", cut, restore, 20.0))


async def test_postgresql_crash_stopped_and_restarted(cluster: Cluster) -> None:
    async def crash() -> None:
        cluster.crash_postgres()

    async def restart() -> None:
        await asyncio.to_thread(cluster.restart_postgres)

    holds(await under_load(cluster, "PostgreSQL kill -9, restarted after 5 s", crash, restart, 5.0))
