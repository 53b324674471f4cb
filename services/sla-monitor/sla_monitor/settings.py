from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import ServiceSettings


class SlaSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_", extra="ignore")

    port: int = 8003
    consumer_group: str = "leadrelay-sla-monitor"
    first_touch_seconds: float = 900.0
    policy_id: str = "first-touch"
    ops_webhook_url: str = "http://127.0.0.1:8099/hooks/ops"
    ops_webhook_secret: str = "whsec_ZGV2LW9ubHktc2VjcmV0LWZvci10aGUtb3BzLWFsZXJ0"
    scheduler_interval_s: float = 0.2
    webhook_timeout_s: float = 10.0
    webhook_schedule_s: str = ""
