from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from leadrelay_shared.settings import BackendSettings


class ScoringSettings(BackendSettings):
    model_config = SettingsConfigDict(env_prefix="SCORING_", extra="ignore")

    port: int = 8001
    admin_token: SecretStr = SecretStr("change-me-scoring-admin")
    consumer_group: str = "leadrelay-scoring"
    # The scoring model (YAML); unset means the model shipped with leadrelay.
    model_path: Path | None = None
    model_reload_interval_s: float = Field(default=2.0, gt=0)
    # How often time-driven stage moves (recycle unaccepted MQLs, ...) are looked for.
    timer_interval_s: float = Field(default=60.0, gt=0)
    timer_batch: int = Field(default=500, gt=0)
    # A large poll is handled as this many concurrent batches, split by lead (see
    # leadrelay_shared.consumer); scoring's transactions touch only their own leads.
    consumer_lanes: int = Field(default=2, ge=1, le=8)


def timeline_group(consumer_group: str) -> str:
    """The consumer group in which scoring reads router's and sla-monitor's topics for the
    leads' timelines, beside ``consumer_group`` for intake's."""
    return f"{consumer_group}-timeline"
