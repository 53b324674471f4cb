from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = 8000
    max_body_bytes: int = 65_536
    kafka_send_timeout_s: float = 2.0
