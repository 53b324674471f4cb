from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import BackendSettings

from .policy import DEFAULT_PATH


class SlaSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = 8003
    consumer_group: str = "leadrelay-sla-monitor"
    policies_path: Path = DEFAULT_PATH
    policies_reload_interval_s: float = 2.0
    scheduler_interval_s: float = 0.1
    scheduler_batch: int = 500
    webhook_timeout_s: float = 10.0
    webhook_schedule_s: str = ""
    admin_token: SecretStr = SecretStr("change-me-sla-admin")
