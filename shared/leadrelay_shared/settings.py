"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_PREFIX = "change-me"


class ServiceSettings(BaseSettings):
    """Kafka and PostgreSQL are found through the standard variables, shared by all services."""

    model_config = SettingsConfigDict(extra="ignore")

    environment: str = Field(
        default="development", validation_alias=AliasChoices("LEADRELAY_ENV", "environment")
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    database_url: str = Field(
        default="postgresql+asyncpg://leadrelay@127.0.0.1:5433/leadrelay",
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
    )
    # Whether the process brings its schema up to date before serving; off where a migration
    # job does it first (``leadrelay migrate``), so that replicas never race each other to it.
    migrate_on_start: bool = Field(
        default=True,
        validation_alias=AliasChoices("LEADRELAY_MIGRATE_ON_START", "migrate_on_start"),
    )
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    kafka_send_timeout_s: float = 2.0
    # records per poll (Kafka's own default for max.poll.records), handled in one transaction by
    # the services with a batch handler; the consumer benchmarks measure this size
    consumer_max_records: int = 500
    # Where a consumer group seen for the first time starts: the whole topic, or only new events.
    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"
    relay_poll_interval_s: float = 0.5
    # The process's scheduling priority (Unix nice, 0 to 19): a service off the lead's way
    # (analytics) yields the cores to those on it when they are busy.
    nice: int = Field(default=0, ge=0, le=19)

    @model_validator(mode="after")
    def _no_placeholder_secrets(self) -> ServiceSettings:
        if self.environment != "development":
            for name, value in self.model_dump().items():
                if isinstance(value, SecretStr):
                    value = value.get_secret_value()
                if isinstance(value, str) and value.startswith(PLACEHOLDER_PREFIX):
                    raise ValueError(f"{name} is still a placeholder; set a real secret")
        return self


class BackendSettings(ServiceSettings):
    """A service with a database, a consumer and an operator API (scoring, router, sla-monitor).

    Every ``/v1`` route needs ``Authorization: Bearer`` with the admin token (reads and changes)
    or the read token (reads only: dashboards, support tools). Each service gives its admin
    token a placeholder default, refused outside development.

    Retention (``retention``): processed event ids and delivered webhooks older than these many
    days are swept every ``retention_interval_s``; 0 keeps them for ever. Keep processed ids
    longer than the topics' retention plus the consumer lag you tolerate."""

    admin_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-admin")
    read_token: SecretStr | None = None
    retention_processed_events_days: float = Field(default=30, ge=0)
    retention_delivered_webhooks_days: float = Field(default=30, ge=0)
    retention_interval_s: float = Field(default=3600, gt=0)
    # webhooks and alerts to loopback, private or link-local addresses: allowed in development
    # (None), refused elsewhere unless set true (see leadrelay_shared.destinations)
    allow_private_destinations: bool | None = None
