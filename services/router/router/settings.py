from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import BackendSettings

DEFAULT_CONFIG = Path(__file__).with_name("default_routing.yaml")  # shipped with the package


class RouterSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore")

    port: int = 8002
    consumer_group: str = "leadrelay-router"
    config_path: Path = DEFAULT_CONFIG
    config_reload_interval_s: float = 2.0
    admin_token: SecretStr = SecretStr("change-me-router-admin")
    webhook_timeout_s: float = 10.0
    webhook_schedule_s: str = ""  # comma-separated seconds; empty means the 24h default
