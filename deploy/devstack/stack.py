"""Starts and stops the whole stack: Kafka, PostgreSQL and the six services as processes.

Kafka and PostgreSQL are started only when ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` are not
set. Each service's output is shown with its name in front. ``stop`` ends everything, services
first, and leaves no process behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import threading
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from pydantic import SecretStr

from analytics.settings import AnalyticsSettings
from leadrelay_shared.kafka import ensure_topics
from leadrelay_shared.migrate import upgrade
from leadrelay_shared.settings import BackendSettings
from router.settings import RouterSettings
from scoring.settings import ScoringSettings
from sla_monitor.settings import SlaSettings

from . import kafka, postgres
from .ports import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    env_prefix: str
    default_port: int
    schema: str


SERVICES = (
    ServiceSpec("intake", "intake", "INTAKE_", 8000, "intake"),
    ServiceSpec("scoring", "scoring", "SCORING_", 8001, "scoring"),
    ServiceSpec("router", "router", "ROUTER_", 8002, "router"),
    ServiceSpec("sla-monitor", "sla_monitor", "SLA_", 8003, "sla"),
    ServiceSpec("analytics", "analytics", "ANALYTICS_", 8004, "analytics"),
    ServiceSpec("console", "console", "CONSOLE_", 8005, "console"),
)
# the console's names for the services it calls
CONSOLE_CALLS = {
    "scoring": "SCORING",
    "router": "ROUTER",
    "sla-monitor": "SLA",
    "analytics": "ANALYTICS",
}
OPERATOR_SETTINGS: dict[str, type[BackendSettings]] = {
    "scoring": ScoringSettings,
    "router": RouterSettings,
    "sla-monitor": SlaSettings,
    "analytics": AnalyticsSettings,
}
COLOURS = {
    "intake": 36,
    "scoring": 35,
    "router": 33,
    "sla-monitor": 32,
    "analytics": 31,
    "console": 37,
    "kafka": 34,
    "postgres": 34,
}


@dataclass
class Stack:
    data_dir: Path
    durable: bool = True
    pick_free_ports: bool = False
    log_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    brokers: int = 1  # Kafka nodes started (a cluster replicates each partition to three)
    replicas: int = 1  # instances of each service
    kafka_server: kafka.KafkaServer | kafka.KafkaCluster | None = None
    pg_server: postgres.PostgresServer | None = None
    bootstrap: str = ""
    database_url: str = ""  # given, the services use this database (else DATABASE_URL's)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    instances: dict[str, list[str]] = field(default_factory=dict)  # service → its instances
    _pumps: list[threading.Thread] = field(default_factory=list)

    def start_infra(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self.database_url = self.database_url or os.environ.get("DATABASE_URL", "")
        if not self.database_url:
            self.pg_server = postgres.start(
                self.data_dir / "postgres",
                port=None if self.pick_free_ports else 5433,
                durable=self.durable,
                log_path=self.data_dir / "postgres.log",
            )
            self.database_url = self.pg_server.url
        if not self.bootstrap and self.brokers > 1:
            self.kafka_server = kafka.start_cluster(
                self.data_dir / f"kafka-{self.brokers}",
                self.brokers,
                log_path=self.data_dir / "kafka.log",
            )
            self.bootstrap = self.kafka_server.bootstrap
        elif not self.bootstrap:
            self.kafka_server = kafka.start(
                self.data_dir / "kafka",
                port=None if self.pick_free_ports else 9092,
                log_path=self.data_dir / "kafka.log",
            )
            self.bootstrap = self.kafka_server.bootstrap
        asyncio.run(ensure_topics(self.bootstrap, replication=min(3, self.brokers)))

    def service_env(self, spec: ServiceSpec, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()}
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "DATABASE_URL": self.database_url,
                f"{spec.env_prefix}PORT": str(port),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if spec.name == "console":
            for name, prefix in CONSOLE_CALLS.items():
                port = self.ports.get(name) or next(
                    s.default_port for s in SERVICES if s.name == name
                )
                env[f"CONSOLE_{prefix}_URL"] = f"http://127.0.0.1:{port}"
                env[f"CONSOLE_{prefix}_TOKEN"] = self.admin_token(name)
        env.update(self.extra_env)
        return env

    def start_services(self, only: tuple[str, ...] | None = None) -> None:
        """Each service (or those in ``only``), ``replicas`` instances of each: the first on
        the service's usual port, the others 100, 200, ... above it (``router-2`` on 8102)."""
        chosen = [spec for spec in SERVICES if not only or spec.name in only]
        if self.replicas > 1:  # migrated once here, so that the instances never race to it
            for spec in chosen:
                upgrade(spec.module, self.database_url, spec.schema)
            self.extra_env.setdefault("LEADRELAY_MIGRATE_ON_START", "false")
        for spec in chosen:
            for r in range(self.replicas):
                name = spec.name if r == 0 else f"{spec.name}-{r + 1}"
                preferred = None if self.pick_free_ports else spec.default_port + 100 * r
                port = free_port(preferred)
                self.ports[name] = port
                self.start_service(spec, port, name)

    def start_service(self, spec: ServiceSpec, port: int, name: str | None = None) -> None:
        name = name or spec.name
        proc = subprocess.Popen(
            [sys.executable, "-m", spec.module],
            env=self.service_env(spec, port),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = proc
        if name not in self.instances.setdefault(spec.name, []):
            self.instances[spec.name].append(name)
        pump = threading.Thread(target=self._pump, args=(name, spec.name, proc.stdout), daemon=True)
        pump.start()
        self._pumps.append(pump)

    def _pump(self, name: str, service: str, stream: IO[bytes] | None) -> None:
        assert stream is not None
        colour = COLOURS.get(service, 0)
        sink_cm = open(self.log_file, "a", buffering=1) if self.log_file else nullcontext(None)
        with stream, sink_cm as sink:
            for raw in stream:
                line = raw.decode(errors="replace").rstrip()
                if sink is not None:
                    sink.write(f"{name:>11} | {line}\n")
                else:
                    print(f"\033[{colour}m{name:>11} |\033[0m {line}", flush=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        for name in self.ports:
            while True:
                proc = self.processes[name]
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
                with suppress(httpx.HTTPError):
                    if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready after {timeout_s}s")
                time.sleep(0.2)

    def admin_token(self, name: str) -> str:
        """The bearer token of ``name``'s operator API (every service but intake) as the
        stack runs it: ``<PREFIX>ADMIN_TOKEN`` from the environment, else the service's
        development default."""
        spec = next(s for s in SERVICES if s.name == name)
        variable = f"{spec.env_prefix}ADMIN_TOKEN"
        given = self.extra_env.get(variable) or os.environ.get(variable)
        if given:
            return given
        default: SecretStr = OPERATOR_SETTINGS[name].model_fields["admin_token"].default
        return default.get_secret_value()

    def api_key(self, source: str = "devstack") -> str:
        """A key with every intake scope, kept in ``<data_dir>/dev-api-key`` and reused while it
        is still valid (for ``make run``, ``make demo`` and the end-to-end tests)."""
        return asyncio.run(_dev_api_key(self.database_url, self.data_dir / "dev-api-key", source))

    def console_account(self, username: str = "admin") -> str:
        """A development operator account for the console, its password kept in
        ``<data_dir>/console-password`` and set again at every start."""
        path = self.data_dir / "console-password"
        password = path.read_text().strip() if path.exists() else secrets.token_urlsafe(12)
        path.write_text(password + "\n")
        path.chmod(0o600)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "devstack",
                "console",
                "create-user",
                username,
                "--role",
                "operator",
                "--password-stdin",
            ],
            input=password.encode(),
            env={**os.environ, "DATABASE_URL": self.database_url},
            check=True,
            capture_output=True,
        )
        return password

    def stop_service(self, name: str, timeout_s: float = 15) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_service(name)
        for pump in self._pumps:
            pump.join(5)
        if self.kafka_server:
            self.kafka_server.stop()
        if self.pg_server:
            self.pg_server.stop()


async def _dev_api_key(database_url: str, path: Path, source: str) -> str:
    from intake.adapters.keystore import PgKeyStore, create_key
    from intake.auth import Scope, hash_key, parse_key
    from leadrelay_shared.db import make_engine

    engine = make_engine(database_url, pool_size=1)
    try:
        if path.exists():
            key = path.read_text().strip()
            parsed = parse_key(key)
            stored = await PgKeyStore(engine).get(parsed[1]) if parsed else None
            if stored is not None and stored.active and stored.key_hash == hash_key(key):
                return key
        key, _ = await create_key(engine, source=source, scopes=[s.value for s in Scope])
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key
    finally:
        await engine.dispose()
