"""Apache Kafka in KRaft mode, run from jars Maven fetched from Maven Central: one node, or a
cluster of nodes that are each broker and controller (replication 3, ``min.insync.replicas``
2), as production runs it."""

from __future__ import annotations

import base64
import functools
import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .netns import Network
from .ports import free_port, spawn_logged, wait_for_port

DEPLOY = Path(__file__).resolve().parent.parent
POM = DEPLOY / "kafka" / "pom.xml"
JARS = DEPLOY / "kafka" / "target" / "dependency"

LOG4J = """status = error
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def ensure_jars() -> Path:
    """Fetch the broker's jars with Maven once; later runs use the cache."""
    if not list(JARS.glob("kafka_2.13-*.jar")):
        mvn = shutil.which("mvn")
        if mvn is None:
            raise RuntimeError(
                "Maven (mvn) is needed to fetch Kafka; install it or set "
                "KAFKA_BOOTSTRAP_SERVERS to an existing cluster"
            )
        subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
            ],
            check=True,
        )
    return JARS


def classpath() -> str:
    return str(ensure_jars() / "*")


@dataclass
class KafkaServer:
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    restart: Callable[[], subprocess.Popen[bytes]] | None = None
    """Start the node again as it was started (a cluster's nodes, after a crash)."""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout_s: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _properties(
    log_dir: Path,
    port: int,
    controller_port: int,
    *,
    node_id: int = 1,
    voters: str | None = None,
    host: str = "127.0.0.1",
) -> str:
    """A node's configuration: alone (``voters`` None), or one of a cluster of ``voters``
    (``id@host:port,...``), whose topics are replicated to three nodes with two in sync."""
    # Topics keep their whole history, so that analytics can be rebuilt from it; so do the
    # groups' offsets, or a stack stopped longer than Kafka's default week would find its
    # groups gone and read that history again from the start.
    quorum = (
        f"controller.quorum.voters={voters}"
        if voters
        else f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}"
    )
    copies, in_sync = (min(3, voters.count("@")), 2) if voters else (1, 1)
    return f"""process.roles=broker,controller
node.id={node_id}
{quorum}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=6
default.replication.factor={copies}
min.insync.replicas={in_sync}
offsets.topic.replication.factor={copies}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={copies}
transaction.state.log.min.isr={in_sync}
share.coordinator.state.topic.replication.factor={copies}
share.coordinator.state.topic.min.isr={in_sync}
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
unclean.leader.election.enable=false
log.retention.ms=-1
offsets.retention.minutes=5256000
"""


def _launch(
    node_dir: Path,
    properties: str,
    cluster_id: str,
    log_path: Path | None,
    heap: str,
    run_in: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Write a node's configuration, format its storage on first use, and start it (behind the
    command prefix ``run_in``: on a host of a ``netns.Network``). A node alone formats as a
    standalone controller; a cluster's know their voters already."""
    props = node_dir / "server.properties"
    props.write_text(properties)
    log4j = node_dir / "log4j2.properties"
    log4j.write_text(LOG4J)
    java = ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath()]
    if not (node_dir / "logs" / "meta.properties").exists():
        alone = [] if "controller.quorum.voters" in properties else ["--standalone"]
        done = subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(props),
                *alone,
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {done.stderr.strip()[-2000:]}")
    jvm = ["-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC"]
    return spawn_logged([*run_in, *java[:1], *jvm, *java[1:], "kafka.Kafka", str(props)], log_path)


def start(
    data_dir: Path, *, port: int | None = None, log_path: Path | None = None, heap: str = "768m"
) -> KafkaServer:
    """Format storage on first use, then start the broker and wait until it listens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(port)
    # Keep the controller on the port it was formatted with: KRaft records it with the voters.
    remembered = data_dir / "controller.port"
    controller_port = free_port(int(remembered.read_text()) if remembered.exists() else None)
    remembered.write_text(str(controller_port))
    properties = _properties(data_dir / "logs", port, controller_port)
    process = _launch(data_dir, properties, _cluster_id(), log_path, heap)
    wait_for_port(port, 60, alive=process)
    return KafkaServer(data_dir=data_dir, port=port, process=process)


@dataclass
class KafkaCluster:
    nodes: list[KafkaServer]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def stop(self, timeout_s: float = 30) -> None:
        """All nodes at once: the last one stopped alone would wait for a quorum that has gone."""
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop(timeout_s)


def start_cluster(
    data_dir: Path,
    brokers: int,
    *,
    log_path: Path | None = None,
    heap: str = "512m",
    network: Network | None = None,
) -> KafkaCluster:
    """``brokers`` nodes, each a broker and a controller; storage formatted on first use with
    one cluster id, ports kept from one start to the next. On this host, or each on a host of
    its own on ``network`` (``kafka-1``, ...), listening on 9092 and 9093 there."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if network is not None:
        hosts = [network.add_host(f"kafka-{i + 1}") for i in range(brokers)]
        ports = [[9092, 9093] for _ in range(brokers)]
    else:
        hosts = ["127.0.0.1"] * brokers
        remembered = data_dir / "ports.json"
        ports = json.loads(remembered.read_text()) if remembered.exists() else []
        if len(ports) != brokers:
            ports = [[free_port(), free_port()] for _ in range(brokers)]
        ports = [[free_port(p), free_port(c)] for p, c in ports]
        remembered.write_text(json.dumps(ports))
    voters = ",".join(f"{i + 1}@{hosts[i]}:{c}" for i, (_, c) in enumerate(ports))
    id_file = data_dir / "cluster.id"
    cluster_id = id_file.read_text().strip() if id_file.exists() else _cluster_id()
    id_file.write_text(cluster_id)
    nodes = []
    for i, (port, controller_port) in enumerate(ports):
        node_dir = data_dir / f"node-{i + 1}"
        node_dir.mkdir(exist_ok=True)
        properties = _properties(
            node_dir / "logs", port, controller_port, node_id=i + 1, voters=voters, host=hosts[i]
        )
        log = log_path.with_name(f"{log_path.stem}-{i + 1}{log_path.suffix}") if log_path else None
        run_in = network.run_in(f"kafka-{i + 1}") if network is not None else ()
        launch = functools.partial(_launch, node_dir, properties, cluster_id, log, heap, run_in)
        nodes.append(KafkaServer(node_dir, port, launch(), host=hosts[i], restart=launch))
    try:
        for node in nodes:
            wait_for_port(node.port, 90, host=node.host, alive=node.process)
    except BaseException:
        KafkaCluster(nodes).stop()
        raise
    return KafkaCluster(nodes)


def _cluster_id() -> str:
    """A base64 UUID, as ``kafka-storage random-uuid`` makes; never starting with '-'."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, tuple[int, list[int]]]:
    """Each partition of ``topic``: the node leading it, and the nodes holding it."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: (p["leader"], p["replicas"]) for p in described["partitions"]}
