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
    # analytics is off a lead's way to its rep: while caught up it polls at most this often and
    # takes large polls, so that it writes few, large batches on the cores the lead's path
    # shares (each batch's statements and triggers cost much the same whatever its size)
    consumer_poll_every_ms: int = Field(default=1_000, ge=0, le=10_000)
    consumer_max_records: int = Field(default=10_000, ge=1, le=50_000)
    # how long a cohort has to reach the next stage, unless a request says otherwise
    horizon_days: int = Field(default=90, ge=1, le=3650)
    admin_token: SecretStr = SecretStr("change-me-analytics-admin")
