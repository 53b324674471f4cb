from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import BackendSettings


class AnalyticsSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    port: int = 8004
    # off the lead's way: when the cores are busy, the lead's path goes first and analytics
    # catches up after
    nice: int = Field(default=10, ge=0, le=19)
    consumer_group: str = "leadrelay-analytics"
    # analytics is off a lead's way to its rep: it waits up to this long for a fuller fetch,
    # so that it writes few, larger batches on the cores the lead's path shares
    consumer_fetch_wait_ms: int = Field(default=500, ge=0, le=5_000)
    # how long a cohort has to reach the next stage, unless a request says otherwise
    horizon_days: int = Field(default=90, ge=1, le=3650)
    admin_token: SecretStr = SecretStr("change-me-analytics-admin")
