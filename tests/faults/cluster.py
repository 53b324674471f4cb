"""The stack the fault tier breaks: three Kafka nodes, each on a host of its own (a network
namespace, so that a cut is a real one), PostgreSQL (durable), two instances of intake,
scoring, router and sla-monitor, and the webhook receiver standing in for the sales system and
the ops channel; with the faults it suffers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import kafka, postgres
from devstack.netns import Network
from devstack.ports import free_port, wait_for_port
from devstack.receiver import Receiver
from devstack.stack import SERVICES, Stack
from leadrelay_shared.kafka import ensure_topics
from tests.e2e.stack import CRM_SECRET, OPS_SECRET, rules_files

INSTANCES = 2
SERVED = ("intake", "scoring", "router", "sla-monitor")
REPS = ("rep-a", "rep-b", "rep-c", "rep-d")
SLA_SECONDS = 10
# retries over more than two minutes, so that a receiver down for one misses nothing
SCHEDULE = ",".join(["0.5", "1", "2", "4", *["5"] * 30])


@dataclass
class Cluster:
    work: Path
    network: Network
    kafka: kafka.KafkaCluster
    pg: postgres.PostgresServer
    stack: Stack
    receiver: Receiver

    @classmethod
    def start(cls, work: Path) -> Cluster:
        network = Network()
        network.create()
        receiver = Receiver(secrets={"crm": CRM_SECRET, "ops": OPS_SECRET}, port=free_port())
        receiver.start()
        pg = cluster = None
        try:
            cluster = kafka.start_cluster(
                work / "kafka", 3, log_path=work / "kafka.log", network=network
            )
            asyncio.run(ensure_topics(cluster.bootstrap, replication=3))
            pg = postgres.start(work / "pg", durable=True, log_path=work / "pg.log")
            (work / "services").mkdir()
            stack = Stack(
                data_dir=work / "services",
                pick_free_ports=True,
                log_file=work / "services.log",
                bootstrap=cluster.bootstrap,
                database_url=pg.url,
                replicas=INSTANCES,
                extra_env=_env(work, receiver.port),
            )
            stack.start_services(SERVED)
            stack.wait_ready(180)
        except BaseException:
            receiver.stop()
            if cluster is not None:
                cluster.stop()
            if pg is not None:
                pg.stop()
            network.remove()
            raise
        return cls(work, network, cluster, pg, stack, receiver)

    def stop(self) -> None:
        self.stack.stop()
        self.receiver.stop()
        self.kafka.stop()
        self.pg.stop()
        self.network.remove()

    # the faults

    async def leader_of(self, topic: str, partition: int) -> int:
        alive = ",".join(n.bootstrap for n in self.kafka.nodes if n.process.poll() is None)
        leaders = await kafka.partition_leaders(alive, topic)
        return leaders[partition][0]

    def kill_node(self, node_id: int) -> None:
        """``kill -9``: no controlled shutdown, nothing flushed."""
        node = self.kafka.nodes[node_id - 1]
        node.process.kill()
        node.process.wait()

    def restart_node(self, node_id: int) -> None:
        node = self.kafka.nodes[node_id - 1]
        assert node.restart is not None
        node.process = node.restart()
        wait_for_port(node.port, 90, host=node.host, alive=node.process)

    def cut_node(self, node_id: int) -> None:
        self.network.cut(f"kafka-{node_id}")

    def restore_node(self, node_id: int) -> None:
        self.network.restore(f"kafka-{node_id}")

    def kill_instance(self, name: str) -> None:
        """``kill -9`` one instance (``router-2``, say)."""
        proc = self.stack.processes[name]
        proc.kill()
        proc.wait()

    def restart_instance(self, name: str) -> None:
        """Start an instance again on its port, as an orchestrator does after a crash."""
        spec = next(s for s in SERVICES if name == s.name or name.startswith(f"{s.name}-"))
        self.stack.start_service(spec, self.stack.ports[name], name)

    def crash_postgres(self) -> None:
        """``kill -9`` of the postmaster: no checkpoint, crash recovery at the next start."""
        self.pg.process.kill()
        self.pg.process.wait()

    def restart_postgres(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:  # the old backends notice their postmaster's death and leave
            try:
                self.pg = postgres.start(
                    self.pg.data_dir,
                    port=self.pg.port,
                    durable=True,
                    log_path=self.work / "pg.log",
                )
                return
            except (RuntimeError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def _env(work: Path, receiver_port: int) -> dict[str, str]:
    env = rules_files(work, receiver_port, REPS, SLA_SECONDS) | {
        "ROUTER_WEBHOOK_SCHEDULE_S": SCHEDULE,
        "SLA_WEBHOOK_SCHEDULE_S": SCHEDULE,
        "INTAKE_RATE_LIMIT": "100000/second",
    }
    for prefix in ("INTAKE", "SCORING", "ROUTER", "SLA"):
        env[f"{prefix}_LOG_LEVEL"] = "warning"
    return env
