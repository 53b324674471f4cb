from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    """intake's settings (env prefix ``INTAKE_``); the shared ones come without a prefix."""

    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore")

    port: int = 8000
    max_body_bytes: int = 65_536
    batch_max_body_bytes: int = 1_048_576
    batch_max_items: int = 500
    kafka_send_timeout_s: float = 2.0

    # Who may post. Turning auth off is for local experiments only; it is refused outside
    # development.
    auth_required: bool = True
    api_key_cache_ttl_s: float = 5.0
    rate_limit: str = Field(default="100/second", description="per key, `limits` notation")
    anonymous_rate_limit: str = "20/second"
    cors_origins: list[str] = Field(default_factory=list)
    trust_forwarded_for: bool = False
    ip_hash_key: SecretStr = SecretStr("change-me-ip-hash-key")

    # Marketing tools that sign their webhooks; when a secret is set its signature is required.
    hubspot_client_secret: SecretStr | None = None
    hubspot_max_age_s: int = 300
    mautic_webhook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _auth_only_off_in_development(self) -> "IntakeSettings":
        if not self.auth_required and self.environment != "development":
            raise ValueError("auth_required: may only be false when LEADRELAY_ENV=development")
        return self
