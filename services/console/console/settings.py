from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import PLACEHOLDER_PREFIX, ServiceSettings


class ConsoleSettings(ServiceSettings):
    """The console reads and changes through the other services' operator APIs, with their
    admin tokens (``CONSOLE_<SERVICE>_TOKEN``); it keeps only its own accounts in the database.
    The defaults are the development stack's, refused outside development."""

    model_config = SettingsConfigDict(env_prefix="CONSOLE_", extra="ignore")

    port: int = 8005
    session_secret: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-console-session")
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    scoring_url: str = "http://127.0.0.1:8001"
    router_url: str = "http://127.0.0.1:8002"
    sla_url: str = "http://127.0.0.1:8003"
    analytics_url: str = "http://127.0.0.1:8004"
    scoring_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-scoring-admin")
    router_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-router-admin")
    sla_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-sla-admin")
    analytics_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-analytics-admin")
    # each call to another service; a page answers with what it has when one is slow
    upstream_timeout_s: float = Field(default=10.0, gt=0)
    # a what-if replays weeks of history
    what_if_timeout_s: float = Field(default=120.0, gt=0)
    # failed sign-ins allowed per client address per minute
    sign_in_attempts_per_minute: int = Field(default=10, ge=1)
    # live pages (open clocks) refresh this often
    poll_interval_s: int = Field(default=5, ge=1, le=300)
