from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import BackendSettings

from .config import DEFAULT_PATH


class SlaSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = 8003
    consumer_group: str = "leadrelay-sla-monitor"
    # sla-monitor is off a lead's way to its rep and its clocks count minutes, so its consumer
    # waits up to this long for a fuller fetch (or 1 MiB): a few batches a second instead of one
    # per record or two (0: answer as soon as there is one). At 200 leads/s end to end it
    # took sla-monitor from 0.23 to 0.08 of a core.
    consumer_fetch_wait_ms: int = Field(default=250, ge=0, le=5_000)
    policies_path: Path = DEFAULT_PATH
    policies_reload_interval_s: float = 2.0
    scheduler_interval_s: float = 0.1
    scheduler_batch: int = 500
    webhook_timeout_s: float = 10.0
    webhook_schedule_s: str = ""
    admin_token: SecretStr = SecretStr("change-me-sla-admin")
