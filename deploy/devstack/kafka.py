"""Apache Kafka in KRaft mode (one node), run from jars Maven fetched from Maven Central."""

from __future__ import annotations

import base64
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 30) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _properties(log_dir: Path, port: int, controller_port: int) -> str:
    # Topics keep their whole history, so that analytics can be rebuilt from it; so do the
    # groups' offsets, or a stack stopped longer than Kafka's default week would find its
    # groups gone and read that history again from the start.
    return f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={log_dir}
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.ms=-1
offsets.retention.minutes=5256000
"""


def start(
    data_dir: Path, *, port: int | None = None, log_path: Path | None = None, heap: str = "768m"
) -> KafkaServer:
    """Format storage on first use, then start the broker and wait until it listens."""
    cp = classpath()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(port)
    # Keep the controller on the port it was formatted with: KRaft records it with the voters.
    remembered = data_dir / "controller.port"
    controller_port = free_port(int(remembered.read_text()) if remembered.exists() else None)
    remembered.write_text(str(controller_port))
    props = data_dir / "server.properties"
    props.write_text(_properties(data_dir / "logs", port, controller_port))
    log4j = data_dir / "log4j2.properties"
    log4j.write_text(LOG4J)
    java = ["java", f"-Dlog4j2.configurationFile={log4j}", "-cp", cp]
    if not (data_dir / "logs" / "meta.properties").exists():
        done = subprocess.run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
                "--standalone",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {done.stderr.strip()[-2000:]}")
    process = spawn_logged(
        [
            *java[:1],
            "-Xms256m",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            *java[1:],
            "kafka.Kafka",
            str(props),
        ],
        log_path,
    )
    wait_for_port(port, 60, alive=process)
    return KafkaServer(data_dir=data_dir, port=port, process=process)


def _cluster_id() -> str:
    """A base64 UUID, as ``kafka-storage random-uuid`` makes; never starting with '-'."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):
            return value
